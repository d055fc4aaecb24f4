"""Exit codes and the one place exceptions become a one-line message.

| code | meaning |
|------|---------|
| 0    | success |
| 1    | the operation ran and something failed |
| 2    | bad usage or configuration (reported before any AWS call) |
| 130  | interrupted (Ctrl-C) |
"""

from __future__ import annotations

import sys
import traceback
from enum import IntEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from omics_edp_cli.aws import credential_hint
from omics_edp_cli.cli.commands import Group
from omics_edp_cli.errors import ConfigError, OmicsEdpError, OperationError
from omics_edp_cli.omics.secrets import redact


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class CliError(OmicsEdpError):
    """Raised by commands: printed as one line on stderr, then exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = ExitCode.FAILED):
        super().__init__(message)
        self.exit_code = int(exit_code)


def translate(exc: BaseException) -> CliError | None:
    """Map an expected exception to a CliError; None for anything else (a bug: let it show)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ConfigError):
        return CliError(str(exc), ExitCode.USAGE)
    if isinstance(exc, OperationError):
        return CliError(str(exc), ExitCode.FAILED)
    if "botocore" in sys.modules:  # else no botocore error can exist: `--help` need not import it
        return _translate_botocore(exc)
    return None


def _translate_botocore(exc: BaseException) -> CliError | None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )
    from botocore.parsers import ResponseParserError

    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return CliError(credential_hint(exc) or str(exc), ExitCode.USAGE)
    if isinstance(exc, ProfileNotFound):
        return CliError(f"{exc}: check --profile or AWS_PROFILE", ExitCode.USAGE)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = exc.operation_name
        return CliError(f"AWS {op} failed: {err.get('Code')}: {err.get('Message')}", ExitCode.FAILED)
    if isinstance(exc, BotoCoreError):
        return CliError(f"AWS call failed: {exc}", ExitCode.FAILED)
    if isinstance(exc, ResponseParserError):  # e.g. a local AWS's HTML 500 page for an API it lacks
        return CliError("AWS call failed: the endpoint's answer is not an AWS response "
                        "(does this endpoint support the API?)", ExitCode.FAILED)
    return None


class ErrorHandlingGroup(Group):
    """The root group: every subcommand runs inside this translation."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            Console(stderr=True).print("[yellow]Interrupted.[/]")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:
            error = translate(exc)
            if error is None:
                raise
            if _verbose(ctx):
                sys.stderr.write(redact("".join(traceback.format_exception(exc))))
            Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {escape(redact(str(error)))}")
            raise typer.Exit(error.exit_code) from None


def _verbose(ctx: Any) -> bool:
    return bool(getattr(ctx.find_root().obj, "verbose", False))
