"""The phases of a long operation (replay, reconcile) as Rich progress bars on stderr.

Renders the progress protocol of `omics/progress.py`: a phase with its total, then advances.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class RichProgress:
    """Each phase as a Rich progress bar on stderr (done / total, rate, ETA)."""

    def __init__(self, console: Console):
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            _RateColumn(), TimeRemainingColumn(), console=console,
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self.progress.stop()

    def phase(self, name: str, total: int | None) -> None:
        self._finish()
        # Nothing to do is said once in words afterwards, not drawn as a 0/0 bar.
        self._task = None if total == 0 else self.progress.add_task(name, total=total)

    def advance(self, count: int = 1) -> None:
        if self._task is not None:
            self.progress.advance(self._task, count)

    def _finish(self) -> None:
        if self._task is not None:
            task = self.progress.tasks[self._task]
            if task.completed == 0:
                self.progress.remove_task(self._task)
            else:
                self.progress.update(self._task, total=task.completed)
                self.progress.stop_task(self._task)
            self._task = None
