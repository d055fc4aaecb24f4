"""`omics-edp process EVENT.json`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import CliError, ExitCode
from omics_edp_cli.cli.render import print_json, render_record
from omics_edp_cli.ops.inputs import load_json_file, load_sample, sample_names
from omics_edp_cli.ops.process import ProcessOptions, check_event, process_event


def process(
    ctx: typer.Context,
    event_file: Annotated[
        Path | None,
        typer.Argument(metavar="EVENT.json", help="A HealthOmics run status event (- for stdin)."),
    ] = None,
    sample: Annotated[
        str | None,
        typer.Option(help=f"Use a sample event shipped with the tool: {', '.join(sample_names())}."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the payload and archive key; write and send nothing.")
    ] = False,
    enrich: Annotated[
        bool,
        typer.Option(help="Look up run tags, task logs and outputs in HealthOmics and S3."),
    ] = True,
    bucket: Annotated[
        str | None, typer.Option(help="Data-lake bucket for the archive (env: DATA_LAKE_BUCKET).")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Archive key prefix (env: S3_PREFIX; default: omics-run-events).")
    ] = None,
    api_server: Annotated[
        str | None, typer.Option(help="NGS360 WES API base URL (env: API_SERVER).")
    ] = None,
    secret_id: Annotated[
        str | None,
        typer.Option(help="Secrets Manager secret with {\"AUTH_TOKEN\": …} (env: ENV_SECRETS). "
                     "OMICS_EDP_API_TOKEN or AUTH_TOKEN in the environment win."),
    ] = None,
    kms_key_id: Annotated[
        str | None, typer.Option(help="Encrypt the archive with this KMS key (default: AES256).")
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(help="Take bucket, prefix, API server, key and token from this deployed processor "
                     "stack (flags and environment win)."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Run the processor locally on one event, exactly as the Lambda would.

    Example: omics-edp process --sample completed --dry-run --no-enrich
    """
    app = app_context(ctx, output)
    if (event_file is None) == (sample is None):
        raise CliError("give an EVENT.json file or --sample NAME (one of them)", ExitCode.USAGE)
    if sample is not None:
        event, source = load_sample(sample), f"sample {sample!r}"
    else:
        event, source = load_json_file(str(event_file)), str(event_file)
    check_event(event, source)
    options = ProcessOptions(bucket=bucket, prefix=prefix, api_server=api_server, secret_id=secret_id,
                             kms_key_id=kms_key_id, stack=stack, dry_run=dry_run, enrich=enrich)
    with contextlib.ExitStack() as spinner:
        if not dry_run:  # a spinner on a terminal: the callback may be retried for a while
            spinner.enter_context(app.err.status("archiving and sending the event…"))
        result = process_event(event, options, app.clients, progress=_RetryLines(app))
    for warning in result.warnings:
        app.err.print(f"[yellow]warning:[/] {warning}")
    summary = result.as_dict()
    if app.output is OutputFormat.json:
        print_json(app, summary)
    else:
        payload = summary.pop("payload", None)
        summary.pop("warnings", None)
        render_record(app, summary, title="dry run: nothing written or sent" if dry_run else None)
        if payload is not None:
            print_json(app, payload)
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


class _RetryLines:
    """One stderr line per failed callback attempt that is tried again."""

    def __init__(self, app: AppContext):
        self.app = app

    def retrying(self, failed_attempt: int, attempts: int, reason: str) -> None:
        self.app.err.print(f"[yellow]callback attempt {failed_attempt} of {attempts} failed "
                           f"({escape(reason)}); trying again[/]")


def register(app: typer.Typer) -> None:
    app.command("process", cls=Command)(process)
