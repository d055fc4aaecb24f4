"""The batching engine of DESIGN §1.2: pure (no I/O), the clock passed in by the caller.

State is kept per batch key (bucket + prefix) in a `PrefixState`; stores persist it and the
engine changes it. Time rules, written once here:

- `now` never goes backwards for a prefix (a late clock is treated as the last one seen).
- An open batch is *due* when `now >= deadline`, where deadline = last new object + quiet
  duration, or opened + maximum age when that is earlier. A due batch is emitted by the
  next flush, or by the next ingest for its prefix *before* that ingest adds anything: an
  object arriving exactly at the quiet deadline therefore opens a new batch. Which new
  objects a batch holds does not depend on when the flush runs, only its emission time does;
  a late repeat near the end of the de-duplication window (below), which starts at emission,
  may be caught or counted again depending on it.
- A repeated delivery (same key and sequencer) is not counted again while its object is in
  the open batch, or in a batch of the same prefix emitted less than max(quiet duration,
  15 minutes) ago (so a redelivery just after a count-triggered emission is caught too).
"""

from __future__ import annotations

import re
import uuid
from array import array
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from fnmatch import translate

from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.digests import DigestSet
from omics_edp_cli.edp.s3events import ObjectEvent

COUNT, QUIET, MAX_AGE, FLUSH = "count", "quiet", "max-age", "flush"
TRIGGERS = (COUNT, QUIET, MAX_AGE, FLUSH)
# classify() answers a batch key (always ending in "/") or one of these.
IGNORED = "<ignored>"
SHALLOW = "<shallow>"
# Redeliveries arrive within minutes; SQS may hold a failed message for a visibility timeout.
MIN_DEDUPE_WINDOW = 900.0
# Digests remembered from emitted batches, per prefix (bounded: it lives in one DynamoDB item).
RECENT_CAP = 10_000
HISTORY_SIZE = 10
_BATCH_NAMESPACE = uuid.UUID("5d1c9d0e-7c59-4b4a-9c55-0f6f9b3f2a11")
# One counted object as its batch's manifest lists it:
# (key, size, ETag, sequencer, event time, version id).
ObjectRecord = tuple[str, int | None, str | None, str, float, str | None]
# Objects of a batch moved out of its state into a segment: (where, how many).
Segment = tuple[str, int]
# Bytes one record takes in the stored state beyond its key and sequencer (a budget, not exact).
RECORD_OVERHEAD = 72


@dataclass(slots=True)
class OpenBatch:
    batch_id: str
    opened_at: float
    touched_at: float
    first_event_at: float
    last_event_at: float
    members: set[int] = field(default_factory=set)
    # The counted objects in counting order: the first ones in `segments`, the rest here.
    objects: list[ObjectRecord] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    object_bytes: int = 0

    @property
    def count(self) -> int:
        return len(self.members)


@dataclass(slots=True)
class Emission:
    """One emitted batch: what becomes a `package-objects-ready` event.

    `retry_at` is set while the event is not yet accepted by EventBridge (the outbox);
    `members` (digests) is kept in memory only, for checks and tests. `segments` then
    `objects` list exactly the objects `count` counted (the manifest), while the emission is
    in the outbox; `manifest` is where the manifest was written (set when publishing).
    """

    batch_id: str
    bucket: str
    prefix: str
    count: int
    first_event_at: float
    last_event_at: float
    opened_at: float
    emitted_at: float
    trigger: str
    retry_at: float | None = None
    members: frozenset[int] | set[int] = frozenset()
    objects: list[ObjectRecord] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    object_bytes: int = 0
    manifest: str | None = None

    @property
    def recorded(self) -> int:
        """How many objects the emission lists (== count, unless opened before manifests existed)."""
        return len(self.objects) + sum(n for _, n in self.segments)


@dataclass(slots=True)
class Recent:
    """Digests of a batch emitted recently, remembered until `until` for de-duplication.

    `members` is only iterated (lookups go through `PrefixState.recently_seen`): the engine keeps
    an `array('Q')`, 8 bytes a digest (the simulator holds hundreds of thousands).
    """

    until: float
    members: Collection[int]


