"""The progress protocol long runs report through (reconcile on the Lambda side, replay in the
CLI): phases with a total (None while unknown), then advances. The CLI draws it; the Lambda
passes nothing and gets `NoProgress`."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, count: int = 1) -> None: ...


class NoProgress:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass
