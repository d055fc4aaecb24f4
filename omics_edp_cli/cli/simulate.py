"""`omics-edp simulate-batch`: what the EDP batcher would emit, offline, for tuning thresholds."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from omics_edp_cli.cli.context import AppContext, OutputFormat, app_context
from omics_edp_cli.cli.errors import CliError, ExitCode
from omics_edp_cli.cli.render import render_record, render_rows, to_json
from omics_edp_cli.edp.config import parse_seconds
from omics_edp_cli.edp.s3events import parse_time
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.deployment import describe_stack
from omics_edp_cli.ops.simulate import plot as sim_plot
from omics_edp_cli.ops.simulate import sources as sim_sources
from omics_edp_cli.ops.simulate.execute import Run, as_json, simulate, summary, timeline
from omics_edp_cli.ops.simulate.sources import (
    DEFAULT_BUCKET,
    DEFAULT_START,
    BurstSource,
    EventLogSource,
    S3ListingSource,
    Source,
    burst_from_flags,
    load_scenario,
)
from omics_edp_cli.ops.simulate.thresholds import ThresholdFlags, resolve

MAX_WARNINGS = 20
MAX_TABLE_ROWS = 500
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
) -> None:
    """Run the EDP batching engine offline and show the batches it would emit.

    Example: omics-edp simulate-batch --prefixes 3 --files 120 --interval 5 --count 20,50 --quiet 60,300
    """
    app = app_context(ctx)
    synthetic = {"--prefixes": prefixes, "--files": files, "--interval": interval, "--jitter": jitter,
                 "--duplicates": duplicates}
    chosen = [name for name, value in (("--events", events), ("--scenario", scenario),
                                       ("--from-s3", from_s3)) if value is not None]
    if len(chosen) > 1:
        raise CliError(f"give one input: {' or '.join(chosen)}", ExitCode.USAGE)
    flags_given = [name for name, value in synthetic.items() if value is not None]
    if chosen and flags_given:
        raise CliError(f"{', '.join(flags_given)} describe a synthetic burst; they do not apply to "
                       f"{chosen[0]}", ExitCode.USAGE)
    # `is None`, not `or`: an explicit 0 is a value to check, not a request for the default.
    burst_flags: dict[str, Any] = {
        "prefixes": 3 if prefixes is None else prefixes, "files": 50 if files is None else files,
        "interval": 2.0 if interval is None else interval, "jitter": 0.0 if jitter is None else jitter,
        "duplicates": 0.0 if duplicates is None else duplicates}
    if not chosen:
        sim_sources.check_burst_flags(**burst_flags)  # a usage error before any AWS call
    tick_seconds = parse_seconds(tick, "--tick", zero_ok=True)
    plot_path = sim_plot.check_plot_file(plot) if plot is not None else None
    start_at = _start(start)
    s3_uris = [u.strip() for text in from_s3 or [] for u in text.split(",") if u.strip()]
    for uri in s3_uris:
        sim_sources.parse_s3_uri(uri)  # a usage error before any AWS call
    resolved = resolve(
        ThresholdFlags(count, quiet, max_age, depth, ignore),
        parameters_file=parameters,
        stack_parameters=_stack_parameters(app, stack) if stack else None,
        stack_name=stack,
    )
    max_depth = max(r.prefix_depth for r in resolved.rule_sets)
    bad_lines: list[tuple[int, str]] = []
    source: Source
    if events is not None:
        source = EventLogSource(events, lambda n, reason: bad_lines.append((n, reason)))
    elif scenario is not None:
        source = load_scenario(str(scenario), bucket=bucket, depth=max_depth)
        if start is not None:
            source.start = start_at
    elif from_s3 is not None:
        source = S3ListingSource(app.client("s3"), s3_uris)
        app.err.print("[yellow]note:[/] --from-s3 uses each object's LastModified as its event time: "
                      "approximate (it is when an upload finished; copies, multipart uploads and "
                      "overwrites skew it, and a listing has no repeated deliveries).")
    else:
        burst = burst_from_flags(**burst_flags, depth=max_depth)
        source = BurstSource([burst], bucket=bucket or resolved.bucket or DEFAULT_BUCKET,
                             start=start_at, seed=seed)

    with _progress(app, source) as on_progress:
        runs = simulate(source, resolved.rule_sets, tick=tick_seconds, on_progress=on_progress,
                        keep_objects=app.output is OutputFormat.json or plot_path is not None)
    if plot_path is not None:
        drawn = sim_plot.plot_runs(runs, plot_path)
        app.err.print(f"timeline drawn to {drawn.path}: {drawn.bars} batch(es), {drawn.ticks} object(s), "
                      f"{drawn.panels} panel(s)")

    malformed = getattr(source, "malformed", 0)
    other = getattr(source, "other", 0)
    for number, reason in bad_lines[:MAX_WARNINGS]:
        app.err.print(f"[yellow]warning:[/] line {number}: {escape(reason)} (skipped)")
    if len(bad_lines) > MAX_WARNINGS:
        app.err.print(f"[yellow]warning:[/] … and {len(bad_lines) - MAX_WARNINGS} more malformed line(s)")
    app.err.print(f"thresholds from {resolved.origin}")
    if app.output is OutputFormat.json:
        data: Any = (as_json(runs[0], malformed=malformed, other=other) if len(runs) == 1
                     else {"runs": [as_json(r, malformed=malformed, other=other) for r in runs]})
        write_json(app, data, items=sum(len(r.emitted) for r in runs))
    elif len(runs) == 1:
        _render_one(app, runs[0], malformed, other)
    else:
        _render_comparison(app, runs)


def write_json(app: AppContext, data: Any, *, items: int) -> None:
    """JSON on stdout: indented (and highlighted on a terminal) unless it holds many items.

    Large output is written compact in one call: indenting makes `json` fall back to its pure
    Python encoder, and Rich takes seconds per megabyte to highlight.
    """
    if items <= MAX_TABLE_ROWS:
        text = to_json(data)
        if app.out.is_terminal:
            app.out.print_json(text)
            return
    else:
        text = json.dumps(data, ensure_ascii=False, default=str)
    app.out.file.write(text + "\n")


def write_plain_table(app: AppContext, rows: list[dict[str, Any]], columns: list[str], *, title: str) -> None:
    """Aligned text columns in one write: a Rich table of thousands of rows takes seconds."""
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    lines = [title, "  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    app.out.file.write("\n".join(lines) + "\n")


def _start(text: str | None) -> float:
    try:
        return parse_time(text or DEFAULT_START)
    except ConfigError:
        raise CliError(f"--start: {text!r} is not an ISO 8601 time", ExitCode.USAGE) from None


def _stack_parameters(app: AppContext, name: str) -> Any:
    return lambda: describe_stack(app.client("cloudformation"), name).parameters


@contextlib.contextmanager
def _progress(app: AppContext, source: Source) -> Iterator[Any]:
    total = source.total
    long_input = isinstance(source, S3ListingSource) or (
        total is not None and total >= (LONG_BYTES if source.unit == "bytes" else LONG_EVENTS))
    if not (long_input and app.err.is_terminal):  # nobody would see it
        yield None
        return
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               TextColumn("{task.completed:,}/{task.total:,} " + source.unit if total else
                          "{task.completed:,} " + source.unit), TimeElapsedColumn()]
    with Progress(*columns, console=app.err, transient=True, refresh_per_second=4) as progress:
        task = progress.add_task("simulating" if not isinstance(source, S3ListingSource) else "listing",
                                 total=total)
        yield lambda: progress.update(task, completed=source.position)


def human_seconds(value: float | None) -> str:
    """42s, 5m, 5m 02s, 2h, 2h 05m: short durations for tables."""
    if value is None:
        return ""
    sign, value = ("-" if value < 0 else ""), round(abs(value))
    if value < 60:
        return f"{sign}{value}s"
    if value < 3600:
        minutes, seconds = divmod(value, 60)
        return f"{sign}{minutes}m" + (f" {seconds:02d}s" if seconds else "")
    hours, minutes = divmod(value // 60, 60)
    return f"{sign}{hours}h" + (f" {minutes:02d}m" if minutes else "")


def _describe(run: Run) -> str:
    r = run.rules
    parts = [f"count {r.count}", f"quiet {human_seconds(r.quiet_seconds)}", f"depth {r.prefix_depth}",
             f"max-age {human_seconds(r.max_age_seconds) if r.max_age_seconds else 'off'}",
             f"tick {human_seconds(run.tick) if run.tick else 'exact'}"]
    if r.ignore:
        parts.append(f"ignore {', '.join(r.ignore)}")
    return " · ".join(parts)


def _render_one(app: AppContext, run: Run, malformed: int, other: int) -> None:
    rows = timeline(run)
    several_buckets = len({r["bucket"] for r in rows}) > 1
    table_rows = [
        {"emitted": r["emitted_at"], "bucket": r["bucket"], "prefix": r["prefix"], "count": r["count"],
         "trigger": r["trigger"], "latency": human_seconds(r["latency_seconds"])}
        for r in rows
    ]
    columns = ["emitted", *(["bucket"] if several_buckets else []), "prefix", "count", "trigger", "latency"]
    title = f"Emitted batches ({_describe(run)})"
    if len(table_rows) <= MAX_TABLE_ROWS:
        render_rows(app, table_rows, columns, title=title)
    else:
        write_plain_table(app, table_rows, columns, title=title)
    render_record(app, _summary_lines(summary(run, malformed=malformed, other=other)), title="Summary")


def _summary_lines(s: dict[str, Any]) -> dict[str, Any]:
    fpb, lat = s["files_per_batch"], s["latency_seconds"]
    return {
        "events": (f"{s['events']:,} ({s['counted']:,} counted, {s['duplicates']:,} duplicate, "
                   f"{s['ignored']:,} ignored, {s['shallow']:,} shallow)"),
        "batches": f"{s['batches']:,}" + (
            " (" + ", ".join(f"{n:,} {t}" for t, n in s["by_trigger"].items()) + ")" if s["batches"] else ""),
        "files per batch": (f"{fpb['mean']} mean, min {fpb['min']}, max {fpb['max']}"
                            if s["batches"] else "-"),
        "latency first file → event": (f"p50 {human_seconds(lat['p50'])}, p95 {human_seconds(lat['p95'])}"
                                       if s["batches"] else "-"),
        "prefixes": f"{s['prefixes']:,} ({s['prefixes_split']:,} split into several batches)",
        **({"malformed lines": f"{s['malformed']:,}"} if s["malformed"] else {}),
        **({"not object-created": f"{s['not_object_created']:,}"} if s["not_object_created"] else {}),
    }


def _render_comparison(app: AppContext, runs: list[Run]) -> None:
    """One row per threshold set; thresholds that are the same for all go in the title."""
    settings = [{
        "depth": str(r.rules.prefix_depth),
        "count": str(r.rules.count),
        "quiet": human_seconds(r.rules.quiet_seconds),
        "max age": human_seconds(r.rules.max_age_seconds) if r.rules.max_age_seconds else "off",
    } for r in runs]
    varying = [k for k in settings[0] if len({s[k] for s in settings}) > 1]
    fixed = [f"{k} {settings[0][k]}" for k in settings[0] if k not in varying]
    rows = []
    for run, setting in zip(runs, settings, strict=True):
        s = summary(run)
        rows.append({
            **{k: setting[k] for k in varying},
            "batches": s["batches"],
            "files/batch": s["files_per_batch"]["mean"],
            "p50 latency": human_seconds(s["latency_seconds"]["p50"]),
            "p95 latency": human_seconds(s["latency_seconds"]["p95"]),
            "split": f"{s['prefixes_split']}/{s['prefixes']}",
            "triggers": ", ".join(f"{n} {k}" for k, n in s["by_trigger"].items()),
        })
    fixed.append(f"tick {human_seconds(runs[0].tick) if runs[0].tick else 'exact'}")
    render_rows(app, rows, title=f"{len(runs)} threshold sets ({' · '.join(fixed)})")
    first = summary(runs[0])
    app.err.print(f"{first['events']:,} events: {first['ignored']:,} ignored, {first['shallow']:,} "
                  f"shallow, {first['duplicates']:,} duplicate (with the first set)")


def register(app: typer.Typer) -> None:
    app.command("simulate-batch")(simulate_batch)
