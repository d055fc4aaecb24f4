"""The `omics-edp` application: global options, one context object, every command group."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from omics_edp_cli import __version__
from omics_edp_cli.cli import (
    batches,
    demo,
    deploy,
    dlq,
    doctor,
    package,
    package_batch,
    process,
    reconcile,
    replay,
    simulate,
    tail,
)
from omics_edp_cli.cli.context import OUTPUT_HELP, AppContext, OutputFormat
from omics_edp_cli.cli.errors import ErrorHandlingGroup
from omics_edp_cli.omics.secrets import RedactingFilter, remember
from omics_edp_cli.ops.deployment import LAMBDA_TOKEN_ENV, TOKEN_ENV

app = typer.Typer(
    name="omics-edp",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help=(
        "Deploy, replay, tune and inspect the NGS360 Omics run event processor and the "
        "EDP S3 batcher.\n\nExit codes: 0 success, 1 the operation failed, "
        "2 bad usage or configuration, 130 interrupted."
    ),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"omics-edp {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile (default: boto3's credential chain).")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: AWS_REGION / profile).")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="Send every AWS call to this endpoint (a local moto server). "
            "AWS_ENDPOINT_URL works too.",
        ),
    ] = None,
    output: Annotated[
        OutputFormat | None,
        typer.Option("--output", "-o", help=OUTPUT_HELP + " Also accepted after the command name.",
                     envvar="OMICS_EDP_OUTPUT"),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs and full tracebacks on stderr.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Global options apply to every command: before the command name (-o/--output also after it)."""
    obj = ctx.obj if isinstance(ctx.obj, AppContext) else AppContext()
    clients = obj.clients
    clients.profile = profile or clients.profile
    clients.region = region or clients.region
    clients.endpoint_url = endpoint_url or clients.endpoint_url
    if output is not None:
        obj.output = output
    obj.verbose = verbose or obj.verbose
    for name in (TOKEN_ENV, LAMBDA_TOKEN_ENV):  # masked in everything printed, by every command
        remember((os.environ.get(name) or "").strip())
    if obj.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.INFO)
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
    ctx.obj = obj


for module in (process, deploy, package, package_batch, replay, reconcile, simulate, batches, dlq, doctor,
               demo, tail):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
