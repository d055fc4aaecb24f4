"""`simulate-batch`: the EDP engine offline, on one pass over a stream of S3 events.

Each threshold set gets its own engine and in-memory store; every event is fed to all of
them, so the input is read once however many sets are compared. The flush schedule is
modelled: a due batch is emitted at the first tick (a multiple of `tick` seconds, like a
`rate(1 minute)` schedule) at or after its deadline; `tick` 0 emits exactly at the deadline.
After the last event the schedule keeps running until every batch has been emitted.

Memory grows with the prefixes that have an open or recently emitted batch, not with the
number of events (the emitted batches themselves are kept: they are the output).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.engine import IGNORED, TRIGGERS, Added, Emission, Engine
from omics_edp_cli.edp.memory_store import MemoryStore
from omics_edp_cli.edp.s3events import ObjectEvent, iso_time

PROGRESS_EVERY = 8192


@dataclass
class Run:
    """One threshold set being simulated."""

    rules: BatchRules
    tick: float
    # Record each batch's objects (its manifest): JSON output and plots need them, tables don't.
    keep_objects: bool = False
    engine: Engine = field(init=False)
    store: MemoryStore = field(default_factory=MemoryStore)
    emitted: list[Emission] = field(default_factory=list)
    totals: Added = field(init=False)
    ignored: int = 0
    shallow: int = 0
    clock: float = -math.inf
    peak_held: int = 0
    # The first flush run that may have something to do (a tick at or after the earliest wake-up).
    next_run: float = math.inf

    def __post_init__(self) -> None:
        self.engine = Engine(self.rules, keep_members=False, keep_objects=self.keep_objects)
        self.totals = Added(self.emitted)
        # Bound once: `feed` runs per event and threshold set.
        self._classify, self._add = self.engine.classify, self.engine.add_one
        self._live, self._touch = self.store.live, self.store.touch

    @property
    def counted(self) -> int:
        return self.totals.counted

    @property
    def duplicates(self) -> int:
        return self.totals.duplicates

    def feed(self, event: ObjectEvent) -> None:
        # The hot loop of the simulator: one call per event and threshold set.
        now = event.time
        if now < self.clock:
            now = self.clock
        else:
            self.clock = now
        if now >= self.next_run:
            self.advance(now)
        prefix = self._classify(event.key)
        if prefix[-1] != "/":
            if prefix == IGNORED:
                self.ignored += 1
            else:
                self.shallow += 1
            return
        state = self._live((event.bucket, prefix))
        self._add(state, event, now, self.totals)
        wake = self._touch(state)
        if wake is not None:
            at = self._run_at(wake)
            if at < self.next_run:
                self.next_run = at

    def _run_at(self, wake: float) -> float:
        return math.ceil(wake / self.tick) * self.tick if self.tick else wake

    def advance(self, until: float) -> None:
        """Run every scheduled flush at or before `until`."""
        store = self.store
        self.peak_held = max(self.peak_held, len(store))
        while True:
            wake = store.next_wake()
            if wake is None:
                self.next_run = math.inf
                return
            at = self._run_at(wake)
            if at > until:
                self.next_run = at
                return
            for key in store.pop_due(at):
                state = store.live(key)
                self.emitted.extend(self.engine.tick(state, at))
                store.touch(state)

    def finish(self) -> None:
        self.advance(math.inf)


def simulate(
    events: Iterable[ObjectEvent],
    rule_sets: list[BatchRules],
    *,
    tick: float = 60.0,
    on_progress: Callable[[], None] | None = None,
    keep_objects: bool = False,
) -> list[Run]:
    """Feed every event to one run per threshold set; drain; return the runs."""
    runs = [Run(rules, tick, keep_objects) for rules in rule_sets]
    feeders = [run.feed for run in runs]
    source = iter(events)
    try:
        while chunk := list(islice(source, PROGRESS_EVERY)):  # bounded: a few thousand events
            if len(feeders) == 1:
                feed = feeders[0]
                for event in chunk:
                    feed(event)
            else:
                for event in chunk:
                    for feed in feeders:
                        feed(event)
            # What survived this chunk (open batches, emitted ones) lives on: keep the garbage
            # collector from rescanning it after every chunk (a tenth of the run time otherwise).
            gc.freeze()
            if on_progress is not None:
                on_progress()
    finally:
        gc.unfreeze()
    for run in runs:
        run.finish()
    if on_progress is not None:
        on_progress()
    return runs


# -- reporting ----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(run: Run, *, malformed: int = 0, other: int = 0) -> dict[str, Any]:
    emitted = run.emitted
    counts = [e.count for e in emitted]
    latencies = sorted(e.emitted_at - e.first_event_at for e in emitted)
    per_prefix: dict[tuple[str, str], int] = {}
    for e in emitted:
        per_prefix[(e.bucket, e.prefix)] = per_prefix.get((e.bucket, e.prefix), 0) + 1
    return {
        "events": run.counted + run.duplicates + run.ignored + run.shallow,
        "counted": run.counted,
        "duplicates": run.duplicates,
        "ignored": run.ignored,
        "shallow": run.shallow,
        "malformed": malformed,
        "not_object_created": other,
        "batches": len(emitted),
        "by_trigger": {t: sum(1 for e in emitted if e.trigger == t) for t in TRIGGERS
                       if any(e.trigger == t for e in emitted)},
        "files_per_batch": {
            "mean": round(sum(counts) / len(counts), 2) if counts else None,
            "min": min(counts, default=None),
            "max": max(counts, default=None),
        },
        "latency_seconds": {
            "p50": _round(percentile(latencies, 50)),
            "p95": _round(percentile(latencies, 95)),
            "max": _round(latencies[-1] if latencies else None),
        },
        "prefixes": len(per_prefix),
        "prefixes_split": sum(1 for n in per_prefix.values() if n > 1),
        "peak_prefixes_held": run.peak_held,
    }


def timeline(run: Run) -> list[dict[str, Any]]:
    """The emitted batches in emission order, one row each."""
    return [
        {
            "emitted_at": iso_time(e.emitted_at),
            "bucket": e.bucket,
            "prefix": e.prefix,
            "count": e.count,
            "trigger": e.trigger,
            "latency_seconds": _round(e.emitted_at - e.first_event_at),
            "batch_id": e.batch_id,
        }
        for e in sorted(run.emitted, key=lambda e: e.emitted_at)
    ]


def thresholds(run: Run) -> dict[str, Any]:
    return {**run.rules.as_dict(), "tick_seconds": run.tick}


def as_json(run: Run, *, malformed: int = 0, other: int = 0) -> dict[str, Any]:
    """Thresholds, summary, the exact events a consumer would receive, in time order, and each
    batch's object keys by `batch_id` (what its manifest would list; when the run kept them)."""
    # Imported here: edp.emit imports botocore (for its EventBridge publisher), which
    # `simulate-batch --help` and the table output never need.
    from omics_edp_cli.edp.emit import consumer_event

    emitted = sorted(run.emitted, key=lambda e: e.emitted_at)
    out = {
        "thresholds": thresholds(run),
        "summary": summary(run, malformed=malformed, other=other),
        "events": [consumer_event(e) for e in emitted],
    }
    if run.keep_objects:
        out["objects"] = {e.batch_id: [o[0] for o in e.objects] for e in emitted}
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
