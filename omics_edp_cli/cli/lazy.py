"""The root group loads a command's module only when that command runs.

`omics-edp --help` and shell completion list every command with the first paragraph of its help
from a table (`LazyCommand`), without importing the command's module (and through it boto3);
`omics-edp simulate-batch ...` imports `cli/simulate.py` only. A test checks that the table's
help is the command's own (tests/test_cli_startup.py).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand

from omics_edp_cli.cli.errors import ErrorHandlingGroup


@dataclass(frozen=True)
class LazyCommand:
    """A command (or command group) of the root, by the module whose `register(app)` adds it."""

    name: str
    module: str
    help: str  # the first paragraph of the command's help, as `omics-edp --help` lists it


class _LoadOnAccess(MutableMapping[str, Any]):
    """The root group's `commands`: every name is known; a command is built when first read.

    Typer reads `commands.keys()` for "Did you mean ...?" suggestions (no import needed) and
    `commands[name]` / `.get(name)` / `.items()` to run or walk commands (the module is imported).
    """

    def __init__(self, lazy: tuple[LazyCommand, ...], load: Any):
        self._lazy = {c.name: c for c in lazy}
        self._loaded: dict[str, Any] = {}
        self._load = load

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in self._lazy:
                raise KeyError(name)
            self._loaded[name] = self._load(self._lazy[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (name for name in self._loaded if name not in self._lazy)

    def __len__(self) -> int:
        return len(self._lazy.keys() | self._loaded.keys())

    def summary(self, name: str) -> Any:
        """A stand-in carrying only name and help, for listings; the loaded command if there is one."""
        if name in self._loaded or name not in self._lazy:
            return self._loaded.get(name)
        return TyperCommand(name=name, help=self._lazy[name].help)


class LazyGroup(ErrorHandlingGroup):
    """The root group: set `lazy_commands` in a subclass (`typer.Typer(cls=...)` takes a class)."""

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        eager = self.commands
        self.commands = _LoadOnAccess(self.lazy_commands, self._build)
        self.commands.update(eager)
        self._listing = False

    def _build(self, entry: LazyCommand) -> Any:
        holder = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        importlib.import_module(entry.module).register(holder)
        return typer.main.get_group(holder).commands[entry.name]

    @contextlib.contextmanager
    def _summaries(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        commands = self.commands
        if self._listing and isinstance(commands, _LoadOnAccess):
            return commands.summary(cmd_name)
        return commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with self._summaries():
            if self.rich_markup_mode is None:
                super().format_help(ctx, formatter)
            else:  # Typer's Rich formatter, without the imports the root's help never uses
                from omics_edp_cli.cli.roothelp import print_root_help

                print_root_help(self, ctx)

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        with self._summaries():
            return list(super().shell_complete(ctx, incomplete))
