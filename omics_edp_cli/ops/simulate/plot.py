"""`simulate-batch --plot FILE`: the simulated timeline as a picture (matplotlib, the `[plot]` extra).

One panel per threshold set; one row per prefix; each object a tick at its event time; each
batch a bar from its first object to its emission, coloured by trigger. Every bar carries the
id `batch-{batch_id}` (visible in an SVG), so what was drawn can be checked against the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omics_edp_cli.edp.engine import Emission
from omics_edp_cli.edp.s3events import iso_time
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.simulate.execute import Run

FORMATS = {".png": "png", ".svg": "svg"}
TRIGGER_COLOURS = {"count": "#4c72b0", "quiet": "#55a868", "max-age": "#dd8452", "flush": "#8c8c8c"}
# Beyond this many prefixes a panel shows the ones with the most batches (and says so).
MAX_ROWS = 40
INSTALL_HINT = "pip install 'omics-edp-cli[plot]'"


@dataclass
class PlotResult:
    path: Path
    panels: int
    bars: int
    ticks: int
    rows: int


def check_plot_file(text: str) -> Path:
    """The `--plot` path, checked before anything runs: a known format and matplotlib present."""
    path = Path(text)
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"--plot {text}: use a .png or .svg file name")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    if not path.parent.is_dir():
        raise ConfigError(f"--plot {text}: no such directory {path.parent}")
    return path


def label(run: Run) -> str:
    r = run.rules
    max_age = f"max-age {r.max_age_seconds:g}s" if r.max_age_seconds else "max-age off"
    return f"count {r.count} · quiet {r.quiet_seconds:g}s · depth {r.prefix_depth} · {max_age}"


def plot_runs(runs: list[Run], path: Path) -> PlotResult:
    """Draw `runs` (simulated with `keep_objects=True` for the ticks) into `path`."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    # A picture holds every batch anyway: read each run's spool into memory once.
    per_run = [list(run.emissions()) for run in runs]
    t0 = min((e.first_event_at for emitted in per_run for e in emitted), default=0.0)
    several_buckets = len({e.bucket for emitted in per_run for e in emitted}) > 1
    per_panel_rows = [_rows(emitted) for emitted in per_run]
    height = sum(1.2 + 0.28 * max(1, len(rows)) for rows, _ in per_panel_rows) + 0.8
    fig = Figure(figsize=(11, min(height, 60)), layout="constrained")
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False)[:, 0]
    bars = ticks = 0
    for ax, run, emitted, (rows, hidden) in zip(axes, runs, per_run, per_panel_rows, strict=True):
        index = {key: i for i, key in enumerate(rows)}
        shown = [e for e in emitted if (e.bucket, e.prefix) in index]
        if shown:
            container = ax.barh(
                [index[(e.bucket, e.prefix)] for e in shown],
                [max((e.emitted_at - e.first_event_at) / 60, 0.05) for e in shown],
                left=[(e.first_event_at - t0) / 60 for e in shown],
                height=0.6, color=[TRIGGER_COLOURS.get(e.trigger, "#333333") for e in shown],
                alpha=0.45, edgecolor="black", linewidth=0.4)
            for patch, e in zip(container.patches, shown, strict=True):
                patch.set_gid(f"batch-{e.batch_id}")
            bars += len(shown)
            xs = [(t - t0) / 60 for e in shown for t in e.times]
            ys = [index[(e.bucket, e.prefix)] for e in shown for _ in e.times]
            if xs:
                ax.scatter(xs, ys, marker="|", s=40, linewidths=0.6, color="black")
                ticks += len(xs)
        ax.set_yticks(range(len(rows)), [_row_label(key, several_buckets) for key in rows], fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        title = label(run) + (f" ({hidden} more prefixes not shown)" if hidden else "")
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel(f"minutes after the first object ({iso_time(t0)})")
    fig.legend(handles=[Patch(facecolor=c, alpha=0.45, edgecolor="black", label=t)
                        for t, c in TRIGGER_COLOURS.items()] +
               [_tick_handle()], loc="outside upper right", ncols=5, fontsize=8, frameon=False)
    fig.suptitle("simulate-batch: batches per prefix (bar: first object → event)", fontsize=10,
                 x=0.01, ha="left")
    fig.savefig(path, format=FORMATS[path.suffix.lower()], dpi=110)
    return PlotResult(path, len(runs), bars, ticks, max((len(r) for r, _ in per_panel_rows), default=0))


def _rows(emitted: Sequence[Emission]) -> tuple[list[tuple[str, str]], int]:
    per_key: dict[tuple[str, str], int] = {}
    for e in emitted:
        per_key[(e.bucket, e.prefix)] = per_key.get((e.bucket, e.prefix), 0) + 1
    keys = sorted(per_key)
    if len(keys) <= MAX_ROWS:
        return keys, 0
    busiest = sorted(sorted(per_key, key=lambda k: -per_key[k])[:MAX_ROWS])
    return busiest, len(keys) - MAX_ROWS


def _row_label(key: tuple[str, str], several_buckets: bool) -> str:
    return f"{key[0]}/{key[1]}" if several_buckets else key[1]


def _tick_handle() -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="|", linestyle="None", color="black", label="object")
