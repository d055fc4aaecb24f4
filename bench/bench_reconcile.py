"""`omics-edp reconcile` over a fake account of 10,000 HealthOmics runs.

The HealthOmics fake (HTTP on 127.0.0.1) holds N runs (default 10,000), all COMPLETED inside a
24-hour window. The archive (in-process moto S3, objects written straight into moto's backend)
shows every run's COMPLETED as sent, except for `--missing` runs (default 500) whose archive
shows only PENDING, like a night when EventBridge lost the rest; the WES-rules receiver holds
those runs QUEUED. Then, in this one process, through the same ops functions the command calls:
  * report:      `reconcile` report-only (the baseline of the ratios below);
  * first fix:   `reconcile --fix` (RUNNING then COMPLETED for each missing run);
  * second fix:  `reconcile --fix` again, which must send nothing.
It prints ListRuns calls, archive list calls and reads, GetRun calls, POSTs and wall time for
each pass, and each pass's wall time as a ratio to the report-only pass.

Usage: .venv/bin/python bench/bench_reconcile.py [--runs 10000] [--missing 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PREFIX = "omics-run-events"
TOKEN = "bench-token"
T0 = datetime(2026, 1, 22, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--missing", type=int, default=500)
    args = parser.parse_args()

    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from omics_edp_cli.aws import ClientFactory
    from omics_edp_cli.local.fake_omics import FakeOmics
    from omics_edp_cli.local.receiver import CallbackReceiver
    from omics_edp_cli.omics.archive import archive_key
    from omics_edp_cli.omics.config import DeliveryPolicy
    from omics_edp_cli.ops.reconcile.execute import reconcile
    from omics_edp_cli.ops.reconcile.plan import ReconcileOptions, plan_reconcile
    from omics_edp_cli.timefmt import iso_z

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"})
    with mock_aws(), FakeOmics() as omics, CallbackReceiver(token=TOKEN) as receiver:
        os.environ["AWS_ENDPOINT_URL_OMICS"] = omics.url
        clients = ClientFactory()
        s3 = clients.client("s3")
        bucket = "bench-reconcile"
        s3.create_bucket(Bucket=bucket)
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        started = time.monotonic()
        for i in range(args.runs):
            run_id, wes = f"{1_000_000 + i}", str(uuid.uuid5(uuid.NAMESPACE_DNS, f"wes-{i}"))
            created = T0 + timedelta(seconds=i * 86400 * 0.9 / args.runs)
            begun, stopped = created + timedelta(minutes=1), created + timedelta(minutes=30)
            omics.add_run({"id": run_id, "arn": f"arn:aws:omics:us-east-1:123456789012:run/{run_id}",
                           "status": "COMPLETED", "creationTime": iso_z(created),
                           "startTime": iso_z(begun), "stopTime": iso_z(stopped),
                           "tags": {"WESRunId": wes}, "logLocation": {"runLogStream": (
                               "arn:aws:logs:us-east-1:123456789012:log-group:/aws/omics/"
                               f"WorkflowLog:log-stream:run/{run_id}")}})
            missing = i < args.missing
            status, at = ("PENDING", created) if missing else ("COMPLETED", stopped)
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{status}"))
            body = {"omics_run_id": run_id, "wes_run_id": wes, "status": status,
                    "event_time": iso_z(at), "event_id": event_id}
            backend.put_object(bucket, archive_key(PREFIX, at, event_id), json.dumps(body).encode())
            receiver.states[wes] = "QUEUED" if missing else "COMPLETE"
        print(f"setup: {args.runs:,} runs, {args.missing:,} with only PENDING archived "
              f"({time.monotonic() - started:.1f} s)")

        policy = DeliveryPolicy(max_retries=2, timeout=5.0, backoff_factor=0.05)
        os.environ["OMICS_EDP_API_TOKEN"] = TOKEN
        rows = []
        for name, fix in (("report", False), ("first fix", True), ("second fix", True)):
            plan = plan_reconcile(ReconcileOptions(
                since=iso_z(T0), until=iso_z(T0 + timedelta(days=1)), fix=fix, bucket=bucket,
                api_server=receiver.url), clients)
            posts_before, get_runs_before = len(receiver.requests), omics.count("GetRun")
            began = time.monotonic()
            result = reconcile(plan, clients, policy=policy)
            wall = time.monotonic() - began
            summary = result.summary()
            rows.append((name, summary["list_runs_calls"], summary["archive_list_calls"],
                         summary["archive_reads"], omics.count("GetRun") - get_runs_before,
                         len(receiver.requests) - posts_before, len(result.attention), wall))
        base = rows[0][-1]
        print(f"{'pass':<11} {'ListRuns':>8} {'S3 lists':>8} {'reads':>7} {'GetRun':>7} "
              f"{'POSTs':>6} {'attention':>9} {'wall s':>7} {'vs report':>9}")
        for name, lists, s3_lists, reads, gets, posts, attention, wall in rows:
            print(f"{name:<11} {lists:>8} {s3_lists:>8} {reads:>7} {gets:>7} {posts:>6} "
                  f"{attention:>9} {wall:>7.2f} {wall / base:>8.2f}x")
        complete = sum(1 for s in receiver.states.values() if s == "COMPLETE")
        print(f"receiver: {complete:,} of {args.runs:,} runs COMPLETE; second --fix sent "
              f"{rows[2][5]} POST(s) (must be 0)")
        if rows[2][5] != 0 or complete != args.runs:
            sys.exit(1)


if __name__ == "__main__":
    main()
