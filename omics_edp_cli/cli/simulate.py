"""`omics-edp simulate-batch`: what the EDP batcher would emit, offline, for tuning thresholds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.render import render_simulation
from omics_edp_cli.ops.simulate import plot as sim_plot
from omics_edp_cli.ops.simulate.execute import simulate
from omics_edp_cli.ops.simulate.plan import (
    BurstFlags,
    SimulateOptions,
    check_read,
    open_source,
    plan_simulate,
)
from omics_edp_cli.ops.simulate.sources import DEFAULT_BUCKET, DEFAULT_START, S3ListingSource, Source
from omics_edp_cli.ops.simulate.thresholds import ThresholdFlags

MAX_WARNINGS = 20
# Inputs at least this long get a progress bar.
LONG_EVENTS = 100_000
LONG_BYTES = 8 * 1024 * 1024


def simulate_batch(
    ctx: typer.Context,
    events: Annotated[
        str | None,
        typer.Option("--events", metavar="FILE",
                     help="JSON lines of S3 events in any shape (EventBridge, S3 Records, inside "
                          "SQS or SNS); - for stdin."),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", metavar="FILE", help="YAML scenario: several bursts with start times."),
    ] = None,
    from_s3: Annotated[
        list[str] | None,
        typer.Option("--from-s3", metavar="s3://BUCKET/PREFIX",
                     help="Objects already in S3, LastModified as the event time (approximate); "
                          "repeat it (or separate with commas) for several buckets or prefixes."),
    ] = None,
    prefixes: Annotated[
        int | None, typer.Option(help="Synthetic burst: number of prefixes written at once (default: 3).")
    ] = None,
    files: Annotated[
        int | None, typer.Option(help="Synthetic burst: files per prefix (default: 50).")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Synthetic burst: seconds between files of a prefix (default: 2).")
    ] = None,
    jitter: Annotated[
        float | None, typer.Option(help="Synthetic burst: ± seconds of randomness per interval (default: 0).")
    ] = None,
    duplicates: Annotated[
        float | None,
        typer.Option(help="Synthetic burst: fraction of events S3 delivers twice (default: 0)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help=f"Synthetic burst / scenario start time (default: {DEFAULT_START}).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed for jitter and duplicates.")] = 0,
    bucket: Annotated[
        str | None,
        typer.Option(help="Bucket of synthetic events (default: BucketName of --parameters/--stack, "
                          f"else {DEFAULT_BUCKET})."),
    ] = None,
    count: Annotated[
        str | None,
        typer.Option(help="Count threshold (BucketThresholdEventCount); several to compare: 20,50."),
    ] = None,
    quiet: Annotated[
        str | None,
        typer.Option(help="Quiet seconds (BucketThresholdDuration), e.g. 300 or 5m; several: 60,300."),
    ] = None,
    max_age: Annotated[
        str | None, typer.Option("--max-age", help="Maximum batch age in seconds, 0 = off; several: 0,1h.")
    ] = None,
    depth: Annotated[
        str | None, typer.Option(help="Prefix depth (BucketPrefixDepth); several: 2,3.")
    ] = None,
    ignore: Annotated[
        str | None, typer.Option(help="Ignore globs (BucketIgnorePrefixes), e.g. 'raw/*, scratch/*'.")
    ] = None,
    tick: Annotated[
        str, typer.Option(help="Flush schedule period in seconds (the Lambda runs every 60); 0 = exact.")
    ] = "60",
    parameters: Annotated[
        str | None,
        typer.Option("--parameters", metavar="FILE",
                     help="Thresholds from a CloudFormation parameters file (edp.parameters.json)."),
    ] = None,
    stack: Annotated[
        str | None, typer.Option(help="Thresholds from a deployed EDP stack's parameters.")
    ] = None,
    plot: Annotated[
        str | None,
        typer.Option("--plot", metavar="FILE",
                     help="Also draw the timeline into FILE (.png or .svg; needs the [plot] extra)."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Run the EDP batching engine offline and show the batches it would emit.

    Example: omics-edp simulate-batch --prefixes 3 --files 120 --interval 5 --count 20,50 --quiet 60,300
    """
    app = app_context(ctx, output)
    plan = plan_simulate(SimulateOptions(
        events=events, scenario=scenario, from_s3=from_s3,
        burst=BurstFlags(prefixes, files, interval, jitter, duplicates),
        start=start, seed=seed, bucket=bucket,
        thresholds=ThresholdFlags(count, quiet, max_age, depth, ignore),
        tick=tick, parameters=parameters, stack=stack, plot=plot,
    ), app.clients)
    bad_lines: list[tuple[int, str]] = []
    source = open_source(plan, app.clients, lambda n, reason: bad_lines.append((n, reason)))
    if plan.approximate:
        app.err.print("[yellow]note:[/] --from-s3 uses each object's LastModified as its event time: "
                      "approximate (it is when an upload finished; copies, multipart uploads and "
                      "overwrites skew it, and a listing has no repeated deliveries).")

    with _progress(app, source) as on_progress:
        runs = simulate(source, plan.rule_sets, tick=plan.tick, on_progress=on_progress,
                        keep_objects=app.output is OutputFormat.json or plan.plot is not None)
    if plan.plot is not None:
        drawn = sim_plot.plot_runs(runs, plan.plot)
        app.err.print(f"timeline drawn to {drawn.path}: {drawn.bars} batch(es), {drawn.ticks} object(s), "
                      f"{drawn.panels} panel(s)")

    for number, reason in bad_lines[:MAX_WARNINGS]:
        app.err.print(f"[yellow]warning:[/] line {number}: {escape(reason)} (skipped)")
    if len(bad_lines) > MAX_WARNINGS:
        app.err.print(f"[yellow]warning:[/] … and {len(bad_lines) - MAX_WARNINGS} more malformed line(s)")
    check_read(plan, source, runs)
    app.err.print(f"thresholds from {plan.origin}")
    render_simulation(app, runs, malformed=getattr(source, "malformed", 0), other=getattr(source, "other", 0))


@contextlib.contextmanager
def _progress(app: AppContext, source: Source) -> Iterator[Any]:
    total = source.total
    long_input = isinstance(source, S3ListingSource) or (
        total is not None and total >= (LONG_BYTES if source.unit == "bytes" else LONG_EVENTS))
    if not (long_input and app.err.is_terminal):  # nobody would see it
        yield None
        return
    # Imported here: only a terminal shows the bar (~14 ms of start-up otherwise).
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               TextColumn("{task.completed:,}/{task.total:,} " + source.unit if total else
                          "{task.completed:,} " + source.unit), TimeElapsedColumn()]
    with Progress(*columns, console=app.err, transient=True, refresh_per_second=4) as progress:
        task = progress.add_task("simulating" if not isinstance(source, S3ListingSource) else "listing",
                                 total=total)
        yield lambda: progress.update(task, completed=source.position)


def register(app: typer.Typer) -> None:
    app.command("simulate-batch", cls=Command)(simulate_batch)
