"""The one object every command gets from `ctx.obj`: AWS clients, output format, consoles."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Annotated, Any, TextIO, cast

import typer
from rich.console import Console

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.omics.secrets import redact


class RedactedStream:
    """stdout or stderr (looked up at each write, as test runners swap them) with every known
    secret masked in whatever is written: the last guard for messages printed directly."""

    def __init__(self, name: str):
        self.name = name

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.name == "stderr" else sys.stdout

    def write(self, text: str) -> int:
        return self.stream.write(redact(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def _console(name: str) -> Console:
    return Console(file=cast(IO[str], RedactedStream(name)), soft_wrap=True)


@dataclass
class AppContext:
    """Built once by the root callback. Tests pass one in with `CliRunner.invoke(obj=...)`."""

    clients: ClientFactory = field(default_factory=ClientFactory)
    output: OutputFormat = OutputFormat.table
    verbose: bool = False
    # stdout is data; everything else (progress, warnings, errors) goes to stderr.
    out: Console = field(default_factory=lambda: _console("stdout"))
    err: Console = field(default_factory=lambda: _console("stderr"))

    def client(self, service: str) -> Any:
        return self.clients.client(service)


OUTPUT_HELP = "table for people, json for scripts (stdout only)."

# Every command also takes `-o/--output` after its name (`omics-edp replay ... -o json`); given
# both before and after the command name, the one after wins.
OutputOption = Annotated[
    OutputFormat | None,
    typer.Option("--output", "-o", help=OUTPUT_HELP + " Also accepted before the command name."),
]


def app_context(ctx: typer.Context, output: OutputFormat | None = None) -> AppContext:
    """The AppContext of this invocation (the root callback always sets one).

    `output` is the command's own `-o/--output`, if given: it overrides the global one.
    """
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, AppContext):  # a sub-app invoked on its own, e.g. in a test
        obj = root.obj = AppContext()
    if output is not None:
        obj.output = output
    return obj
