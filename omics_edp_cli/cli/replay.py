"""`omics-edp replay --since WHEN [--until WHEN]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import ExitCode
from omics_edp_cli.cli.options import (
    ApiServerOption,
    ArchiveBucketOption,
    ArchivePrefixOption,
    ProcessorStackOption,
    RateOption,
    UntilOption,
)
from omics_edp_cli.cli.progress import RichProgress
from omics_edp_cli.cli.render import render_record, render_rows
from omics_edp_cli.ops.replay.delivery import KEY_REFUSED
from omics_edp_cli.ops.replay.execute import ReplayResult, replay
from omics_edp_cli.ops.replay.plan import DEFAULT_CONCURRENCY, ReplayOptions, plan_replay

MAX_PROBLEM_ROWS = 50


def _split(values: list[str] | None) -> tuple[str, ...]:
    """Repeatable options also take comma-separated lists."""
    return tuple(v.strip() for value in values or () for v in value.split(",") if v.strip())


def replay_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Start of the window, inclusive: ISO 8601 (2026-11-23T00:55Z; "
                          "no zone means UTC) or an age (90m, 6h, 3d).")
    ],
    until: UntilOption = None,
    stack: ProcessorStackOption = None,
    bucket: ArchiveBucketOption = None,
    prefix: ArchivePrefixOption = None,
    api_server: ApiServerOption = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only events with this status (repeat, or comma-separate).")
    ] = None,
    run_id: Annotated[
        list[str] | None, typer.Option(help="Only this HealthOmics run id (repeat, or comma-separate).")
    ] = None,
    wes_run_id: Annotated[
        list[str] | None, typer.Option(help="Only this WES run id (repeat, or comma-separate).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Runs delivered at the same time (each run's events stay in order).")
    ] = DEFAULT_CONCURRENCY,
    rate: RateOption = 0.0,
    report: Annotated[
        Path | None, typer.Option(help="Write one JSON line per event here, as it goes "
                                  "(appended when it is also the --resume file).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Skip every event this earlier report shows delivered.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent (count, first and last key, "
                           "per-status counts); send nothing.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Re-send archived payloads to the NGS360 callback, each run's events in order.

    The API token comes from OMICS_EDP_API_TOKEN or the stack's secret and is never printed.
    Exit 1 if any event failed; Ctrl-C stops cleanly (exit 130) and the report stays complete.

    Example: omics-edp replay --stack prod-omics --since 2026-11-23T00:55Z --until 2026-11-23T04:05Z --dry-run
    """
    app = app_context(ctx, output)
    options = ReplayOptions(
        since=since, until=until, stack=stack, bucket=bucket, prefix=prefix, api_server=api_server,
        statuses=_split(status), run_ids=_split(run_id), wes_run_ids=_split(wes_run_id),
        concurrency=concurrency, rate=rate, dry_run=dry_run, report=report, resume=resume,
    )
    plan = plan_replay(options, app.clients)
    target = "nothing (dry run)" if plan.dry_run else plan.api_server
    app.err.print(f"Replaying s3://{plan.bucket}/{plan.prefix}/ {plan.window.describe()} → {target}")
    with RichProgress(app.err) as progress:
        result = replay(plan, app.clients, progress)
    if result.selection.listed == 0:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        app.err.print(f"no archived events between {plan.window.since.strftime(fmt)} and "
                      f"{plan.window.until.strftime(fmt)} in s3://{plan.bucket}/{plan.prefix}/")
        if app.output is OutputFormat.table:
            return
    if plan.dry_run:
        _render_dry_run(app, result)
        return
    _render_result(app, result)
    if result.key_refused:
        hint = f"; after the fix, run again with --resume {plan.report}" if plan.report else ""
        app.err.print(f"[red]Error:[/] {KEY_REFUSED}: stopped after the first refusal, "
                      f"{result.not_sent} event(s) not sent{hint}")
        raise typer.Exit(ExitCode.FAILED)
    if result.interrupted:
        hint = f": run again with --resume {plan.report}" if plan.report else ""
        app.err.print(f"[yellow]Interrupted:[/] {result.not_sent} event(s) not sent{hint}")
        raise typer.Exit(ExitCode.INTERRUPTED)
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


def _render_dry_run(app: AppContext, result: ReplayResult) -> None:
    summary = result.selection.dry_run_summary()
    summary["window"] = result.plan.window.describe()
    render_record(app, summary, title="dry run: nothing sent")


def _render_result(app: AppContext, result: ReplayResult) -> None:
    summary = result.summary()
    problems = [p.as_dict() for p in result.problems]
    if app.output is OutputFormat.json:
        render_rows(app, [], json_data={
            "window": result.plan.window.describe(),
            "source": f"s3://{result.plan.bucket}/{result.plan.prefix}/",
            "target": result.plan.api_server,
            "summary": summary,
            "problems": problems,
            "report": str(result.plan.report) if result.plan.report else None,
            "interrupted": result.interrupted,
            "list_calls": result.selection.list_calls,
            "elapsed_seconds": round(result.elapsed, 3),
        })
        return
    rows = [{"outcome": name.replace("_", " "), "events": count} for name, count in summary.items()]
    render_rows(app, rows, ("outcome", "events"), title="Replay summary")
    if problems:
        shown = problems[:MAX_PROBLEM_ROWS]
        app.out.print(_problem_table(shown))
        if len(problems) > len(shown):
            where = f" (all in {result.plan.report})" if result.plan.report else ""
            app.out.print(f"… and {len(problems) - len(shown)} more{where}")


def _problem_table(problems: list[dict[str, Any]]) -> Table:
    """Key and error get the width (both are long); the short facts stay on one line."""
    table = Table(title="Failed and invalid events", title_justify="left", header_style="bold")
    table.add_column("outcome", no_wrap=True)
    table.add_column("run / status", no_wrap=True)
    table.add_column("http", no_wrap=True)
    table.add_column("key / error", overflow="fold", ratio=1)
    for p in problems:
        http = f"{p['http_status'] or '-'} ({p['attempts']} tries)" if p["attempts"] else "-"
        table.add_row(p["outcome"], f"{p['run'] or '-'}\n{p['status'] or ''}", http,
                      Text(f"{p['key']}\n{p['error'] or ''}"))
    return table


def register(app: typer.Typer) -> None:
    app.command("replay", cls=Command)(replay_command)
