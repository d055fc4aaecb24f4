"""The de-duplication window's structures: `DigestSet` against Python's set, the engine keeping
it (and its count) exactly in step with the emitted batches it remembers, across expiry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.digests import DigestSet
from omics_edp_cli.edp.engine import MIN_DEDUPE_WINDOW, Added, Engine, PrefixState
from omics_edp_cli.edp.s3events import ObjectEvent
from omics_edp_cli.edp.store import join_digests, split_digests, state_from_doc, state_to_doc

T0 = 1_767_600_000.0
TOP = 2**64 - 1

# Digests that share their low bits (one probe run in a small table), the extremes, and 0
# (which marks an empty slot inside the table).
digests = st.one_of(
    st.sampled_from([0, 1, TOP, TOP - 7, 8, 16, 24]),
    st.builds(lambda high, low: (high << 40) | low, st.integers(0, 2**24 - 1), st.integers(0, 3)),
    st.integers(0, TOP),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "discard", "add", "update", "difference"]),
                          st.lists(digests, min_size=1, max_size=40)), max_size=60))
def test_a_digest_set_answers_as_a_set_does(ops):
    ours, reference = DigestSet(), set()
    seen: set[int] = set()
    for op, values in ops:
        seen.update(values)
        if op == "add":
            ours.add(values[0])
            reference.add(values[0])
        elif op == "discard":
            ours.discard(values[0])
            reference.discard(values[0])
        elif op == "update":
            ours.update(values)
            reference.update(values)
        else:
            ours.difference_update(values)
            reference.difference_update(values)
        assert len(ours) == len(reference) and bool(ours) == bool(reference)
        assert all((v in ours) == (v in reference) for v in seen)
    assert sorted(ours) == sorted(reference)


def test_a_digest_set_grows_and_shrinks_with_what_it_holds():
    values = [(n << 32) | 5 for n in range(1, 5001)]  # one home slot while the table is small
    ours = DigestSet(values)
    assert len(ours) == 5000 and all(v in ours for v in values) and (6 << 32) | 6 not in ours
    grown = len(ours._slots)
    assert 2 * 5000 <= grown <= 4 * 5000
    ours.difference_update(values[:4990])
    assert len(ours) == 10 and len(ours._slots) <= 64 and all(v in ours for v in values[4990:])
    assert not any(v in ours for v in values[:4990])


def test_digests_round_trip_through_the_stored_form():
    values = [0, 1, 0x00FF, TOP, 0x0123456789ABCDEF]
    assert sorted(split_digests(join_digests(values))) == sorted(values)
    assert join_digests([0x0123456789ABCDEF]) == "ASNFZ4mrze8="  # big-endian bytes, as before
    # States written before digests were packed list them as 16 hex digits each.
    legacy = {"bucket": "b", "prefix": "p/",
              "recent": [{"until": T0, "members": "00000000000000ff" + "f" * 16}]}
    assert sorted(state_from_doc(legacy).recent[0].members) == [0xFF, TOP]


@st.composite
def window_streams(draw):
    """One prefix: writes of a few keys, redelivered at gaps around the window's length."""
    count = draw(st.integers(1, 4))
    gaps = st.sampled_from([0.0, 1.0, 59.0, 60.0, MIN_DEDUPE_WINDOW - 1, MIN_DEDUPE_WINDOW,
                            MIN_DEDUPE_WINDOW + 1, 3 * MIN_DEDUPE_WINDOW])
    steps = draw(st.lists(st.tuples(st.integers(0, 12), gaps), min_size=1, max_size=120))
    return count, steps


@settings(max_examples=200, deadline=None)
@given(window_streams())
def test_the_window_counts_a_write_again_exactly_when_its_batch_left_the_window(stream):
    count, steps = stream
    eng = Engine(BatchRules(count=count, quiet_seconds=60), keep_members=False)
    s = PrefixState("b", "run/a/")
    emitted_at: dict[int, float] = {}  # digest -> when the batch that counted it was emitted
    in_open: set[int] = set()
    t = T0
    for write, gap in steps:
        t += gap
        event = ObjectEvent("b", f"run/a/f{write}", f"S{write}", t)
        result = Added([])
        # What the rules say, from the history alone (every due batch first closes at `t`):
        if s.open is not None and s.deadline is not None and t >= s.deadline:
            emitted_at.update(dict.fromkeys(in_open, t))
            in_open = set()
        held = event.digest in in_open or (event.digest in emitted_at
                                           and t < emitted_at[event.digest] + eng.window)
        eng.add_one(s, event, t, result)
        assert (result.counted, result.duplicates) == ((0, 1) if held else (1, 0))
        if not held:
            in_open.add(event.digest)
            if len(in_open) >= count:
                emitted_at.update(dict.fromkeys(in_open, t))
                in_open = set()
        # The window's set and count are exactly the remembered batches' digests.
        remembered = [d for r in s.recent for d in r.members]
        assert len(remembered) == len(set(remembered))
        if s._seen is not None:
            assert sorted(s._seen) == sorted(remembered)
        assert s.held() == len(remembered)
        assert set(remembered) <= set(emitted_at)  # expired ones may wait for the next look
        assert {d for d, at in emitted_at.items() if t < at + eng.window} <= set(remembered)
        # ... and survive the stored form.
        again = state_from_doc(state_to_doc(s))
        assert sorted(d for r in again.recent for d in r.members) == sorted(remembered)
