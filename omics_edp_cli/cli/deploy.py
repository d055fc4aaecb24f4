"""`omics-edp deploy processor|edp`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import CliError, ExitCode
from omics_edp_cli.cli.package import Kind
from omics_edp_cli.cli.render import print_json, render_record, render_rows
from omics_edp_cli.errors import OperationError
from omics_edp_cli.ops.deploy.execute import (
    DEFAULT_STACK_NAMES,
    TERMINAL_OK,
    DeployHooks,
    DeployRequest,
    DeployResult,
    deploy_stack,
)
from omics_edp_cli.ops.deploy.parameters import parse_overrides, read_parameters_file


def deploy(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="Which stack: processor, edp or packager.")],
    parameters: Annotated[
        Path, typer.Option("--parameters", "-p", help="CloudFormation parameters file (JSON).")
    ],
    stack_name: Annotated[
        str | None,
        typer.Option(help=f"Stack name (default: {DEFAULT_STACK_NAMES['processor']} / "
                     f"{DEFAULT_STACK_NAMES['edp']} / {DEFAULT_STACK_NAMES['packager']})."),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", help="Key=Value overriding the file; repeatable. The API token "
                     "is better given as OMICS_EDP_API_TOKEN."),
    ] = None,
    code_bucket: Annotated[
        str | None,
        typer.Option(help="Bucket for the Lambda package (processor default: DataLakeBucket; "
                     "required for edp and packager)."),
    ] = None,
    code_prefix: Annotated[
        str | None,
        typer.Option(help="Key prefix for the package (default: BucketPrefix/lambda for the "
                     "processor, omics-edp/lambda for edp)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Execute without asking.")] = False,
    no_execute: Annotated[
        bool, typer.Option("--no-execute", help="Create the change set and show it; change nothing.")
    ] = False,
    termination_protection: Annotated[
        bool, typer.Option("--termination-protection", help="Turn termination protection on after success.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Deploy a stack: package, upload by content hash, show the change set, execute, follow events.

    Example: omics-edp deploy processor --parameters parameters.json
    """
    app = app_context(ctx, output)
    values = read_parameters_file(parameters)
    overrides = parse_overrides(parameter or [])
    interactive = sys.stdin.isatty() and app.err.is_terminal
    if not (yes or no_execute or interactive):
        raise CliError("refusing to deploy without confirmation: not a terminal; pass --yes "
                       "(or --no-execute to only show the change set)", ExitCode.USAGE)
    request = DeployRequest(
        kind=kind.value, parameters=values, overrides=overrides, stack_name=stack_name,
        code_bucket=code_bucket, code_prefix=code_prefix, assume_yes=yes, no_execute=no_execute,
        termination_protection=termination_protection, source=str(parameters),
    )
    result = deploy_stack(app.clients, request, _hooks(app))
    if result.up_to_date:
        app.err.print(f"[green]✓ {result.stack_name} is up to date[/] (no changes)")
    elif not result.executed:
        app.err.print(f"change set {result.change_set} left for review (--no-execute); "
                      "nothing executed")
    elif result.ok:
        app.err.print(f"[green]✓ {result.stack_name}: {result.status}[/]")
    if app.output is OutputFormat.json:
        print_json(app, {"stack": result.stack_name, "status": result.status,
                         "up_to_date": result.up_to_date, "code_key": result.code_key,
                         "changes": result.changes, "outputs": result.outputs,
                         "failures": result.failures,
                         "termination_protection": _protection(result)})
    elif result.outputs and result.status in TERMINAL_OK:
        render_record(app, result.outputs, title="Outputs")
    if result.protection_error:
        raise OperationError(result.protection_error)
    if not result.ok:
        app.err.print(f"[bold red]✗ {result.stack_name}: {result.status}[/] — why it failed:")
        for failure in result.failures or [{"resource": result.stack_name, "type": "",
                                             "status": result.status, "reason": "see stack events"}]:
            app.err.print(f"  {escape(failure['resource'])} ({escape(failure['type'])}): "
                          f"{escape(failure['reason'])}")
        raise typer.Exit(ExitCode.FAILED)


def _protection(result: DeployResult) -> str | None:
    if result.protection_error:
        return "failed"
    return "on" if result.executed and result.status in TERMINAL_OK and result.protection_requested else None


def _hooks(app: AppContext) -> DeployHooks:
    def plan(changes: list[dict[str, str]]) -> None:
        if not changes:
            app.err.print("no resource changes")
            return
        counts = {a: sum(c["action"] == a for c in changes) for a in ("Add", "Modify", "Remove")}
        replaced = [c["resource"] for c in changes if c["replacement"] == "REPLACED"]
        app.err.print(f"plan: {counts['Add']} to add, {counts['Modify']} to modify, "
                      f"{counts['Remove']} to remove" + (f"; [bold red]replaced: {', '.join(replaced)}[/]"
                                                        if replaced else ""))
        if app.output is OutputFormat.table:
            render_rows(app, changes, ["action", "resource", "type", "replacement"], title="Change set")

    def event(e: dict[str, str]) -> None:
        style = "red" if "FAILED" in e["status"] else "green" if e["status"].endswith("COMPLETE") else ""
        status = f"[{style}]{e['status']}[/]" if style else e["status"]
        reason = f" {escape(e['reason'])}" if e["reason"] else ""
        app.err.print(f"{e['time']} {escape(e['resource'])} {status}{reason}")

    return DeployHooks(
        info=lambda message: app.err.print(escape(message)),
        event=event,
        plan=plan,
        confirm=lambda question: typer.confirm(question, default=False, err=True),
    )


def register(app: typer.Typer) -> None:
    app.command("deploy", cls=Command)(deploy)
