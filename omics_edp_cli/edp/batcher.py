"""The engine over a store: ingest events, flush due batches, publish emissions exactly once.

Per prefix and call, `ingest` reads the state, applies all of that prefix's events, and makes
one conditional write; a conflict (another writer got there first) re-reads and re-applies.
Emissions are committed in that same write (the state's outbox), then published; once
EventBridge accepted them they leave the outbox. A failed `PutEvents` leaves them there and
`flush` publishes them again once their `retry_at` has passed (at-least-once towards
EventBridge; consumers de-duplicate on `batch_id`).

With a manifest store, every batch's objects are recorded too (edp/manifests.py): moved to
S3 segments before a write when the state would grow too large, written as the batch's
manifest before its event is published (a manifest that cannot be written keeps the event
in the outbox, like a refused `PutEvents`). Neither adds a DynamoDB write.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.edp.emit import Publisher
from omics_edp_cli.edp.engine import IGNORED, SHALLOW, Emission, Engine, PrefixState
from omics_edp_cli.edp.manifests import SPILL_BYTES, ManifestStore, spill, write_manifest
from omics_edp_cli.edp.s3events import ObjectEvent
from omics_edp_cli.edp.store import BatchStore, Key
from omics_edp_cli.errors import OperationError

log = logging.getLogger(__name__)
# A committed emission still unpublished this long after is retried by the flush (which runs
# every minute): long enough not to race the writer that is publishing it right now.
RETRY_GRACE = 30.0
MAX_CONFLICTS = 100
# Bounds the outbox written in one item: at most this many emissions per write.
MAX_EMISSIONS_PER_WRITE = 50
STORE_ERRORS = (OperationError, ClientError, BotoCoreError)


@dataclass
class IngestReport:
    counted: int = 0
    duplicates: int = 0
    ignored: int = 0
    shallow: int = 0
    emitted: list[Emission] = field(default_factory=list)
    published: int = 0
    unpublished: int = 0
    failed_keys: dict[Key, str] = field(default_factory=dict)


@dataclass
class FlushReport:
    emitted: list[Emission] = field(default_factory=list)
    retried: int = 0
    published: int = 0
    unpublished: int = 0
    failed_keys: dict[Key, str] = field(default_factory=dict)


class Batcher:
    def __init__(
        self,
        engine: Engine,
        store: BatchStore,
        publisher: Publisher | None = None,
        *,
        retry_grace: float = RETRY_GRACE,
        max_conflicts: int = MAX_CONFLICTS,
        sleep: Callable[[float], None] = time.sleep,
        manifests: ManifestStore | None = None,
        spill_bytes: int = SPILL_BYTES,
    ):
        self.engine = engine
        self.store = store
        self.publisher = publisher
        self.manifests = manifests
        self.spill_bytes = spill_bytes
        self.retry_grace = retry_grace
        self.max_conflicts = max_conflicts
        self.sleep = sleep

    def key_of(self, event: ObjectEvent) -> Key | None:
        """The batch key of an event, or None when it is ignored or too shallow."""
        prefix = self.engine.classify(event.key)
        return None if prefix in (IGNORED, SHALLOW) else (event.bucket, prefix)

    def ingest(self, events: Iterable[ObjectEvent], now: float) -> IngestReport:
        """Count events at `now`; a prefix whose write fails is reported in `failed_keys`."""
        report = IngestReport()
        groups: dict[Key, list[ObjectEvent]] = {}
        for event in events:
            prefix = self.engine.classify(event.key)
            if prefix == IGNORED:
                report.ignored += 1
            elif prefix == SHALLOW:
                report.shallow += 1
            else:
                groups.setdefault((event.bucket, prefix), []).append(event)
        try:
            loaded = self.store.load(list(groups)) if groups else {}
        except STORE_ERRORS as e:
            report.failed_keys.update((k, str(e)) for k in groups)
            return report
        done: list[tuple[PrefixState, list[Emission]]] = []
        for key, group in groups.items():
            try:
                state, emitted = self._apply(key, group, now, loaded.get(key), report)
            except STORE_ERRORS as e:
                log.error("batch state %s/%s not updated: %s", key[0], key[1], e)
                report.failed_keys[key] = str(e)
                continue
            report.emitted.extend(emitted)
            done.append((state, emitted))
        report.published, report.unpublished = self._publish(done)
        return report

    def flush(self, now: float) -> FlushReport:
        """Emit every batch due at `now`, and publish again what EventBridge refused before."""
        report = FlushReport()
        done: list[tuple[PrefixState, list[Emission]]] = []
        for key in self.store.due(now):
            try:
                state, emitted = self._tick(key, now)
            except STORE_ERRORS as e:
                log.error("batch state %s/%s not flushed: %s", key[0], key[1], e)
                report.failed_keys[key] = str(e)
                continue
            fresh = {e.batch_id for e in emitted}
            retry = [e for e in state.outbox if e.batch_id not in fresh
                     and e.retry_at is not None and e.retry_at <= now]
            report.emitted.extend(emitted)
            report.retried += len(retry)
            done.append((state, emitted + retry))
        report.published, report.unpublished = self._publish(done)
        return report

    def force(self, key: Key, now: float) -> Emission | None:
        """Emit the open batch of `key` now (trigger `flush`); None if nothing is open."""
        for attempt in range(self.max_conflicts):
            state = self.store.load([key])[key]
            expected = state.version
            emission = self.engine.force(state, now)
            if emission is None:
                return None
            self._stage(state, [emission], now)
            if self._commit(state, expected):
                self._publish([(state, [emission])])
                return emission
            self._backoff(attempt)
        raise OperationError(f"{key[0]}/{key[1]}: gave up after {self.max_conflicts} conflicting writes")

    # -- internals ------------------------------------------------------------------------------

    def _apply(
        self, key: Key, events: list[ObjectEvent], now: float, state: PrefixState | None,
        report: IngestReport,
    ) -> tuple[PrefixState, list[Emission]]:
        step = self.engine.count * MAX_EMISSIONS_PER_WRITE
        emitted: list[Emission] = []
        for start in range(0, len(events), step):
            chunk = events[start:start + step]
            for attempt in range(self.max_conflicts):
                if state is None:
                    state = self.store.load([key])[key]
                expected = state.version
                added = self.engine.add(state, chunk, now)
                self._stage(state, added.emitted, now)
                if self._commit(state, expected):
                    break
                state = None
                self._backoff(attempt)
            else:
                raise OperationError(
                    f"{key[0]}/{key[1]}: gave up after {self.max_conflicts} conflicting writes")
            report.counted += added.counted
            report.duplicates += added.duplicates
            emitted.extend(added.emitted)
        assert state is not None
        return state, emitted

    def _tick(self, key: Key, now: float) -> tuple[PrefixState, list[Emission]]:
        for attempt in range(self.max_conflicts):
            state = self.store.load([key])[key]
            expected, recent = state.version, len(state.recent)
            emitted = self.engine.tick(state, now)
            self._stage(state, emitted, now)
            # Listed as due but nothing is due any more: the stored schedule is stale.
            stale = state.flush_at is None or state.flush_at > now
            if not (emitted or stale or len(state.recent) != recent):
                return state, []
            if self._commit(state, expected):
                return state, emitted
            self._backoff(attempt)
        raise OperationError(f"{key[0]}/{key[1]}: gave up after {self.max_conflicts} conflicting writes")

    def _commit(self, state: PrefixState, expected: int) -> bool:
        """The conditional write, after moving large object lists to segments (deleted again
        when the write loses the race: the state that pointed to them is discarded)."""
        written = self._spill(state)
        # An error (a timeout, say) may hide a write that succeeded: its segments are kept.
        ok = self.store.commit(state, expected)
        if not ok:
            self._discard(written)
        return ok

    def _spill(self, state: PrefixState) -> list[str]:
        if self.manifests is None:
            return []
        holders: list[Any] = ([state.open] if state.open is not None else []) + state.outbox
        if sum(h.object_bytes for h in holders) <= self.spill_bytes:
            return []
        written = []
        for holder in holders:
            pointer = spill(self.manifests, state.bucket, holder.batch_id, holder)
            if pointer is not None:
                written.append(pointer)
        return written

    def _discard(self, pointers: list[str]) -> None:
        if pointers and self.manifests is not None:
            try:
                self.manifests.delete_segments(pointers)
            except STORE_ERRORS as e:  # an orphaned segment is only storage, never read
                log.warning("could not delete %d unused manifest segment(s): %s", len(pointers), e)

    def _stage(self, state: PrefixState, emitted: list[Emission], now: float) -> None:
        if not emitted:
            return
        for e in emitted:
            e.retry_at = now + self.retry_grace
        state.outbox.extend(emitted)
        state.record(emitted)

    def _publish(self, done: list[tuple[PrefixState, list[Emission]]]) -> tuple[int, int]:
        """Publish; take accepted ones out of their outbox. Returns (published, not published)."""
        emissions = [e for _, group in done for e in group]
        if not emissions or self.publisher is None:
            return 0, len(emissions)
        ready = []
        for e in emissions:
            if self.manifests is not None:
                # Before the event: a consumer that gets it can always read the manifest.
                try:
                    e.manifest = write_manifest(self.manifests, e)
                except STORE_ERRORS as err:
                    log.error("manifest of batch %s not written, its event waits for the next flush: %s",
                              e.batch_id, err)
                    continue
            ready.append(e)
        results = self.publisher.publish(ready) if ready else {}
        published = sum(1 for e in emissions if results.get(e.batch_id, "no result") is None)
        for state, group in done:
            accepted = [e for e in group if results.get(e.batch_id, "no result") is None]
            if not accepted:
                continue
            try:
                self.store.mark_published(state, [e.batch_id for e in accepted])
            except STORE_ERRORS as err:
                # Published but still in the outbox: the flush publishes it once more later
                # (and rewrites its manifest from the segments still kept).
                log.warning("could not record %d published batch(es) of %s: %s",
                            len(accepted), state.prefix, err)
                continue
            self._discard([pointer for e in accepted for pointer, _ in e.segments])
        return published, len(emissions) - published

    def _backoff(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(0.01 * 2 ** attempt, 0.25)))
