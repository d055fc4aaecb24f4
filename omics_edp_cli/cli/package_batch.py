"""`omics-edp package-batch EVENT.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import ExitCode
from omics_edp_cli.cli.render import print_json, render_record, render_rows
from omics_edp_cli.ops.inputs import load_json_file
from omics_edp_cli.ops.package_batch import PackageBatchOptions, check_event, package_batch


def package_batch_command(
    ctx: typer.Context,
    event_file: Annotated[
        Path, typer.Argument(metavar="EVENT.json", help="A package-objects-ready event (- for stdin).")
    ],
    registry: Annotated[
        str | None, typer.Option(help="Registry bucket, s3://BUCKET (env: REGISTRY_BUCKET).")
    ] = None,
    quarantine: Annotated[
        str | None,
        typer.Option(help="Where packages the workflow refuses go, s3://BUCKET (env: QUARANTINE_BUCKET)."),
    ] = None,
    workflow: Annotated[
        str | None, typer.Option(help="Workflow to validate against (env: WORKFLOW_NAME; default: the "
                                 "registry's default).")
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(help="Take the registry, quarantine, workflow, topic and templates from this deployed "
                     "packager stack (flags and environment win)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the package's name, entries, metadata and destination; "
                           "push and send nothing.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Build the Quilt package of one EDP batch, exactly as the packager Lambda would.

    Example: omics-edp package-batch event.json --registry s3://my-registry --dry-run
    """
    app = app_context(ctx, output)
    event = load_json_file(str(event_file))
    check_event(event, "stdin" if str(event_file) == "-" else str(event_file))
    options = PackageBatchOptions(registry=registry, quarantine=quarantine, workflow=workflow, stack=stack,
                                  dry_run=dry_run)
    result = package_batch(event, options, app.clients)
    summary = result.as_dict()
    if app.output is OutputFormat.json:
        print_json(app, summary)
    else:
        entries = summary.pop("entries", None)
        metadata = summary.pop("metadata", None)
        render_record(app, summary, title="dry run: nothing pushed or sent" if dry_run else None)
        if isinstance(entries, list):
            render_rows(app, entries, ["logical_key", "source", "size"], title="Entries")
        if metadata is not None:
            app.err.print("metadata:")
            print_json(app, metadata)
    if not result.ok:
        app.err.print(f"[red]✗ {result.outcome}:[/] {result.error or ''}")
        raise typer.Exit(ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    app.command("package-batch", cls=Command)(package_batch_command)