@dataclass(slots=True)
class PrefixState:
    """Everything known about one batch key. `version` is the optimistic-concurrency counter."""

    bucket: str
    prefix: str
    version: int = 0
    open: OpenBatch | None = None
    deadline: float | None = None
    recent: list[Recent] = field(default_factory=list)
    outbox: list[Emission] = field(default_factory=list)
    history: list[Emission] = field(default_factory=list)
    _seen: DigestSet | None = field(default=None, init=False, repr=False, compare=False)
    # How many digests `recent` holds in all (kept by the engine; None: not counted yet).
    _held: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.bucket, self.prefix)

    @property
    def flush_at(self) -> float | None:
        """When a flush must look at this prefix: the open batch's deadline or an outbox retry."""
        if not self.outbox:
            return self.deadline
        times = [e.retry_at for e in self.outbox if e.retry_at is not None]
        if self.deadline is not None:
            times.append(self.deadline)
        return min(times) if times else None

    @property
    def idle(self) -> bool:
        return self.open is None and not self.outbox

    def wake_at(self) -> float | None:
        """The next time anything about this state changes by itself (for in-memory clean-up)."""
        flush_at = self.flush_at
        if flush_at is not None:
            return flush_at
        return max((r.until for r in self.recent), default=None)

    def recently_seen(self) -> DigestSet:
        """Every digest in `recent` (disjoint sets: the engine never counts a digest it holds),
        built once, then kept up to date as batches are emitted and expire."""
        if self._seen is None:
            seen = DigestSet()
            for r in self.recent:
                seen.update(r.members)
            self._seen = seen
        return self._seen

    def held(self) -> int:
        """How many digests `recent` holds (counted once, then kept up to date)."""
        if self._held is None:
            self._held = sum(len(r.members) for r in self.recent)
        return self._held

    def record(self, emissions: Iterable[Emission]) -> None:
        """Remember emissions in the per-prefix history (newest last, bounded, without members)."""
        self.history.extend(replace(e, members=frozenset(), retry_at=None, objects=[], segments=[],
                                    object_bytes=0, manifest=None) for e in emissions)
        del self.history[:-HISTORY_SIZE]


@dataclass(slots=True)
class Added:
    emitted: list[Emission]
    counted: int = 0
    duplicates: int = 0


def batch_id(bucket: str, prefix: str, opened_at: float, first_digest: int) -> str:
    """Stable id: the same input gives the same id through every store and the simulator
    (the digest written as the 16 hex digits it was when digests were strings)."""
    return str(uuid.uuid5(_BATCH_NAMESPACE, f"{bucket}/{prefix}\n{opened_at!r}\n{first_digest:016x}"))


