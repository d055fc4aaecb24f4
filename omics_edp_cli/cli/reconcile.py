"""`omics-edp reconcile --since WHEN [--until WHEN] [--fix]`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

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
from omics_edp_cli.cli.render import render_rows
from omics_edp_cli.omics.reconcile import IN_SYNC, ReconcileResult
from omics_edp_cli.ops.reconcile.execute import reconcile
from omics_edp_cli.ops.reconcile.plan import ReconcileOptions, ReconcilePlan, plan_reconcile
from omics_edp_cli.ops.replay.plan import DEFAULT_CONCURRENCY

MAX_ROWS = 200


def reconcile_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Runs created, started or stopped from here (inclusive), or still "
                          "active: ISO 8601 (2026-11-23T00:55Z) or an age (90m, 6h, 3d).")
    ],
    until: UntilOption = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Send what NGS360 missed, through the processor's own "
                           "code (RUNNING first when the receiver never saw the run start).")
    ] = False,
    stack: ProcessorStackOption = None,
    bucket: ArchiveBucketOption = None,
    prefix: ArchivePrefixOption = None,
    api_server: ApiServerOption = None,
    concurrency: Annotated[
        int, typer.Option(help="Runs fixed at the same time (each run's events stay in order).")
    ] = DEFAULT_CONCURRENCY,
    rate: RateOption = 0.0,
    output: OutputOption = None,
) -> None:
    """Compare every HealthOmics run in the window with what NGS360 was sent; --fix sends the rest.

    Report-only by default (no write, no callback). Exit 0 when every run is in sync, 1 when a
    run needs attention. The API token (for --fix) comes from OMICS_EDP_API_TOKEN or the stack's
    secret and is never printed.

    Example: omics-edp reconcile --stack prod-omics --since 24h --fix
    """
    app = app_context(ctx, output)
    options = ReconcileOptions(since=since, until=until, fix=fix, stack=stack, bucket=bucket,
                               prefix=prefix, api_server=api_server, concurrency=concurrency,
                               rate=rate)
    plan = plan_reconcile(options, app.clients)
    target = plan.api_server if plan.fix else "nothing (report only)"
    app.err.print(f"Reconciling HealthOmics runs {plan.window.describe()} with "
                  f"s3://{plan.bucket}/{plan.prefix}/ → {target}")
    with RichProgress(app.err) as progress:
        result = reconcile(plan, app.clients, progress)
    _render(app, plan, result)
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


def _render(app: AppContext, plan: ReconcilePlan, result: ReconcileResult) -> None:
    summary = result.summary()
    not_in_sync = [r.as_dict() for r in result.runs if r.state != IN_SYNC or r.fixes]
    if app.output is OutputFormat.json:
        render_rows(app, [], json_data={
            "source": f"s3://{plan.bucket}/{plan.prefix}/",
            "target": plan.api_server if plan.fix else None,
            "ok": result.ok,
            "summary": summary,
            "attention": [r.run_id for r in result.attention],
            "runs": not_in_sync,
        })
        return
    counts = {k: v for k, v in summary.items() if k in result.counts()}
    render_rows(app, [{"runs": k.replace("_", " "), "count": v} for k, v in counts.items()],
                ("runs", "count"), title=f"Reconcile {summary['window']}")
    if not_in_sync:
        app.out.print(_runs_table(not_in_sync[:MAX_ROWS]))
        if len(not_in_sync) > MAX_ROWS:
            app.out.print(f"… and {len(not_in_sync) - MAX_ROWS} more (use -o json for all)")
    verdict = "every run in sync" if result.ok else f"{len(result.attention)} run(s) need attention"
    hint = "" if result.ok or plan.fix else ": run again with --fix to send what is missing"
    app.err.print(f"{verdict}{hint}")


def _runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Runs not in sync", title_justify="left", header_style="bold")
    table.add_column("HealthOmics run", no_wrap=True)
    table.add_column("now", no_wrap=True)
    table.add_column("state", ratio=1, overflow="fold")
    table.add_column("archive shows sent", ratio=1, overflow="fold")
    for r in rows:
        fixed = " → ".join(f"{f['status']} {f['outcome']}" for f in r["fixes"] if f["status"])
        table.add_row(r["run_id"], r["status"] or "-", r["detail"] + (f"\n{fixed}" if fixed else ""),
                      ", ".join(r["sent"]) or "-")
    return table


def register(app: typer.Typer) -> None:
    app.command("reconcile", cls=Command)(reconcile_command)
