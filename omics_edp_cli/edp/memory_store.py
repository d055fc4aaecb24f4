"""In-memory batch state: the simulator's store, and the reference the other stores are tested against.

Two ways in. The `BatchStore` methods copy on `load` and check versions on `commit`, like the
persistent stores (one lock makes them safe for threads). The simulator, a single writer that
feeds hundreds of thousands of events, uses `live` / `touch` / `pop_due` instead: no copies.

Memory grows with the prefixes that have something open or recently emitted: a state that has
become idle and whose de-duplication memory expired is dropped (`history` goes with it).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence

from omics_edp_cli.edp.engine import PrefixState
from omics_edp_cli.edp.store import Key, clone, remove_published


class MemoryStore:
    def __init__(self) -> None:
        self._states: dict[Key, PrefixState] = {}
        # The single-writer fast path reads states here (create them through `live`).
        self.states: Mapping[Key, PrefixState] = self._states
        self._heap: list[tuple[float, Key]] = []
        self._scheduled: dict[Key, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    # -- BatchStore ---------------------------------------------------------------------------

    def load(self, keys: Sequence[Key]) -> dict[Key, PrefixState]:
        with self._lock:
            out = {}
            for key in keys:
                state = self._states.get(key)
                out[key] = clone(state) if state is not None else PrefixState(*key)
            return out

    def commit(self, state: PrefixState, expected_version: int) -> bool:
        with self._lock:
            current = self._states.get(state.key)
            if (current.version if current is not None else 0) != expected_version:
                return False
            state.version = expected_version + 1
            self._states[state.key] = clone(state)
            self.touch(self._states[state.key])
            return True

    def mark_published(self, state: PrefixState, batch_ids: Collection[str]) -> None:
        with self._lock:
            current = self._states.get(state.key)
            if current is None:
                return
            remove_published(current, batch_ids)
            current.version += 1
            self.touch(current)

    def due(self, now: float) -> list[Key]:
        with self._lock:
            due = []
            for key in self.pop_due(now):
                state = self._states[key]
                flush_at = state.flush_at
                if flush_at is not None and flush_at <= now:
                    due.append(key)
                else:  # only de-duplication memory expired: housekeeping, not a flush
                    state.recent = [r for r in state.recent if r.until > now]
                    state._seen = state._held = None
                self.touch(state)  # a query, like the other stores: still due until committed
            return due

    def active(self) -> list[PrefixState]:
        with self._lock:
            return [clone(s) for s in self._states.values() if not s.idle]

    def everything(self) -> Iterator[PrefixState]:
        with self._lock:
            states = [clone(s) for s in self._states.values()]
        yield from states

    def get(self, key: Key) -> PrefixState | None:
        with self._lock:
            state = self._states.get(key)
            return clone(state) if state is not None else None

    # -- single-writer fast path ----------------------------------------------------------------

    def live(self, key: Key) -> PrefixState:
        """The stored state itself (created if new): change it, then call `touch`."""
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = PrefixState(*key)
        return state

    def touch(self, state: PrefixState) -> float | None:
        """Re-schedule a changed state; forget it once nothing about it can change any more.

        Returns the wake-up time when it added one to the schedule (else None).
        """
        wake = state.deadline if not state.outbox else None
        if wake is None:
            wake = state.wake_at()
        key = (state.bucket, state.prefix)
        if wake is None:
            if state.idle:
                self._states.pop(key, None)
            return None
        scheduled = self._scheduled.get(key)
        if scheduled is None or wake < scheduled:
            self._scheduled[key] = wake
            heapq.heappush(self._heap, (wake, key))
            return wake
        return None

    def next_wake(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Key]:
        """Keys whose state has something to do at `now` (each returned at most once per call)."""
        due: list[Key] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if self._scheduled.get(key) != when:
                continue  # superseded by an earlier wake-up for the same key
            del self._scheduled[key]
            state = self._states.get(key)
            if state is None:
                continue
            wake = state.wake_at()
            if wake is not None and wake > now:
                self._scheduled[key] = wake
                heapq.heappush(heap, (wake, key))
            else:
                due.append(key)
        return due
