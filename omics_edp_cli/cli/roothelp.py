"""`omics-edp --help`: the root listing, drawn with rich's table and panel only.

Typer's own Rich help formatter (`typer.rich_utils`) imports `rich.markdown` (with markdown_it)
and `rich.traceback` (with pygments) before it draws anything: about 75 ms, more than half of
what `omics-edp --help` costs over `import typer, rich.console` (bench/bench_import_time.py).
The root's help has no Markdown and raises nothing, so it is drawn here in the same layout and
styles (usage, description, an Options panel, a Commands panel); every command's own `--help`
is still Typer's. tests/test_cli_help.py holds both to the same content.
"""

from __future__ import annotations

import os
from typing import Any

from rich.columns import Columns
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer import Context
from typer.core import TyperGroup, TyperOption

OPTION, SWITCH, TYPES, DIM = "bold cyan", "bold green", "bold yellow", "dim"


def _console() -> Console:
    """The console Typer's formatter would use: TERMINAL_WIDTH, and colour forced as it forces it."""
    width = os.environ.get("TERMINAL_WIDTH")
    force: bool | None = bool(os.environ.get("GITHUB_ACTIONS") or os.environ.get("FORCE_COLOR")
                              or os.environ.get("PY_COLORS")) or None
    if os.environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(width=int(width) if width else None, force_terminal=force)


def _markup(text: str, style: str = "") -> Text:
    """Rich markup as Typer's "rich" mode reads it. Emoji codes are not replaced: no help here
    has one, and their table (`rich._emoji_codes`) would cost a few ms of start-up."""
    return Text.from_markup(text, style=style, emoji=False)


def _paragraphs(text: str) -> list[str]:
    """Click's rules: blank lines separate paragraphs, single line breaks are joined."""
    return [p.replace("\n", " ").strip() for p in text.strip().split("\n\n")]


def _option_row(param: TyperOption, ctx: Context) -> list[Any]:
    longs = ",".join(o for o in param.opts if o.startswith("--"))
    shorts = ",".join(o for o in param.opts if not o.startswith("--"))
    kind = param.display_type_rich(ctx=ctx)
    helps: list[Text] = []
    if text := getattr(param, "help", None):
        helps.append(_markup("\n".join(_paragraphs(text))))
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", False):
        names = envvar if isinstance(envvar, str) else ", ".join(envvar)
        helps.append(Text(f"[env var: {names}]", style="dim yellow"))
    # Typer's six columns: long and short names, their negative forms (none here), type, help.
    return [Text(longs, style=OPTION), Text(shorts, style=SWITCH), Text(), Text(),
            Text(kind or "", style=TYPES, overflow="fold"), Columns(helps)]


def _panel(title: str, table: Table) -> Panel:
    return Panel(table, border_style=DIM, title=Text(title), title_align="left")


def _table() -> Table:
    return Table(show_header=False, expand=True, box=None, pad_edge=False, padding=(0, 1))


def print_root_help(group: TyperGroup, ctx: Context) -> None:
    """Usage, description, options and commands of the root group, as Typer lays them out."""
    console = _console()
    console.print(Padding(Text.assemble(("Usage: ", "yellow"), group.get_usage(ctx).removeprefix(
        "Usage: ")), 1), style="bold", highlight=False)
    if group.help:  # the first paragraph plain, the rest dim, a blank line between
        first, *rest = _paragraphs(group.help)
        lines = [_markup(first)] + [_markup(f"\n{p}", style=DIM) for p in rest]
        console.print(Padding(Group(*lines), (0, 1, 1, 1)))
    options = _table()
    for param in group.get_params(ctx):
        if isinstance(param, TyperOption) and not param.hidden:
            options.add_row(*_option_row(param, ctx))
    console.print(_panel("Options", options))
    names = [n for n in group.list_commands(ctx) if (c := group.get_command(ctx, n)) and not c.hidden]
    commands = _table()
    commands.add_column(style=OPTION, no_wrap=True, width=max(map(len, names), default=0))
    commands.add_column(ratio=10)
    for name in names:
        command = group.get_command(ctx, name)
        text = (command.short_help or command.help or "") if command else ""
        commands.add_row(Text(name), _markup(_paragraphs(text)[0]))
    console.print(_panel("Commands", commands))
