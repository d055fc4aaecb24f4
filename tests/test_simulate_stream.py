"""simulate-batch streams its emitted batches: time order without a sort, the spool, the running
summary, and output written in pieces that is the same text as the document built whole."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app
from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.engine import TRIGGERS, Emission
from omics_edp_cli.edp.s3events import ObjectEvent
from omics_edp_cli.ops.simulate.execute import Run, simulate
from omics_edp_cli.ops.simulate.report import as_json, json_chunks, percentile, summary
from omics_edp_cli.ops.simulate.spool import EmissionSpool, SpooledEmission

T0 = 1_767_600_000.0
runner = CliRunner()


@st.composite
def streams(draw) -> tuple[BatchRules, float, list[ObjectEvent]]:
    """Events over a few prefixes, times jittering backwards too, with repeated deliveries."""
    rules = BatchRules(count=draw(st.integers(1, 8)), quiet_seconds=draw(st.sampled_from([0.5, 5.0, 90.0])),
                       max_age_seconds=draw(st.sampled_from([0.0, 45.0])))
    tick = draw(st.sampled_from([0.0, 7.0, 60.0]))
    steps = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9), st.floats(-20, 200)),
                          min_size=1, max_size=80))
    t, events = T0, []
    for prefix, write, gap in steps:
        t += gap
        events.append(ObjectEvent("b", f"ins/r{prefix}/f{write}", f"S{write}", t, 5))
    return rules, tick, events


def r3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def batch(e: Emission) -> tuple:
    """What the output shows of a batch: its figures, its object keys and their event times."""
    if isinstance(e, SpooledEmission):  # read back from a spool
        keys, times = e.keys, list(e.times)
    else:  # as the engine made it
        keys, times = [o[0] for o in e.objects], [o[4] for o in e.objects]
    return (e.batch_id, e.prefix, e.count, e.first_event_at, e.last_event_at, e.opened_at, e.emitted_at,
            e.trigger, keys, times)


def old_summary(emitted: list[Emission]) -> dict[str, Any]:
    """The summary figures as they were computed from every batch held in a list."""
    counts = [e.count for e in emitted]
    latencies = sorted(e.emitted_at - e.first_event_at for e in emitted)
    per_prefix: dict[tuple[str, str], int] = {}
    for e in emitted:
        per_prefix[(e.bucket, e.prefix)] = per_prefix.get((e.bucket, e.prefix), 0) + 1
    return {
        "batches": len(emitted),
        "by_trigger": {t: sum(1 for e in emitted if e.trigger == t) for t in TRIGGERS
                       if any(e.trigger == t for e in emitted)},
        "files_per_batch": {"mean": round(sum(counts) / len(counts), 2) if counts else None,
                            "min": min(counts, default=None), "max": max(counts, default=None)},
        "latency_seconds": {"p50": r3(percentile(latencies, 50)), "p95": r3(percentile(latencies, 95)),
                            "max": r3(latencies[-1] if latencies else None)},
        "prefixes": len(per_prefix),
        "prefixes_split": sum(1 for n in per_prefix.values() if n > 1),
    }


@settings(max_examples=150, deadline=None)
@given(streams())
def test_emissions_come_in_time_order_and_the_spool_and_tally_keep_them_exactly(stream):
    rules, tick, events = stream
    # Fed one event at a time, drained after each: every emission, as the engine made it.
    direct = Run(rules, tick, keep_objects=True)
    made: list[Emission] = []
    for event in events:
        direct.feed(event)
        made += direct.pending
        direct.drain()
    direct.advance(math.inf)
    made += direct.pending
    direct.drain()
    assert [e.emitted_at for e in made] == sorted(e.emitted_at for e in made)
    # Through `simulate` with a spool that spills every two batches: the same, read back twice.
    [run] = simulate(iter(events), [rules], tick=tick, keep_objects=True)
    small = Run(rules, tick, keep_objects=True, spool=EmissionSpool(chunk=2))
    for event in events:
        small.feed(event)
    small.finish()
    expected = [batch(e) for e in made]
    assert [batch(e) for e in run.emissions()] == expected
    assert [batch(e) for e in small.emissions()] == expected == [batch(e) for e in small.emissions()]
    figures = summary(small)
    assert {k: figures[k] for k in old_summary(made)} == old_summary(made)
    assert figures["counted"] == sum(e.count for e in made)


def test_an_emission_out_of_time_order_is_a_bug_not_output():
    run = Run(BatchRules(), 60.0)
    run.pending.append(Emission("a", "b", "p/", 1, T0, T0, T0, T0 + 10, "quiet"))
    run.drain()
    run.pending.append(Emission("c", "b", "p/", 1, T0, T0, T0, T0 + 5, "quiet"))
    try:
        run.drain()
    except RuntimeError as e:
        assert "out of time order" in str(e)
    else:
        raise AssertionError("no error")


def burst(prefixes: int, files: int) -> list[ObjectEvent]:
    return sorted((ObjectEvent("b" if p % 3 else "c", f"run/p{p:03d}/f{i}", f"S{i}", T0 + 2 * i + p / 1000, 7)
                   for p in range(prefixes) for i in range(files)), key=lambda e: e.time)


def test_the_document_in_pieces_is_the_text_of_the_document_built_whole():
    rule_sets = [BatchRules(count=3), BatchRules(count=5, max_age_seconds=30)]
    runs = simulate(burst(40, 25), rule_sets, keep_objects=True)
    for run in runs:
        run.spool.chunk = 7  # already spilled in chunks of 1024; reading mixes file and buffer
    assert runs[0].batches > 200
    one = json.dumps(as_json(runs[0], malformed=2, other=1), ensure_ascii=False, default=str)
    assert "".join(json_chunks(runs[:1], malformed=2, other=1)) == one
    both = {"runs": [as_json(r) for r in runs]}
    assert "".join(json_chunks(runs)) == json.dumps(both, ensure_ascii=False, default=str)
    without_objects = simulate(burst(5, 10), [BatchRules(count=3)])
    assert "".join(json_chunks(without_objects)) == json.dumps(as_json(without_objects[0]),
                                                              ensure_ascii=False, default=str)


def test_a_large_run_prints_every_batch_in_time_order():
    args = ["simulate-batch", "--prefixes", "300", "--files", "12", "--interval", "3", "--count", "5"]
    data = json.loads(runner.invoke(app, ["-o", "json", *args]).stdout)
    times = [e["time"] for e in data["events"]]
    assert len(times) == data["summary"]["batches"] == 900 and times == sorted(times)
    assert set(data["objects"]) == {e["detail"]["batch_id"] for e in data["events"]}
    assert sum(len(keys) for keys in data["objects"].values()) == 3600

    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    rows = [line.split() for line in lines[2:2 + 900]]
    # The plain table as it was built from a list: widths over every row, header included.
    expected_rows = [{"emitted": e["time"], "prefix": e["detail"]["prefix"], "count": e["detail"]["count"],
                      "trigger": e["detail"]["trigger"]} for e in data["events"]]
    widths = {c: max([len(c), *(len(str(r[c])) for r in expected_rows)]) for c in expected_rows[0]}
    assert lines[1].startswith("  ".join(c.ljust(widths[c]) for c in widths))
    assert [r[:4] for r in rows] == [[str(r[c]) for c in widths] for r in expected_rows]
    assert [line[:len(lines[1].split("latency")[0])] for line in lines[2:902]] == [
        "  ".join(str(r[c]).ljust(widths[c]) for c in widths) + "  " for r in expected_rows]


def test_lines_read_by_the_scanner_give_what_json_loads_gives(tmp_path):
    """The event-line loop skips `json.loads`'s wrapper for a plain line: values, errors and their
    messages stay the same for lines the shortcut must leave to it."""
    from edp.samples import eventbridge_event

    from omics_edp_cli.edp.s3events import S3EventError, parse_message
    from omics_edp_cli.ops.simulate.eventlog import EventLogSource

    good = json.dumps(eventbridge_event("run/a/f1", "S1", time="2026-03-02T10:00:00Z"))
    lines = [good, "  " + good, good + "  ", good + " x", good + "\x0c", "\ufeff" + good, "{", "[1, 2",
             '{"a": 1}{"b": 2}', "", "   ", "nul", '"text"', "\t" + good + "\t"]
    path = tmp_path / "events.jsonl"
    path.write_text("\r\n".join(lines[:3]) + "\r\n" + "\n".join(lines[3:]) + "\n" + good, encoding="utf-8")
    bad: list[tuple[int, str]] = []
    got = [(e.key, e.sequencer, e.time) for e in EventLogSource(str(path), lambda n, r: bad.append((n, r)))]
    expected_bad, expected = [], []
    with path.open(encoding="utf-8") as handle:
        read = list(handle)
    for number, line in enumerate(read, 1):
        try:
            events = parse_message(json.loads(line))
        except json.JSONDecodeError as e:
            if line.strip():
                expected_bad.append((number, f"not JSON ({e.msg}, column {e.colno})"))
            continue
        except (ValueError, S3EventError) as e:
            expected_bad.append((number, str(e)))
            continue
        expected += [(e.key, e.sequencer, e.time) for e in events]
    assert got == expected and len(got) == 5
    assert bad == expected_bad and len(bad) == 8
