"""`simulate-batch --events` throughput and memory, and the ingest Lambda's DynamoDB writes.

1. Writes N EventBridge `Object Created` events (default 200,000 over 500 prefixes, one
   every 50 ms, as JSON lines) to a temporary file.
2. In this process, alternately: a bare loop that only `json.loads` each line (the baseline),
   and `omics-edp -o json simulate-batch --events FILE` through the real Typer app (stdout
   to /dev/null). Prints the medians, events per second and the ratio simulate/parse
   (target: at most 2.0). CPU time is shown next to wall time: it is steadier on a busy machine.
   Then the same two as commands, each in a fresh process, their CPU read from outside: what a
   user waits for, the interpreter's and the CLI's start-up included.
3. Peak memory: the Python heap peak (tracemalloc) of the simulation on a quarter of the file
   and on all of it; then the peak RSS of `omics-edp -o json simulate-batch` in a fresh process,
   read from outside with `os.wait4` (in a small launcher, see LAUNCHER), at 50,000 and 1,000,000 events,
   for the JSON-lines source and for the synthetic burst (target: 1M at most 1.25x the 50k peak).
4. The DynamoDB write calls the ingest handler makes for one 100-record SQS batch over 5
   prefixes (moto; target: one per prefix plus one per emission).
5. With `--breakdown`: where the time goes, per event and as a multiple of the parse, each
   part the best of `--runs` (CPU time): reading lines into events (of which building the
   event and its digest), the engine, store and spool on events already built (of which
   `Engine.add_one`, found by running again with it a no-op), rendering the JSON document.

Usage: .venv/bin/python bench/bench_simulate.py [--events 200000] [--prefixes 500] [--runs 3]
       [--no-rss] [--breakdown]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

T0 = 1_772_445_600  # 2026-03-02T10:00:00Z


def write_events(path: Path, count: int, prefixes: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            p = rng.randrange(prefixes)
            when = datetime.fromtimestamp(T0 + i // 20, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.write(json.dumps({
                "version": "0", "id": f"{i:08x}-05d4-b198-2fde-7ededc63b103",
                "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
                "time": when, "region": "us-east-1", "resources": ["arn:aws:s3:::instrument-bucket"],
                "detail": {
                    "version": "0", "bucket": {"name": "instrument-bucket"},
                    "object": {"key": f"novaseq-{p % 7:02d}/run-{p:04d}/Data/L001/s_{i}.bcl.gz",
                               "size": 524288, "etag": "b1946ac92492d2347c6235b4d2611184",
                               "sequencer": f"{i:018X}"},
                    "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                    "source-ip-address": "10.0.1.12", "reason": "PutObject",
                },
            }) + "\n")


def parse_only(path: Path) -> None:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            json.loads(line)


def simulate_cli(path: Path) -> None:
    from omics_edp_cli.cli.app import app

    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
            contextlib.redirect_stderr(null):
        try:
            app(["-o", "json", "simulate-batch", "--events", str(path)], standalone_mode=False)
        except SystemExit as e:
            if e.code:
                raise


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


# Forks the measured command and reports its rusage: run from a fresh, small interpreter, since a
# child's `ru_maxrss` starts from the peak of the process it was forked from (Linux records the
# old memory's high-water mark at exec), which for this bench is itself, at 100-200 MB.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


CLI = str(Path(sys.executable).with_name("omics-edp"))


def child_usage(argv: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and CPU seconds of `argv` in a fresh process, read from outside.

    `os.wait4` in a small launcher gives the rusage of that one grandchild. Neither the child's
    own `getrusage(RUSAGE_SELF)` nor `os.wait4` on a child forked from this bench would do: the
    peak is carried across fork and exec, so they report this bench's peak for a small run.
    """
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *argv],
                         capture_output=True, text=True, check=True).stdout
    code, maxrss, cpu = out.split()
    if int(code):
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return int(maxrss) / 1024, float(cpu)


def child_peak_rss_mb(args: list[str]) -> float:
    """Peak RSS of `omics-edp -o json simulate-batch ARGS` in a fresh process, read from outside."""
    return child_usage([CLI, "-o", "json", "simulate-batch", *args])[0]


# The same `json.loads` loop as `parse_only`, as a program of its own.
PARSE_PROGRAM = """
import json, sys
with open(sys.argv[1], encoding="utf-8") as lines:
    for line in lines:
        json.loads(line)
"""


