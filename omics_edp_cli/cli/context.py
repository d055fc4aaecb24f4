"""The one object every command gets from `ctx.obj`: AWS clients, output format, consoles."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from omics_edp_cli.aws import ClientFactory


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@dataclass
class AppContext:
    """Built once by the root callback. Tests pass one in with `CliRunner.invoke(obj=...)`."""

    clients: ClientFactory = field(default_factory=ClientFactory)
    output: OutputFormat = OutputFormat.table
    verbose: bool = False
    # stdout is data; everything else (progress, warnings, errors) goes to stderr.
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

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
