"""The `omics-edp` application: global options, one context object, every command group."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from omics_edp_cli import __version__
from omics_edp_cli.cli.context import OUTPUT_HELP, AppContext, OutputFormat
from omics_edp_cli.cli.lazy import LazyCommand, LazyGroup
from omics_edp_cli.omics.secrets import remember

# Every command, in the order `omics-edp --help` lists them. Each module is imported when its
# command runs (or its own --help is asked for); `help` is what the listing shows meanwhile and
# must be the first paragraph of the command's help (tests/test_cli_startup.py checks).
COMMANDS = (
    LazyCommand("process", "omics_edp_cli.cli.process",
                "Run the processor locally on one event, exactly as the Lambda would."),
    LazyCommand("deploy", "omics_edp_cli.cli.deploy",
                "Deploy a stack: package, upload by content hash, show the change set, execute, "
                "follow events."),
    LazyCommand("package", "omics_edp_cli.cli.package",
                "Build a Lambda zip: byte-identical for identical sources; prints path, size and sha256."),
    LazyCommand("package-batch", "omics_edp_cli.cli.package_batch",
                "Build the Quilt package of one EDP batch, exactly as the packager Lambda would."),
    LazyCommand("replay", "omics_edp_cli.cli.replay",
                "Re-send archived payloads to the NGS360 callback, each run's events in order."),
    LazyCommand("reconcile", "omics_edp_cli.cli.reconcile",
                "Compare every HealthOmics run in the window with what NGS360 was sent; --fix sends "
                "the rest."),
    LazyCommand("simulate-batch", "omics_edp_cli.cli.simulate",
                "Run the EDP batching engine offline and show the batches it would emit."),
    LazyCommand("doctor", "omics_edp_cli.cli.doctor",
                "Check a deployed stack end to end and print a checklist with a fix for each failure."),
    LazyCommand("demo", "omics_edp_cli.cli.demo",
                "Run both pipelines end to end on this machine: no AWS account needed."),
    LazyCommand("batches", "omics_edp_cli.cli.batches",
                "Open batches, recent emissions and forced flushes of the EDP batcher "
                "(a deployed stack, a DynamoDB table, or a local SQLite file)."),
    LazyCommand("dlq", "omics_edp_cli.cli.dlq",
                "Inspect, redrive and purge the dead-letter queues of either stack."),
    LazyCommand("tail", "omics_edp_cli.cli.tail",
                "Follow an event bus live, printing each event as it arrives, until Ctrl-C (or a limit)."),
)


class RootGroup(LazyGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    name="omics-edp",
    cls=RootGroup,
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
    from omics_edp_cli.omics.config import AUTH_TOKEN, CLI_TOKEN_ENV  # not needed for --help

    for name in (CLI_TOKEN_ENV, AUTH_TOKEN):  # masked in everything printed, by every command
        remember((os.environ.get(name) or "").strip())
    import logging  # here, not at the top: `omics-edp --help` starts without it

    # The project's log lines go where --verbose sends them; without a handler, Python's
    # last-resort one would print every warning raw on stderr, beside the CLI's own line.
    package_log = logging.getLogger("omics_edp_cli")
    if not any(isinstance(h, logging.NullHandler) for h in package_log.handlers):
        package_log.addHandler(logging.NullHandler())
    if obj.verbose:
        from omics_edp_cli.omics.logredact import RedactingFilter

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.INFO)
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
    ctx.obj = obj


def main() -> None:
    """Console-script entry point."""
    app()
