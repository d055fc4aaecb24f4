"""Rows in, one renderer out: a Rich table or JSON, chosen by `--output`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.table import Table

from omics_edp_cli.cli.context import AppContext, OutputFormat
from omics_edp_cli.omics.secrets import redact


def to_json(data: Any) -> str:
    """JSON with every known secret masked (stdout is data people paste into tickets)."""
    return redact(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def print_json(app: AppContext, data: Any) -> None:
    """JSON on stdout: highlighted for a terminal, plain (and fast) for a pipe or file."""
    text = to_json(data)
    if app.out.is_terminal:
        app.out.print_json(text)
    else:
        app.out.file.write(text + "\n")
        app.out.file.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return redact(json.dumps(value, default=str, ensure_ascii=False))
    return redact(str(value))


def render_rows(
    app: AppContext,
    rows: Sequence[Mapping[str, Any]],
    columns: Iterable[str] | None = None,
    *,
    title: str | None = None,
    json_data: Any = None,
) -> None:
    """Print rows as a table, or as JSON (`json_data` if given, else the rows)."""
    if app.output is OutputFormat.json:
        print_json(app, json_data if json_data is not None else list(rows))
        return
    cols = list(columns) if columns is not None else _columns(rows)
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in cols:
        table.add_column(col.replace("_", " "))
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in cols))
    app.out.print(table)


def render_record(app: AppContext, record: Mapping[str, Any], *, title: str | None = None) -> None:
    """One object: a two-column key/value table, or JSON."""
    if app.output is OutputFormat.json:
        print_json(app, record)
        return
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in record.items():
        table.add_row(redact(key), _cell(value))
    app.out.print(table)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    return cols