def fresh_process_cpu(path: Path, runs: int) -> tuple[float, float]:
    """Median CPU of the command and of the parse loop, each in a fresh process (alternating
    runs): what a user waits for, start-up (the interpreter, Typer, this CLI's imports) included."""
    cmd, parse = [], []
    for _ in range(runs):
        cmd.append(child_usage([CLI, "-o", "json", "simulate-batch", "--events", str(path)])[1])
        parse.append(child_usage([sys.executable, "-c", PARSE_PROGRAM, str(path)])[1])
    return statistics.median(cmd), statistics.median(parse)


def synthetic_args(events: int) -> list[str]:
    """A synthetic burst of `events` events: 500 prefixes, one file per prefix every 2 s."""
    return ["--prefixes", "500", "--files", str(events // 500), "--interval", "2", "--count", "20"]


def heap_peak_mb(path: Path) -> tuple[float, int, int]:
    from omics_edp_cli.edp.config import BatchRules
    from omics_edp_cli.ops.simulate.eventlog import EventLogSource
    from omics_edp_cli.ops.simulate.execute import simulate

    tracemalloc.start()
    [run] = simulate(EventLogSource(str(path), lambda n, r: None), [BatchRules()])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, run.batches, run.peak_held


def breakdown(path: Path, runs: int) -> list[tuple[str, float]]:
    """(part, best CPU seconds of `runs`) for the parts of `simulate-batch --events -o json`."""
    from omics_edp_cli.edp.config import BatchRules
    from omics_edp_cli.edp.engine import Engine
    from omics_edp_cli.edp.s3events import ObjectEvent
    from omics_edp_cli.ops.simulate.eventlog import EventLogSource
    from omics_edp_cli.ops.simulate.execute import simulate
    from omics_edp_cli.ops.simulate.report import json_chunks

    def best(fn) -> float:
        return min(timed(fn)[1] for _ in range(runs))

    def source():
        return EventLogSource(str(path), lambda n, r: None)

    events = list(source())
    held = {}
    parts = [("json.loads per line (the baseline)", best(lambda: parse_only(path))),
             ("lines read into events", best(lambda: sum(1 for _ in source()))),
             ("  of which building the events (digest included)",
              best(lambda: [ObjectEvent(e.bucket, e.key, e.sequencer, e.time, e.size, e.etag)
                            for e in events])),
             ("engine, store and spool on built events",
              best(lambda: held.setdefault("runs", simulate(events, [BatchRules()], keep_objects=True))))]
    add_one = Engine.add_one
    Engine.add_one = lambda self, state, event, now, result: None  # type: ignore[method-assign]
    try:
        without = best(lambda: simulate(events, [BatchRules()], keep_objects=True))
    finally:
        Engine.add_one = add_one  # type: ignore[method-assign]
    parts.append(("  of which Engine.add_one (batches, de-duplication window)", parts[-1][1] - without))
    parts.append(("rendering the JSON document from the spool",
                  best(lambda: sum(1 for _ in json_chunks(held["runs"])))))
    parts.append(("simulate-batch --events -o json (in-process)", best(lambda: simulate_cli(path))))
    return parts


def ingest_writes(records: int = 100, prefixes: int = 5) -> list[tuple[str, int, int]]:
    """(case, DynamoDB write calls, emissions) for one SQS batch through the ingest handler."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "STATE_TABLE": "edp-state",
                       "EVENT_BUS_NAME": "quilt-edp"})
    import boto3
    from moto import mock_aws

    from omics_edp_cli.aws import ClientFactory
    from omics_edp_cli.edp import handlers
    from omics_edp_cli.edp.dynamodb_store import create_table

    logging.disable(logging.INFO)  # the handler logs one line per invocation
    writes = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
    results = []
    cases = [("count 20: every prefix fills one batch", "20", 0),
             ("count 50: nothing full", "50", 0),
             ("count 30, prefixes already hold 20 each", "30", 1)]
    for name, count, warm in cases:
        with mock_aws():
            os.environ["BUCKET_THRESHOLD_EVENT_COUNT"] = count
            dynamodb, events = boto3.client("dynamodb"), boto3.client("events")
            create_table(dynamodb, "edp-state")
            events.create_event_bus(Name="quilt-edp")
            calls: list[str] = []

            def count(model, calls=calls, **_):
                if model.name in writes:
                    calls.append(model.name)

            dynamodb.meta.events.register("before-call.dynamodb.*", count)
            handlers.reset(clients=ClientFactory(overrides={"dynamodb": dynamodb, "events": events}),
                           clock=lambda: float(T0))
            for batch in range(warm + 1):
                calls.clear()
                body = [{"messageId": f"m{batch}-{i}", "body": json.dumps({
                    "source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T10:00:00Z",
                    "detail": {"bucket": {"name": "instrument-bucket"},
                               "object": {"key": f"run/p{i % prefixes}/b{batch}-f{i}",
                                          "sequencer": f"{batch}{i}"}},
                })} for i in range(records)]
                # count emissions from the state the handler leaves
                result = handlers.ingest_handler({"Records": body}, None)
                assert result == {"batchItemFailures": []}, result
            emitted = _emissions(dynamodb)
            results.append((name, len(calls), emitted))
            handlers.reset()
    return results


def _emissions(dynamodb) -> int:
    from omics_edp_cli.edp.dynamodb_store import DynamoDBStore

    store = DynamoDBStore(dynamodb, "edp-state")
    return sum(1 for s in store.everything() for _ in s.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--prefixes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-rss", dest="rss", action="store_false",
                        help="skip the peak-RSS runs (50,000 and 1,000,000 events, both sources)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print where the time goes, per event and as a multiple of the parse")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        full, quarter = Path(tmp) / "events.jsonl", Path(tmp) / "quarter.jsonl"
        write_events(full, args.events, args.prefixes)
        with full.open() as src, quarter.open("w") as dst:
            for i, line in enumerate(src):
                if i == args.events // 4:
                    break
                dst.write(line)
        size = full.stat().st_size / 2**20
        print(f"{args.events:,} EventBridge S3 events over {args.prefixes} prefixes: "
              f"{size:.0f} MB of JSON lines")

        simulate_cli(quarter)  # warm up imports
        base, sim = [], []
        for _ in range(args.runs):
            base.append(timed(parse_only, full))
            sim.append(timed(simulate_cli, full))
        b_wall, b_cpu = (statistics.median(x) for x in zip(*base, strict=True))
        s_wall, s_cpu = (statistics.median(x) for x in zip(*sim, strict=True))
        print(f"json.loads only (baseline):     {b_wall:6.2f} s wall, {b_cpu:6.2f} s CPU "
              f"(median of {args.runs})")
        print(f"simulate-batch --events -o json: {s_wall:6.2f} s wall, {s_cpu:6.2f} s CPU "
              f"= {args.events / s_wall:,.0f} events/s")
        print(f"ratio simulate/parse:           {s_wall / b_wall:6.2f} wall, {s_cpu / b_cpu:6.2f} CPU "
              "(target <= 2.0)")

        f_cmd, f_parse = fresh_process_cpu(full, args.runs)
        print(f"as commands, each in a fresh process (start-up included): {f_cmd:.2f} vs {f_parse:.2f} s "
              f"CPU = {f_cmd / f_parse:.2f}")

        if args.breakdown:
            parts = breakdown(full, args.runs)
            base = parts[0][1]
            print(f"where the time goes (best CPU of {args.runs}):")
            for name, seconds in parts:
                print(f"  {name:58s} {seconds:6.2f} s {seconds / args.events * 1e6:6.1f} us/event "
                      f"{seconds / base:5.2f}x parse")

        heap_quarter, batches_quarter, held_quarter = heap_peak_mb(quarter)
        heap_full, batches_full, held_full = heap_peak_mb(full)
        print(f"simulation heap peak:           {heap_quarter:6.1f} MB ({batches_quarter:,} batches, "
              f"{held_quarter} prefixes held) vs {heap_full:6.1f} MB ({batches_full:,} batches, "
              f"{held_full} prefixes held)")

        if args.rss:
            small, big = 50_000, 1_000_000
            lines = Path(tmp) / "rss.jsonl"
            rss: dict[str, list[float]] = {"JSON lines (--events)": [], "synthetic burst": []}
            for n in (small, big):
                write_events(lines, n, args.prefixes)
                rss["JSON lines (--events)"].append(child_peak_rss_mb(["--events", str(lines)]))
                rss["synthetic burst"].append(child_peak_rss_mb(synthetic_args(n)))
            lines.unlink()
            for name, (at_small, at_big) in rss.items():
                print(f"peak RSS, {name:22s} {at_small:6.1f} MB at {small:,} events, {at_big:6.1f} MB at "
                      f"{big:,}: ratio {at_big / at_small:.2f} (target <= 1.25)")

    print("DynamoDB write calls of the ingest handler, one 100-record SQS batch over 5 prefixes:")
    for name, calls, emitted in ingest_writes():
        print(f"  {name:42s} {calls:3d} writes  (5 prefixes + {emitted} emission(s) = {5 + emitted})")


if __name__ == "__main__":
    main()
