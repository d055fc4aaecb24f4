"""The batching engine: every rule of DESIGN §1.2, its boundaries, and its invariants (hypothesis)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.engine import (
    IGNORED,
    MIN_DEDUPE_WINDOW,
    SHALLOW,
    Emission,
    Engine,
    OpenBatch,
    PrefixState,
    batch_id,
)
from omics_edp_cli.edp.memory_store import MemoryStore
from omics_edp_cli.edp.s3events import ObjectEvent, object_digest
from omics_edp_cli.errors import ConfigError

T0 = 1_767_600_000.0  # 2026-01-05T08:00:00Z
BUCKET = "instrument-bucket"


def ev(key: str, t: float, seq: str | None = None) -> ObjectEvent:
    return ObjectEvent(BUCKET, key, seq or f"SEQ-{key}", t)


def state(prefix: str = "run/a/") -> PrefixState:
    return PrefixState(BUCKET, prefix)


def engine(**rules) -> Engine:
    return Engine(BatchRules(**rules))


# -- batch key, ignore globs, shallow keys -----------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "key", "expected"),
    [
        (2, "instrument/exp-1/file.bcl", "instrument/exp-1/"),
        (2, "instrument/exp-1/Data/L001/file.bcl", "instrument/exp-1/"),
        (1, "instrument/exp-1/file.bcl", "instrument/"),
        (3, "a/b/c/d.txt", "a/b/c/"),
        (2, "instrument/file.bcl", SHALLOW),  # one directory, depth 2
        (2, "file.bcl", SHALLOW),
        (3, "a/b/c", SHALLOW),
        (2, "a/b/", "a/b/"),  # a folder marker object is in its own prefix
    ],
)
def test_batch_key_is_first_depth_segments_with_trailing_slash(depth, key, expected):
    assert engine(prefix_depth=depth).classify(key) == expected


@pytest.mark.parametrize(
    ("globs", "key", "ignored"),
    [
        (("raw/*",), "raw/x/y/z.bin", True),  # * matches across /
        (("raw/*",), "raw2/x/y.bin", False),
        (("raw/",), "raw/x/y.bin", True),  # a bare prefix means everything under it
        (("*/tmp/*",), "run/tmp/a/b", True),
        (("*.tmp",), "run/a/file.tmp", True),
        (("scratch/*", " raw/* "), "raw/a/b", True),
        ((), "raw/a/b", False),
    ],
)
def test_ignore_globs(globs, key, ignored):
    result = engine(ignore=globs).classify(key)
    assert (result == IGNORED) is ignored


def test_an_ignored_shallow_key_counts_as_ignored():
    assert engine(ignore=("top.txt",)).classify("top.txt") == IGNORED


# -- count trigger -----------------------------------------------------------------------------


def test_count_trigger_emits_at_exactly_the_threshold():
    eng, s = engine(count=3), state()
    added = eng.add(s, [ev("run/a/1", T0), ev("run/a/2", T0 + 1)], T0 + 1)
    assert added.emitted == [] and s.open is not None and s.open.count == 2
    added = eng.add(s, [ev("run/a/3", T0 + 2)], T0 + 2)
    [batch] = added.emitted
    assert (batch.count, batch.trigger, batch.emitted_at) == (3, "count", T0 + 2)
    assert s.open is None and s.deadline is None


def test_after_a_count_emission_the_next_object_opens_a_new_batch():
    eng, s = engine(count=2), state()
    added = eng.add(s, [ev(f"run/a/{i}", T0 + i) for i in range(5)], T0 + 5)
    assert [b.count for b in added.emitted] == [2, 2]
    assert s.open is not None and s.open.count == 1
    assert len({b.batch_id for b in added.emitted} | {s.open.batch_id}) == 3


def test_count_of_one_emits_every_object():
    eng, s = engine(count=1), state()
    added = eng.add(s, [ev("run/a/1", T0), ev("run/a/2", T0)], T0)
    assert [b.count for b in added.emitted] == [1, 1] and s.open is None


# -- quiet trigger -----------------------------------------------------------------------------


def test_quiet_deadline_is_last_new_object_plus_duration():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    eng.add(s, [ev("run/a/2", T0 + 100)], T0 + 100)
    assert s.deadline == T0 + 400


def test_tick_before_the_deadline_emits_nothing():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    assert eng.tick(s, T0 + 299.999) == []
    assert s.open is not None


def test_tick_exactly_at_the_deadline_emits_quiet():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    [batch] = eng.tick(s, T0 + 300)
    assert (batch.trigger, batch.count, batch.emitted_at) == ("quiet", 1, T0 + 300)


def test_an_event_exactly_at_the_quiet_deadline_opens_a_new_batch():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    added = eng.add(s, [ev("run/a/2", T0 + 300)], T0 + 300)
    [closed] = added.emitted
    assert (closed.trigger, closed.count) == ("quiet", 1)
    assert s.open is not None and s.open.count == 1 and s.open.opened_at == T0 + 300


def test_an_event_just_before_the_quiet_deadline_joins_and_extends_the_batch():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    added = eng.add(s, [ev("run/a/2", T0 + 299.5)], T0 + 299.5)
    assert added.emitted == [] and s.open is not None and s.open.count == 2
    assert s.deadline == T0 + 599.5


def test_a_duplicate_does_not_extend_the_quiet_deadline():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0, "S1")], T0)
    added = eng.add(s, [ev("run/a/1", T0 + 200, "S1")], T0 + 200)
    assert added.duplicates == 1 and s.deadline == T0 + 300


# -- maximum age -------------------------------------------------------------------------------


def test_max_age_is_off_by_default_so_steady_traffic_never_emits():
    eng, s = engine(quiet_seconds=60, count=10_000), state()
    for i in range(200):  # one object every 30 s for 100 minutes
        assert eng.add(s, [ev(f"run/a/{i}", T0 + 30 * i)], T0 + 30 * i).emitted == []
    assert s.open is not None and s.open.count == 200


def test_max_age_emits_a_prefix_under_steady_traffic():
    eng, s = engine(quiet_seconds=60, count=10_000, max_age_seconds=600), state()
    emitted: list[Emission] = []
    for i in range(60):
        now = T0 + 30 * i
        emitted += eng.tick(s, now)
        emitted += eng.add(s, [ev(f"run/a/{i}", now)], now).emitted
    assert [b.trigger for b in emitted] == ["max-age", "max-age"]
    assert [b.count for b in emitted] == [20, 20]
    assert emitted[0].emitted_at == T0 + 600


def test_the_earlier_deadline_names_the_trigger():
    eng, s = engine(quiet_seconds=300, max_age_seconds=1000), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    [batch] = eng.tick(s, T0 + 300)
    assert batch.trigger == "quiet"


# -- duplicates --------------------------------------------------------------------------------


def test_a_repeated_delivery_in_the_open_batch_is_not_counted():
    eng, s = engine(), state()
    added = eng.add(s, [ev("run/a/1", T0, "S1"), ev("run/a/1", T0, "S1"), ev("run/a/1", T0, "S2")], T0)
    assert (added.counted, added.duplicates) == (2, 1)  # S2 is a new write of the same key
    assert s.open is not None and s.open.count == 2


def test_a_repeated_delivery_right_after_a_count_emission_is_not_counted():
    eng, s = engine(count=2), state()
    eng.add(s, [ev("run/a/1", T0), ev("run/a/2", T0)], T0)
    added = eng.add(s, [ev("run/a/2", T0 + 5)], T0 + 5)
    assert (added.counted, added.duplicates) == (0, 1) and s.open is None


def test_emitted_digests_are_forgotten_after_the_dedupe_window():
    eng, s = engine(count=1, quiet_seconds=60), state()
    eng.add(s, [ev("run/a/1", T0)], T0)
    assert eng.add(s, [ev("run/a/1", T0 + MIN_DEDUPE_WINDOW - 1)], T0 + MIN_DEDUPE_WINDOW - 1).duplicates == 1
    later = T0 + MIN_DEDUPE_WINDOW
    assert eng.add(s, [ev("run/a/1", later)], later).counted == 1


# -- forced flush, ids, clocks -----------------------------------------------------------------


def test_force_emits_whatever_is_open_with_trigger_flush():
    eng, s = engine(), state()
    assert eng.force(s, T0) is None
    eng.add(s, [ev("run/a/1", T0)], T0)
    batch = eng.force(s, T0 + 1)
    assert batch is not None and (batch.trigger, batch.count) == ("flush", 1) and s.open is None


def test_batch_id_is_stable_and_distinct():
    a = batch_id(BUCKET, "run/a/", T0, 0x00FF)
    assert a == batch_id(BUCKET, "run/a/", T0, 0x00FF)
    assert a != batch_id(BUCKET, "run/b/", T0, 0x00FF) != batch_id(BUCKET, "run/a/", T0 + 1, 0x00FF)


def test_batch_ids_are_those_made_when_digests_were_hex_strings():
    # Stored states and consumers know batch ids made from the digest's 16 hex digits.
    key, sequencer = "run/a/s_1.bcl.gz", "0055AB01"
    hex_digest = hashlib.blake2b(f"{key}\0{sequencer}".encode(), digest_size=8).hexdigest()
    digest = ev(key, T0, sequencer).digest
    assert digest == object_digest(key, sequencer) == int(hex_digest, 16)
    namespace = uuid.UUID("5d1c9d0e-7c59-4b4a-9c55-0f6f9b3f2a11")
    assert batch_id(BUCKET, "run/a/", T0, digest) == str(
        uuid.uuid5(namespace, f"{BUCKET}/run/a/\n{T0!r}\n{hex_digest}"))
    assert batch_id(BUCKET, "run/a/", T0, 0x00FF) == str(
        uuid.uuid5(namespace, f"{BUCKET}/run/a/\n{T0!r}\n00000000000000ff"))


def test_a_clock_going_backwards_is_treated_as_the_last_time_seen():
    eng, s = engine(quiet_seconds=300), state()
    eng.add(s, [ev("run/a/1", T0)], T0 + 100)
    eng.add(s, [ev("run/a/2", T0)], T0)  # an earlier clock (another Lambda's)
    assert s.deadline == T0 + 400


def test_first_and_last_event_times_are_the_objects_own():
    eng, s = engine(), state()
    eng.add(s, [ev("run/a/1", T0 + 5), ev("run/a/2", T0 - 3), ev("run/a/3", T0 + 1)], T0 + 10)
    assert s.open is not None
    assert (s.open.first_event_at, s.open.last_event_at) == (T0 - 3, T0 + 5)


@pytest.mark.parametrize(
    "rules",
    [{"count": 0}, {"count": -1}, {"quiet_seconds": 0}, {"quiet_seconds": -5},
     {"quiet_seconds": float("nan")}, {"prefix_depth": 0}, {"max_age_seconds": -1}],
)
def test_bad_rules_are_config_errors(rules):
    with pytest.raises(ConfigError):
        BatchRules(**rules)


# -- properties --------------------------------------------------------------------------------

KEYS = [f"{p}/{r}/f{i}" for p in ("ins", "raw") for r in ("r1", "r2", "r3") for i in range(6)] + [
    "top.txt", "ins/shallow.txt"]


@st.composite
def scenarios(draw, repeats: bool = True):
    """Events over a few prefixes (some ignored, some shallow), with re-deliveries and ticks.

    Steps pick a key and one of its writes (sequencer) at random, so with `repeats` the same
    write can come again long after it was counted (a very late repeated delivery); without,
    every write appears once among the steps. Re-deliveries follow their original within the
    quiet duration.
    """
    rules = BatchRules(
        count=draw(st.integers(1, 6)),
        quiet_seconds=draw(st.sampled_from([5.0, 30.0, 120.0])),
        max_age_seconds=draw(st.sampled_from([0.0, 40.0])),
        ignore=("raw/r3/*",),
    )
    steps = draw(st.lists(
        st.tuples(
            st.sampled_from(KEYS),
            st.integers(0, 2),  # which write of that key (sequencer)
            st.floats(0, 50, allow_nan=False),  # seconds since the previous step
            st.booleans(),  # a flush tick before this step
        ),
        min_size=1, max_size=60,
    ))
    events, t, seen = [], T0, set()
    for key, write, gap, tick in steps:
        t += gap
        if not repeats and (key, write) in seen:
            continue
        seen.add((key, write))
        events.append((ObjectEvent(BUCKET, key, f"S{write}", t), tick, False))
    # Re-deliveries of some events, shortly after the original (within the quiet duration).
    redeliver = draw(st.lists(st.tuples(st.integers(0, len(events) - 1),
                                        st.floats(0, rules.quiet_seconds * 0.99)), max_size=20))
    for index, delay in redeliver:
        original = events[index][0]
        events.append((ObjectEvent(BUCKET, original.key, original.sequencer, original.time + delay),
                       False, True))
    events.sort(key=lambda item: item[0].time)  # stable: an original before its re-delivery
    return rules, events


@dataclass
class Trace:
    """What the engine did with a scenario, event by event."""

    engine: Engine
    store: MemoryStore
    emitted: list[Emission] = field(default_factory=list)
    # batch id → digests of the events counted into that batch, in order
    counted_into: dict[str, list[str]] = field(default_factory=dict)
    counted: int = 0
    # (event, counted?, its write was in the open batch before, when its write was last counted)
    steps: list[tuple[ObjectEvent, bool, bool, float | None]] = field(default_factory=list)

    def open_batches(self) -> list[OpenBatch]:
        return [s.open for s in self.store._states.values() if s.open is not None]


def run_scenario(rules: BatchRules, events) -> Trace:
    """Feed events one at a time (flush ticks where the scenario says), like the simulator."""
    trace = Trace(Engine(rules), MemoryStore())
    eng, store = trace.engine, trace.store
    last_counted: dict[str, float] = {}
    for event, tick, _ in events:
        if tick:
            for key in store.pop_due(event.time):
                s = store.live(key)
                trace.emitted += eng.tick(s, event.time)
                store.touch(s)
        prefix = eng.classify(event.key)
        if prefix in (IGNORED, SHALLOW):
            continue
        s = store.live((event.bucket, prefix))
        in_open = s.open is not None and event.digest in s.open.members
        added = eng.add(s, [event], event.time)
        store.touch(s)
        trace.emitted += added.emitted
        assert added.counted + added.duplicates == 1
        if added.counted:
            # Into the batch a count trigger just closed, or else into the open one.
            full = [b for b in added.emitted if b.trigger == "count"]
            into = full[-1] if full else s.open
            assert into is not None and event.digest in into.members
            trace.counted_into.setdefault(into.batch_id, []).append(event.digest)
            trace.counted += 1
        trace.steps.append((event, bool(added.counted), in_open, last_counted.get(event.digest)))
        if added.counted:
            last_counted[event.digest] = event.time
    return trace


def drain(trace: Trace) -> list[Emission]:
    emitted = list(trace.emitted)
    for key in trace.store.pop_due(float("inf")):
        s = trace.store.live(key)
        emitted += trace.engine.tick(s, T0 + 10**7)
    return emitted


def assert_invariants(rules: BatchRules, events, trace: Trace) -> None:
    eng, emitted, open_batches = trace.engine, trace.emitted, trace.open_batches()
    batches = [*emitted, *open_batches]

    # No batch is emitted twice, and an emitted batch is not open any more.
    ids = [b.batch_id for b in batches]
    assert len(set(ids)) == len(ids)
    # Every counted event is in exactly one emitted or open batch: the batch it was counted
    # into holds it, no other batch holds that counting of it, and nothing else is in a batch.
    for b in batches:
        assert sorted(trace.counted_into.get(b.batch_id, [])) == sorted(b.members)
    assert set(trace.counted_into) <= set(ids)
    assert sum(len(b.members) for b in batches) == trace.counted
    # No batch exceeds the count threshold (an open one stays below it); count = distinct objects.
    assert all(b.count == len(b.members) <= rules.count for b in emitted)
    assert all(len(b.members) < rules.count for b in open_batches)
    # Duplicates never change counts: a write already in the open batch, or counted less than
    # the de-duplication window ago, is not counted again...
    for event, counted, in_open, last in trace.steps:
        if in_open or (last is not None and event.time - last < eng.window):
            assert not counted, (event, in_open, last)
        # ...and an event is only ever left out as a repeat of a write counted before.
        if not counted:
            assert last is not None, event
    # Nothing is lost: every distinct write of a batchable key is in some batch.
    distinct = {e.digest for e, _, _ in events if eng.classify(e.key) not in (IGNORED, SHALLOW)}
    assert set().union(*(b.members for b in batches)) == distinct
    # Every emission names a known trigger and happens no earlier than the batch opened.
    assert all(b.trigger in ("count", "quiet", "max-age") for b in emitted)
    assert all(b.emitted_at >= b.opened_at for b in emitted)


# The same write again long after its batch was emitted (a tick emits it at T0 + 950; its
# de-duplication window ends at T0 + 1850): counted again, in a new batch. A property that
# demanded "each write in exactly one batch" failed on this; the engine is right (DESIGN §1.2
# de-duplicates within the open batch; the engine adds the window after an emission).
LATE_REPEAT = (
    BatchRules(count=6, quiet_seconds=5.0, max_age_seconds=0.0, ignore=("raw/r3/*",)),
    [(ObjectEvent(BUCKET, "ins/r1/f0", "S0", T0), False, False),
     (ObjectEvent(BUCKET, "ins/r2/f0", "S0", T0 + 950), True, False),
     (ObjectEvent(BUCKET, "ins/r1/f0", "S0", T0 + 1900), False, False)],
)


def test_a_late_repeat_is_counted_again_and_the_invariants_hold():
    rules, events = LATE_REPEAT
    trace = run_scenario(rules, events)
    [first] = trace.emitted
    assert (first.prefix, first.count, first.trigger, first.emitted_at) == ("ins/r1/", 1, "quiet", T0 + 950)
    again = trace.store.live((BUCKET, "ins/r1/")).open
    assert again is not None and again.members == first.members and again.opened_at == T0 + 1900
    assert trace.counted == 3
    assert_invariants(rules, events, trace)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
@example(LATE_REPEAT)
def test_invariants(scenario):
    rules, events = scenario
    assert_invariants(rules, events, run_scenario(rules, events))


@settings(max_examples=150, deadline=None)
@given(scenarios(repeats=False))
def test_removing_the_redeliveries_changes_nothing(scenario):
    rules, events = scenario
    without = [item for item in events if not item[2]]
    with_dups, reference = run_scenario(rules, events), run_scenario(rules, without)
    assert with_dups.counted == reference.counted == len(
        {e.digest for e, _, _ in without if with_dups.engine.classify(e.key) not in (IGNORED, SHALLOW)})
    # Same batches (a redelivery may only make a due batch leave earlier, never change it).
    assert sorted(sorted(b.members) for b in drain(with_dups)) == sorted(
        sorted(b.members) for b in drain(reference))