def compile_ignore(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for all ignore globs; `raw/` means `raw/*`; `*` also matches `/`."""
    parts = []
    for glob in globs:
        glob = glob.strip().lstrip("/")
        if not glob:
            continue
        if glob.endswith("/"):
            glob += "*"
        parts.append(translate(glob))
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


class Engine:
    """Applies DESIGN §1.2's rules to `PrefixState`s. Holds the rules only, never state."""

    def __init__(self, rules: BatchRules, *, keep_members: bool = True, keep_objects: bool = True):
        """`keep_members=False` leaves `Emission.members` empty (the simulator keeps thousands);
        `keep_objects=False` records no object list (no manifest: a simulation that needs none)."""
        self.rules = rules
        self.keep_members = keep_members
        self.keep_objects = keep_objects
        self.depth = rules.prefix_depth
        self.count = rules.count
        self.quiet = float(rules.quiet_seconds)
        self.max_age = float(rules.max_age_seconds) or None
        self.window = max(self.quiet, MIN_DEDUPE_WINDOW)
        self._ignore = compile_ignore(rules.ignore)

    def classify(self, key: str) -> str:
        """The batch key (prefix with trailing `/`) of an object key, or IGNORED / SHALLOW."""
        if self._ignore is not None and self._ignore.match(key):
            return IGNORED
        end = -1
        for _ in range(self.depth):
            end = key.find("/", end + 1)
            if end < 0:
                return SHALLOW
        return key[:end + 1]

    def deadline(self, batch: OpenBatch) -> float:
        quiet_at = batch.touched_at + self.quiet
        if self.max_age is None:
            return quiet_at
        return min(quiet_at, batch.opened_at + self.max_age)

    def add(
        self, state: PrefixState, events: Iterable[ObjectEvent], now: float, into: Added | None = None
    ) -> Added:
        """Count `events` (all of `state`'s prefix) at time `now`; emit what becomes due or full.

        Counts and emissions are added to `into` when given (a running total).
        """
        result = Added([]) if into is None else into
        add_one = self.add_one
        for event in events:
            add_one(state, event, now, result)
        return result

    def add_one(self, state: PrefixState, event: ObjectEvent, now: float, result: Added) -> None:
        """`add` for one event (the simulator's hot path: kept flat on purpose)."""
        batch = state.open
        if batch is not None:
            if now < batch.touched_at:
                now = batch.touched_at
            deadline = state.deadline
            if deadline is not None and now >= deadline:
                result.emitted.append(self._close(state, now, self._due_trigger(batch)))
                batch = None
        digest = event.digest
        if batch is not None and digest in batch.members:
            result.duplicates += 1
            return
        recent = state.recent
        if recent:
            if recent[0].until <= now:  # kept sorted by `until`
                self._prune(state, now)
                recent = state.recent
            if recent:
                seen = state._seen
                if seen is None:
                    seen = state.recently_seen()
                if digest in seen:
                    result.duplicates += 1
                    return
        when = event.time
        if batch is None:
            batch = state.open = OpenBatch(
                batch_id(state.bucket, state.prefix, now, digest), now, now, when, when)
        members = batch.members
        members.add(digest)
        result.counted += 1
        if self.keep_objects:
            key, sequencer = event.key, event.sequencer
            batch.objects.append((key, event.size, event.etag, sequencer, when, event.version_id))
            batch.object_bytes += len(key) + len(sequencer) + RECORD_OVERHEAD
        batch.touched_at = now
        if when < batch.first_event_at:
            batch.first_event_at = when
        elif when > batch.last_event_at:
            batch.last_event_at = when
        if len(members) >= self.count:
            result.emitted.append(self._close(state, now, COUNT))
        elif self.max_age is None:
            state.deadline = now + self.quiet
        else:
            state.deadline = self.deadline(batch)

    def tick(self, state: PrefixState, now: float) -> list[Emission]:
        """What a flush at `now` emits for this prefix: its open batch if due (quiet / max-age)."""
        emitted = []
        now = float(now)
        batch = state.open
        if batch is not None and state.deadline is not None and now >= state.deadline:
            emitted.append(self._close(state, max(now, batch.touched_at), self._due_trigger(batch)))
        self._prune(state, now)
        return emitted

    def force(self, state: PrefixState, now: float) -> Emission | None:
        """Emit the open batch now, whatever its count and age (trigger `flush`)."""
        if state.open is None:
            return None
        return self._close(state, max(float(now), state.open.touched_at), FLUSH)

    def _due_trigger(self, batch: OpenBatch) -> str:
        if self.max_age is not None and batch.opened_at + self.max_age < batch.touched_at + self.quiet:
            return MAX_AGE
        return QUIET

    def _close(self, state: PrefixState, now: float, trigger: str) -> Emission:
        batch = state.open
        assert batch is not None
        state.open = None
        state.deadline = None
        members = batch.members
        recent = state.recent
        total = state.held() + len(members)
        recent.append(Recent(now + self.window, array("Q", members)))
        if len(recent) > 1 and recent[-2].until > now + self.window:  # a skewed clock
            recent.sort(key=lambda r: r.until)
        if total > RECENT_CAP:
            while total > RECENT_CAP and len(recent) > 1:
                total -= len(recent.pop(0).members)
            state._seen = None
        elif state._seen is not None:
            state._seen.update(members)
        state._held = total
        return Emission(
            batch_id=batch.batch_id, bucket=state.bucket, prefix=state.prefix,
            count=len(batch.members), first_event_at=batch.first_event_at,
            last_event_at=batch.last_event_at, opened_at=batch.opened_at, emitted_at=now,
            trigger=trigger, members=batch.members if self.keep_members else frozenset(),
            objects=batch.objects, segments=batch.segments, object_bytes=batch.object_bytes,
        )

    @staticmethod
    def _prune(state: PrefixState, now: float) -> None:
        """Forget the emitted batches whose de-duplication window has passed."""
        recent = state.recent
        if recent and recent[0].until <= now:  # kept sorted by `until`: expired ones first
            seen, held = state._seen, state._held
            n = 0
            for r in recent:
                if r.until > now:
                    break
                n += 1
                if seen is not None:  # sets in `recent` are disjoint: remove, don't rebuild
                    seen.difference_update(r.members)
                if held is not None:
                    held -= len(r.members)
            del recent[:n]
            state._held = held
