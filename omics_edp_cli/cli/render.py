"""Rows in, one renderer out: a Rich table or JSON, chosen by `--output`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

from rich.table import Table

from omics_edp_cli.cli.context import AppContext, OutputFormat
from omics_edp_cli.omics.secrets import redact
from omics_edp_cli.ops.simulate.execute import Run
from omics_edp_cli.ops.simulate.report import as_json, json_chunks, summary, timeline

# Above this many rows, tables are plain aligned text and JSON is compact (Rich takes seconds).
MAX_TABLE_ROWS = 500
# Characters gathered before one write, when output is produced in pieces.
WRITE_CHUNK = 1 << 20


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


# -- simulate-batch ------------------------------------------------------------------------------


def render_simulation(app: AppContext, runs: list[Run], *, malformed: int = 0, other: int = 0) -> None:
    """One run: its emitted batches and a summary; several: one comparison row per threshold set.

    The batches are read back from each run's spool as they are printed: a large simulation
    is written in pieces, never built whole in memory.
    """
    if app.output is OutputFormat.json:
        if sum(r.batches for r in runs) <= MAX_TABLE_ROWS:
            data: Any = (as_json(runs[0], malformed=malformed, other=other) if len(runs) == 1
                         else {"runs": [as_json(r, malformed=malformed, other=other) for r in runs]})
            print_json(app, data)
        else:  # compact: indenting makes `json` use its pure Python encoder; Rich highlights slowly
            write_pieces(app, json_chunks(runs, malformed=malformed, other=other), end="\n")
    elif len(runs) == 1:
        _render_one(app, runs[0], malformed, other)
    else:
        _render_comparison(app, runs)


def write_pieces(app: AppContext, pieces: Iterable[str], *, end: str = "") -> None:
    """Text on stdout in writes of about `WRITE_CHUNK` characters, however long it is in all."""
    out = app.out.file
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= WRITE_CHUNK:
            out.write("".join(buffer))
            buffer, size = [], 0
    buffer.append(end)
    out.write("".join(buffer))


def write_plain_table(app: AppContext, rows: Iterable[Mapping[str, Any]], columns: list[str], *,
                      title: str, widths: Mapping[str, int] | None = None) -> None:
    """Aligned text columns: a Rich table of thousands of rows takes seconds.

    With `widths` (each column's widest cell, header included) `rows` is read once, as a
    stream; without, they are gathered first to measure them.
    """
    if widths is None:
        rows = list(rows)
        widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    width = widths
    head = title + "\n" + "  ".join(c.ljust(width[c]) for c in columns).rstrip() + "\n"
    write_pieces(app, chain([head], ("  ".join(str(r[c]).ljust(width[c]) for c in columns).rstrip() + "\n"
                                     for r in rows)))


def human_seconds(value: float | None) -> str:
    """42s, 5m, 5m 02s, 2h, 2h 05m: short durations for tables."""
    if value is None:
        return ""
    sign, value = ("-" if value < 0 else ""), round(abs(value))
    if value < 60:
        return f"{sign}{value}s"
    if value < 3600:
        minutes, seconds = divmod(value, 60)
        return f"{sign}{minutes}m" + (f" {seconds:02d}s" if seconds else "")
    hours, minutes = divmod(value // 60, 60)
    return f"{sign}{hours}h" + (f" {minutes:02d}m" if minutes else "")


def _describe(run: Run) -> str:
    r = run.rules
    parts = [f"count {r.count}", f"quiet {human_seconds(r.quiet_seconds)}", f"depth {r.prefix_depth}",
             f"max-age {human_seconds(r.max_age_seconds) if r.max_age_seconds else 'off'}",
             f"tick {human_seconds(run.tick) if run.tick else 'exact'}"]
    if r.ignore:
        parts.append(f"ignore {', '.join(r.ignore)}")
    return " · ".join(parts)


def _render_one(app: AppContext, run: Run, malformed: int, other: int) -> None:
    columns = ["emitted", "prefix", "count", "trigger", "latency"]
    title = f"Emitted batches ({_describe(run)})"
    if run.batches <= MAX_TABLE_ROWS:
        table_rows = [_table_row(r) for r in timeline(run)]
        if len({r["bucket"] for r in table_rows}) > 1:
            columns.insert(1, "bucket")
        render_rows(app, table_rows, columns, title=title)
    else:  # two passes over the spool: the widths and the bucket column, then the lines
        widths = dict.fromkeys(["emitted", "bucket", *columns[1:]], 0)
        buckets: set[str] = set()
        for row in map(_table_row, timeline(run)):
            buckets.add(row["bucket"])
            for c, w in widths.items():
                if len(str(row[c])) > w:
                    widths[c] = len(str(row[c]))
        if len(buckets) > 1:
            columns.insert(1, "bucket")
        widths = {c: max(len(c), widths[c]) for c in columns}
        write_plain_table(app, map(_table_row, timeline(run)), columns, title=title, widths=widths)
    render_record(app, _summary_lines(summary(run, malformed=malformed, other=other)), title="Summary")


def _table_row(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"emitted": r["emitted_at"], "bucket": r["bucket"], "prefix": r["prefix"], "count": r["count"],
            "trigger": r["trigger"], "latency": human_seconds(r["latency_seconds"])}


def _summary_lines(s: dict[str, Any]) -> dict[str, Any]:
    fpb, lat = s["files_per_batch"], s["latency_seconds"]
    return {
        "events": (f"{s['events']:,} ({s['counted']:,} counted, {s['duplicates']:,} duplicate, "
                   f"{s['ignored']:,} ignored, {s['shallow']:,} shallow)"),
        "batches": f"{s['batches']:,}" + (
            " (" + ", ".join(f"{n:,} {t}" for t, n in s["by_trigger"].items()) + ")" if s["batches"] else ""),
        "files per batch": (f"{fpb['mean']} mean, min {fpb['min']}, max {fpb['max']}"
                            if s["batches"] else "-"),
        "latency first file → event": (f"p50 {human_seconds(lat['p50'])}, p95 {human_seconds(lat['p95'])}"
                                       if s["batches"] else "-"),
        "prefixes": f"{s['prefixes']:,} ({s['prefixes_split']:,} split into several batches)",
        **({"malformed lines": f"{s['malformed']:,}"} if s["malformed"] else {}),
        **({"not object-created": f"{s['not_object_created']:,}"} if s["not_object_created"] else {}),
    }


def _render_comparison(app: AppContext, runs: list[Run]) -> None:
    """One row per threshold set; thresholds that are the same for all go in the title."""
    settings = [{
        "depth": str(r.rules.prefix_depth),
        "count": str(r.rules.count),
        "quiet": human_seconds(r.rules.quiet_seconds),
        "max age": human_seconds(r.rules.max_age_seconds) if r.rules.max_age_seconds else "off",
    } for r in runs]
    varying = [k for k in settings[0] if len({s[k] for s in settings}) > 1]
    fixed = [f"{k} {settings[0][k]}" for k in settings[0] if k not in varying]
    rows = []
    for run, setting in zip(runs, settings, strict=True):
        s = summary(run)
        rows.append({
            **{k: setting[k] for k in varying},
            "batches": s["batches"],
            "files/batch": s["files_per_batch"]["mean"],
            "p50 latency": human_seconds(s["latency_seconds"]["p50"]),
            "p95 latency": human_seconds(s["latency_seconds"]["p95"]),
            "split": f"{s['prefixes_split']}/{s['prefixes']}",
            "triggers": ", ".join(f"{n} {k}" for k, n in s["by_trigger"].items()),
        })
    fixed.append(f"tick {human_seconds(runs[0].tick) if runs[0].tick else 'exact'}")
    render_rows(app, rows, title=f"{len(runs)} threshold sets ({' · '.join(fixed)})")
    first = summary(runs[0])
    app.err.print(f"{first['events']:,} events: {first['ignored']:,} ignored, {first['shallow']:,} "
                  f"shallow, {first['duplicates']:,} duplicate (with the first set)")
