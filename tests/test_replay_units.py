"""Replay's parts: time windows, the rate limit, the report, the key range (list calls) and a clean stop."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from conftest import API_TOKEN
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from replay.helpers import PREFIX, T0, iso, minutes, payload, put_payload

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.local.receiver import Scripted
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.ops.ratelimit import RateLimiter
from omics_edp_cli.ops.replay.archive_range import KeyRange
from omics_edp_cli.ops.replay.execute import replay
from omics_edp_cli.ops.replay.plan import ReplayOptions, plan_replay
from omics_edp_cli.ops.replay.read import ArchivedEvent, payload_problem
from omics_edp_cli.ops.replay.report import EventOutcome, ReportWriter, delivered_keys
from omics_edp_cli.ops.timewindow import TimeWindow, parse_when, time_window

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
FAST = DeliveryPolicy(max_retries=2, timeout=2.0, backoff_factor=0.01, backoff_max=0.05,
                      backoff_jitter=0.0, retry_after_cap=1.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90m", NOW - timedelta(minutes=90)),
        ("6h", NOW - timedelta(hours=6)),
        ("3d", NOW - timedelta(days=3)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2026-11-23T00:55Z", datetime(2026, 11, 23, 0, 55, tzinfo=UTC)),
        ("2026-11-23T01:55:00+01:00", datetime(2026, 11, 23, 0, 55, tzinfo=UTC)),
        ("2026-11-23T00:55", datetime(2026, 11, 23, 0, 55, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
    ],
)
def test_when_is_iso_8601_or_an_age(value, expected):
    assert parse_when(value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "90", "m90", "2026-13-01", ""])
def test_bad_when_is_a_config_error(value):
    with pytest.raises(ConfigError, match="expected ISO 8601"):
        parse_when(value, NOW)


def test_until_defaults_to_now_and_must_not_precede_since():
    assert time_window("1h", None, NOW) == TimeWindow(NOW - timedelta(hours=1), NOW)
    with pytest.raises(ConfigError, match="is after --until"):
        time_window("1h", "2h", NOW)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


def test_rate_limiter_spaces_calls_across_threads():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Four callers at the same instant get slots 0, 0.25, 0.5 and 0.75 s later.
    assert sorted(clock.slept) == [0.25, 0.5, 0.75]
    clock.now += 10  # idle time is not banked into a burst
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.25)


def test_rate_zero_means_no_limit():
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(100)] == [0.0] * 100 and clock.slept == []


def test_report_round_trip_and_a_cut_last_line(tmp_path: Path):
    path = tmp_path / "report.jsonl"
    with ReportWriter(path) as writer:
        for key, outcome in (("k1", "delivered"), ("k2", "already_processed"), ("k3", "failed"),
                             ("k4", "rejected"), ("k5", "skipped")):
            writer.write(EventOutcome(key, "run", "wes", "RUNNING", iso(T0), outcome))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {
        "key": "k1", "run": "run", "wes_run_id": "wes", "status": "RUNNING",
        "event_time": "2026-11-23T01:00:00Z", "outcome": "delivered", "http_status": None,
        "attempts": 0, "error": None,
    }
    with path.open("a") as f:
        f.write('{"key": "k6", "outc')  # a hard kill mid-line
    assert delivered_keys(path) == {"k1", "k2"}


def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"hello": 1}\n{"key": "k", "outcome": "delivered"}\n')
    with pytest.raises(ConfigError, match="line 1 is not a replay report line"):
        delivered_keys(path)
    path.write_text("garbage\n{}\n")
    with pytest.raises(ConfigError, match="line 1 is not JSON"):
        delivered_keys(path)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"omics_run_id": "1", "status": "RUNNING", "event_time": "2026-11-23T01:00:00Z"}, None),
        ("text", "not a callback payload: a JSON str, expected an object"),
        ({"status": "RUNNING"}, "not a callback payload: no omics_run_id, event_time"),
        ({"omics_run_id": "1", "status": "RUNNING", "event_time": "soon"},
         "not a callback payload: event_time 'soon' is not ISO 8601"),
    ],
)
def test_payload_problem(document, problem):
    assert payload_problem(document) == problem


def test_events_of_the_same_second_are_ordered_by_status_progress():
    same_second = [ArchivedEvent(f"k{i}", payload("r", status, T0))
                   for i, status in enumerate(("COMPLETED", "RUNNING", "STARTING", "PENDING"))]
    ordered = sorted(same_second, key=ArchivedEvent.order_key)
    assert [e.status for e in ordered] == ["PENDING", "STARTING", "RUNNING", "COMPLETED"]


def _fill_backend(bucket: str, keys: list[str]) -> None:
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(bucket, key, b"{}")


def test_a_one_hour_window_of_a_large_archive_costs_few_list_calls():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    sparse = [start + timedelta(seconds=60 * i) for i in range(20_000)]  # two weeks, one a minute
    hour = datetime(2026, 11, 8, tzinfo=UTC)
    dense = [hour + timedelta(seconds=i % 3600) for i in range(2_500)]  # a busy hour
    keys = [f"{PREFIX}/event_{at:%Y%m%d_%H%M%S}_{uuid.uuid4()}.json" for at in sparse + dense]
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="big-archive")
        _fill_backend("big-archive", keys)
        calls: list[dict] = []
        s3.meta.events.register("provide-client-params.s3.ListObjectsV2",
                                lambda params, **_: calls.append(dict(params)))
        window = TimeWindow(hour, hour + timedelta(minutes=59, seconds=59))

        listed = list(KeyRange(s3, "big-archive", PREFIX, window))

    in_window = 60 + 2_500
    assert len(listed) == in_window and listed == sorted(listed)
    assert len(calls) <= math.ceil(in_window / 1000) + 1  # 3 here; a full listing takes 23
    assert calls[0]["StartAfter"] == f"{PREFIX}/event_20261108_000000"


def test_key_range_bounds_are_the_windows_first_and_last_second():
    window = TimeWindow(T0, T0 + timedelta(hours=1, milliseconds=900))
    key_range = KeyRange(None, "b", "/omics-run-events/", window)
    assert key_range.start_after == "omics-run-events/event_20261123_010000"
    assert key_range.stop_at == "omics-run-events/event_20261123_020001"
    assert key_range.list_prefix == "omics-run-events/event_"
    assert KeyRange(None, "b", "", window).list_prefix == "event_"


@pytest.fixture
def s3_archive():
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="stop-archive")
        yield s3


class StopAfter:
    """A progress sink that asks the replay to stop after `n` delivered events (like Ctrl-C)."""

    def __init__(self, n: int, stop: threading.Event):
        self.n, self.stop, self.phase_name, self.done = n, stop, "", 0

    def phase(self, name: str, total: int | None) -> None:
        self.phase_name = name

    def advance(self, count: int = 1) -> None:
        if self.phase_name == "replaying":
            self.done += count
            if self.done >= self.n:
                self.stop.set()


def test_stopping_finishes_in_flight_requests_keeps_the_report_complete_and_resume_finishes(
    s3_archive, receiver, tmp_path
):
    for r in range(4):
        for i, status in enumerate(("RUNNING", "STOPPING", "COMPLETED")):
            put_payload(s3_archive, "stop-archive", payload(f"run-{r}", status, T0 + minutes(i)))
    report = tmp_path / "report.jsonl"
    options = ReplayOptions(since=iso(T0), until=iso(T0 + minutes(10)), bucket="stop-archive",
                            api_server=receiver.url, concurrency=2, report=report)
    clients = ClientFactory()
    env = {"OMICS_EDP_API_TOKEN": API_TOKEN}
    stop = threading.Event()

    first = replay(plan_replay(options, clients, env), clients, StopAfter(3, stop), stop, FAST)

    assert first.interrupted and 3 <= len(first.outcomes) < 12
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == len(first.outcomes) == len(receiver.accepted)  # nothing sent unreported
    assert first.summary()["not_sent"] == 12 - len(lines)

    resumed = dataclasses.replace(options, resume=report)
    second = replay(plan_replay(resumed, clients, env), clients, None, None, FAST)

    assert not second.interrupted and second.ok
    assert len(second.outcomes) == 12 - len(lines)
    event_ids = [b["event_id"] for b in receiver.accepted]
    assert len(event_ids) == len(set(event_ids)) == 12


def test_ctrl_c_stops_cleanly_with_exit_130_and_a_complete_report(moto_server, receiver, tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "OMICS_EDP_API_TOKEN": API_TOKEN}
    s3 = boto3.client("s3", endpoint_url=moto_server)
    bucket = f"sigint-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    for r in range(12):
        put_payload(s3, bucket, payload(f"slow-{r}", "RUNNING", T0 + minutes(r)))
    slow = Scripted(200, body={"success": True, "already_processed": False}, delay=0.4)
    receiver.script(*[slow] * 12)
    report = tmp_path / "report.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "omics_edp_cli", "replay", "--bucket", bucket, "--api-server",
         receiver.url, "--since", iso(T0), "--until", iso(T0 + timedelta(hours=1)),
         "--concurrency", "2", "--report", str(report)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (report.exists() and report.read_text().strip()):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "Interrupted:" in stderr and f"run again with --resume {report}" in stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]  # every line whole
    assert 1 <= len(lines) < 12
    assert len(lines) == len(receiver.requests)  # the in-flight ones finished and were reported
    assert "Replay summary" in stdout


class FirstDelivery:
    """Replay progress that notes when the first event has been delivered."""

    def __init__(self) -> None:
        self.phase_name = ""
        self.delivered = threading.Event()

    def phase(self, name: str, total: int | None) -> None:
        self.phase_name = name

    def advance(self, count: int = 1) -> None:
        if self.phase_name == "replaying" and count:
            self.delivered.set()


def test_delivery_starts_while_the_archive_is_still_being_read(s3_archive, receiver):
    """Deterministic: the read of the last key waits until a first event has been delivered.

    If delivery only began after every read, that wait would run out (a bound, not a timing
    assertion) and the test fails; no race between threads decides the outcome.
    """
    for i in range(200):
        put_payload(s3_archive, "stop-archive", payload(f"run-{i}", "RUNNING", T0 + timedelta(seconds=i)))
    last_key = max(o["Key"] for o in s3_archive.list_objects_v2(Bucket="stop-archive")["Contents"])
    clients = ClientFactory()
    progress = FirstDelivery()
    delivered_before_last_read: list[bool] = []
    reads: list[str] = []

    def before_read(request: Any, **_: object) -> None:
        # Every GET is sent past this event: botocore's get_object and replay's lean GET alike.
        key = unquote(urlsplit(request.url).path).lstrip("/")
        reads.append(key)
        if key == last_key:
            delivered_before_last_read.append(progress.delivered.wait(timeout=60))

    clients.client("s3").meta.events.register("before-send.s3.GetObject", before_read)
    options = ReplayOptions(since=iso(T0), until=iso(T0 + minutes(10)), bucket="stop-archive",
                            api_server=receiver.url)

    result = replay(plan_replay(options, clients, {"OMICS_EDP_API_TOKEN": API_TOKEN}), clients,
                    progress, policy=FAST)

    assert result.ok and len(result.outcomes) == len(reads) == 200
    assert delivered_before_last_read == [True]


def test_archive_readers_follow_the_delivery_concurrency():
    from omics_edp_cli.ops.replay.read import MAX_READ_THREADS, READ_THREADS, read_threads_for

    assert read_threads_for(1) == READ_THREADS  # never fewer than the old fixed pool
    assert read_threads_for(8) == 16  # two readers per delivery worker
    assert read_threads_for(100) == MAX_READ_THREADS  # no more than the S3 client's connections
