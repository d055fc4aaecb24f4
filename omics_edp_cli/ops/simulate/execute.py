"""`simulate-batch`: the EDP engine offline, on one pass over a stream of S3 events.

Each threshold set gets its own engine and in-memory store; every event is fed to all of
them, so the input is read once however many sets are compared. The flush schedule is
modelled: a due batch is emitted at the first tick (a multiple of `tick` seconds, like a
`rate(1 minute)` schedule) at or after its deadline; `tick` 0 emits exactly at the deadline.
After the last event the schedule keeps running until every batch has been emitted.

Memory grows with the prefixes that have an open or recently emitted batch, not with the
number of events: each run hands its emitted batches to a running `Tally` (the summary) and to
an on-disk `EmissionSpool` (the output, read back in emission order when it is rendered).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.engine import IGNORED, Added, Emission, Engine
from omics_edp_cli.edp.memory_store import MemoryStore
from omics_edp_cli.edp.s3events import ObjectEvent
from omics_edp_cli.ops.simulate.report import Tally
from omics_edp_cli.ops.simulate.spool import EmissionSpool, SpooledEmission

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
    # Emitted since the last `drain` (at most a chunk of events' worth), then spooled and tallied.
    pending: list[Emission] = field(default_factory=list)
    spool: EmissionSpool = field(default_factory=EmissionSpool)
    tally: Tally = field(default_factory=Tally)
    totals: Added = field(init=False)
    ignored: int = 0
    shallow: int = 0
    clock: float = -math.inf
    peak_held: int = 0
    # The first flush run that may have something to do (a tick at or after the earliest wake-up).
    next_run: float = math.inf
    last_emitted_at: float = -math.inf

    def __post_init__(self) -> None:
        self.engine = Engine(self.rules, keep_members=False, keep_objects=self.keep_objects)
        self.totals = Added(self.pending)
        # Bound once: `feed` runs per event and threshold set.
        self._classify, self._add = self.engine.classify, self.engine.add_one
        self._states, self._live, self._touch = self.store.states, self.store.live, self.store.touch

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
        key = (event.bucket, prefix)
        state = self._states.get(key)
        if state is None:
            state = self._live(key)
        batch = state.open
        self._add(state, event, now, self.totals)
        if batch is not None and state.open is batch:
            # Counted into (or repeated in) a batch that stays open: its deadline can only have
            # moved later, and the schedule holds an earlier wake-up for it already (which
            # `pop_due` moves to the deadline when it comes): nothing to re-schedule.
            return
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
                self.pending.extend(self.engine.tick(state, at))
                store.touch(state)

    def drain(self) -> None:
        """Hand what was emitted since the last call to the tally and the spool.

        Emission order is time order, so the output needs no sort: `feed` emits at the run's
        clock, which never goes back, and runs every flush due before an event ahead of it;
        `advance` runs flushes in time order, each emitting at its tick, which is at or after
        the clock of any emission before it (a wake-up is never earlier than the event that
        set it). Checked here rather than trusted: a violation is a bug, not bad input.
        """
        pending = self.pending
        if not pending:
            return
        last = self.last_emitted_at
        for e in pending:
            if e.emitted_at < last:
                raise RuntimeError(f"simulate: batch {e.batch_id} emitted at {e.emitted_at} after one "
                                   f"at {last}: emissions out of time order")
            last = e.emitted_at
        self.last_emitted_at = last
        self.tally.add(pending)
        self.spool.extend(pending)
        pending.clear()

    def finish(self) -> None:
        self.advance(math.inf)
        self.drain()

    def emissions(self) -> Iterator[SpooledEmission]:
        """Every batch emitted (and drained) so far, in emission order, read from the spool
        (object keys and times only: `SpooledEmission`)."""
        return iter(self.spool)

    @property
    def batches(self) -> int:
        return len(self.spool)


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
    # The collector runs once per chunk instead of every 700 allocations: each event allocates
    # a few containers (its JSON, its record), and the automatic collections cost a fifth of
    # the run. What a chunk leaves as cyclic garbage (none is expected) is collected at its end;
    # what survived it (open batches) is frozen, so no later collection rescans it.
    enabled = gc.isenabled()
    gc.disable()
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
            for run in runs:
                run.drain()
            del chunk  # its events need no look from the collector
            gc.collect(0)
            gc.freeze()
            if on_progress is not None:
                on_progress()
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
    for run in runs:
        run.finish()
    if on_progress is not None:
        on_progress()
    return runs
