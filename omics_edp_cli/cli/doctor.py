"""`omics-edp doctor`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.markup import escape

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import ExitCode
from omics_edp_cli.cli.render import print_json
from omics_edp_cli.ops.doctor import Doctor


def doctor(
    ctx: typer.Context,
    stack: Annotated[str, typer.Option("--stack", help="Name of a deployed processor or EDP stack.")],
    hours: Annotated[
        int, typer.Option(min=1, help="How far back to look for Lambda errors, in hours.")
    ] = 24,
    output: OutputOption = None,
) -> None:
    """Check a deployed stack end to end and print a checklist with a fix for each failure.

    Example: omics-edp doctor --stack prod-omics
    """
    app = app_context(ctx, output)
    checks = Doctor(app.clients, stack, errors_window=timedelta(hours=hours)).run()
    if app.output is OutputFormat.json:
        print_json(app, [c.row() for c in checks])
    else:
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            app.out.print(f"{mark} {escape(c.name)}: {escape(c.detail)}")
            if not c.ok:
                app.out.print(f"    [yellow]fix:[/] {escape(c.fix)}")
    failed = sum(not c.ok for c in checks)
    app.err.print(f"{len(checks) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    app.command("doctor", cls=Command)(doctor)
