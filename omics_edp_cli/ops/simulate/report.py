"""What a simulated run reports: its summary (kept as it runs), its timeline, its JSON document.

The emitted batches are not held in memory: `Tally` keeps the summary figures as each batch is
emitted, and the timeline and the JSON document are produced from the run's spool, in emission
order, which is time order (`Run` checks it as it goes).
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from omics_edp_cli.edp.engine import TRIGGERS, Emission
from omics_edp_cli.edp.s3events import iso_time

if TYPE_CHECKING:
    from omics_edp_cli.ops.simulate.execute import Run


class Tally:
    """The summary's figures over the emitted batches, kept incrementally.

    What grows: 8 bytes per batch (latencies, for exact percentiles) and one entry per prefix.
    """

    def __init__(self) -> None:
        self.batches = 0
        self.files = 0
        self.min_count: int | None = None
        self.max_count: int | None = None
        self.by_trigger: dict[str, int] = {}
        self.latencies = array("d")
        self.per_prefix: dict[tuple[str, str], int] = {}

    def add(self, emissions: Iterable[Emission]) -> None:
        latencies, per_prefix, by_trigger = self.latencies, self.per_prefix, self.by_trigger
        for e in emissions:
            count = e.count
            self.batches += 1
            self.files += count
            if self.min_count is None or count < self.min_count:
                self.min_count = count
            if self.max_count is None or count > self.max_count:
                self.max_count = count
            by_trigger[e.trigger] = by_trigger.get(e.trigger, 0) + 1
            latencies.append(e.emitted_at - e.first_event_at)
            key = (e.bucket, e.prefix)
            per_prefix[key] = per_prefix.get(key, 0) + 1


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(run: Run, *, malformed: int = 0, other: int = 0) -> dict[str, Any]:
    tally = run.tally
    latencies = sorted(tally.latencies)
    return {
        "events": run.counted + run.duplicates + run.ignored + run.shallow,
        "counted": run.counted,
        "duplicates": run.duplicates,
        "ignored": run.ignored,
        "shallow": run.shallow,
        "malformed": malformed,
        "not_object_created": other,
        "batches": tally.batches,
        "by_trigger": {t: tally.by_trigger[t] for t in TRIGGERS if t in tally.by_trigger},
        "files_per_batch": {
            "mean": round(tally.files / tally.batches, 2) if tally.batches else None,
            "min": tally.min_count,
            "max": tally.max_count,
        },
        "latency_seconds": {
            "p50": _round(percentile(latencies, 50)),
            "p95": _round(percentile(latencies, 95)),
            "max": _round(latencies[-1] if latencies else None),
        },
        "prefixes": len(tally.per_prefix),
        "prefixes_split": sum(1 for n in tally.per_prefix.values() if n > 1),
        "peak_prefixes_held": run.peak_held,
    }


def timeline_row(e: Emission) -> dict[str, Any]:
    return {
        "emitted_at": iso_time(e.emitted_at),
        "bucket": e.bucket,
        "prefix": e.prefix,
        "count": e.count,
        "trigger": e.trigger,
        "latency_seconds": _round(e.emitted_at - e.first_event_at),
        "batch_id": e.batch_id,
    }


def timeline(run: Run) -> Iterator[dict[str, Any]]:
    """The emitted batches in emission (time) order, one row each, read as they are needed."""
    return (timeline_row(e) for e in run.emissions())


def thresholds(run: Run) -> dict[str, Any]:
    return {**run.rules.as_dict(), "tick_seconds": run.tick}


def as_json(run: Run, *, malformed: int = 0, other: int = 0) -> dict[str, Any]:
    """Thresholds, summary, the exact events a consumer would receive, in time order, and each
    batch's object keys by `batch_id` (what its manifest would list; when the run kept them).

    Built in memory: for a few hundred batches. `json_chunks` writes the same document in pieces.
    """
    # Imported here: edp.emit imports botocore (for its EventBridge publisher), which
    # `simulate-batch --help` and the table output never need.
    from omics_edp_cli.edp.emit import consumer_event

    emitted = list(run.emissions())
    out = {
        "thresholds": thresholds(run),
        "summary": summary(run, malformed=malformed, other=other),
        "events": [consumer_event(e) for e in emitted],
    }
    if run.keep_objects:
        out["objects"] = {e.batch_id: e.keys for e in emitted}
    return out


def json_chunks(runs: list[Run], *, malformed: int = 0, other: int = 0) -> Iterator[str]:
    """The text of `json.dumps(document, ensure_ascii=False, default=str)`, where the document is
    `as_json` of one run or `{"runs": [...]}` of several, in pieces: one batch at a time."""
    if len(runs) == 1:
        yield from _run_chunks(runs[0], malformed, other)
        return
    yield '{"runs": ['
    for n, run in enumerate(runs):
        if n:
            yield ", "
        yield from _run_chunks(run, malformed, other)
    yield "]}"


def _run_chunks(run: Run, malformed: int, other: int) -> Iterator[str]:
    from omics_edp_cli.edp.emit import consumer_event

    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode  # what json.dumps makes per call
    head = dumps({"thresholds": thresholds(run),
                  "summary": summary(run, malformed=malformed, other=other)})
    yield head[:-1] + ', "events": ['
    for n, e in enumerate(run.emissions()):
        yield (", " if n else "") + dumps(consumer_event(e))
    yield "]"
    if run.keep_objects:
        yield ', "objects": {'
        for n, e in enumerate(run.emissions()):
            yield (", " if n else "") + dumps(e.batch_id) + ": " + e.keys_json
        yield "}"
    yield "}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
