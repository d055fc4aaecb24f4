"""`omics-edp replay` end to end: archive in S3 on a moto server, a real callback receiver on 127.0.0.1."""

from __future__ import annotations

import io
import itertools
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import API_TOKEN, FIXTURES
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from replay.helpers import PREFIX, T0, iso, minutes, payload, put_payload, seed_key
from rich.console import Console
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.cli.progress import RichProgress
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted
from omics_edp_cli.omics.archive import archive_key
from omics_edp_cli.ops.replay.execute import replay
from omics_edp_cli.ops.replay.plan import ReplayOptions, plan_replay

runner = CliRunner()
STATUSES = ("PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED")


@dataclass
class Archive:
    s3: Any
    bucket: str

    def put(self, body: Any, key: str | None = None) -> str:
        return put_payload(self.s3, self.bucket, body, key)


@pytest.fixture
def archive(monkeypatch: pytest.MonkeyPatch, moto_server: str) -> Archive:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("CALLBACK_BACKOFF", "0.01")
    monkeypatch.setenv("CALLBACK_MAX_RETRIES", "3")
    s3 = boto3.client("s3")
    bucket = f"replay-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return Archive(s3, bucket)


def run(archive: Archive, receiver: CallbackReceiver, *args: str, output: str = "json") -> Any:
    return runner.invoke(app, ["-o", output, "replay", "--bucket", archive.bucket,
                               "--api-server", receiver.url, *args])


def window(start: datetime, end: datetime) -> list[str]:
    return ["--since", iso(start), "--until", iso(end)]


def posted(receiver: CallbackReceiver) -> list[dict[str, Any]]:
    return [r.body for r in receiver.requests]


def report_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_window_is_inclusive_at_both_ends_to_the_second(archive, receiver):
    since, until = T0, T0 + timedelta(hours=1)
    inside = [payload(f"in-{i}", "RUNNING", at)
              for i, at in enumerate((since, since + minutes(30), until))]
    outside = [payload("before", "RUNNING", since - timedelta(seconds=1)),
               payload("after", "RUNNING", until + timedelta(seconds=1))]
    for body in inside + outside:
        archive.put(body)
    # Neither rejected events nor other folders are archive payloads.
    archive.put(payload("rejected", "RUNNING", since + minutes(5)),
                key=f"{PREFIX}/rejected/20261123/rejected_{uuid.uuid4().hex}.json")
    archive.put(payload("elsewhere", "RUNNING", since + minutes(5)),
                key=f"other-prefix/event_20261123_010500_{uuid.uuid4()}.json")

    result = run(archive, receiver, *window(since, until))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"] == {"delivered": 3, "already_processed": 0, "skipped": 0, "refused": 0, "held": 0,
        "failed": 0}
    assert sorted(b["omics_run_id"] for b in receiver.accepted) == ["in-0", "in-1", "in-2"]
    assert data["window"] == "2026-11-23T01:00:00Z .. 2026-11-23T02:00:00Z"


def test_relative_since_and_until_defaulting_to_the_start_leave_out_live_writes(archive, receiver):
    now = datetime.now(UTC).replace(microsecond=0)
    archive.put(payload("too-old", "RUNNING", now - timedelta(hours=2)))
    archive.put(payload("recent", "RUNNING", now - minutes(30)))
    archive.put(payload("written-later", "RUNNING", now + timedelta(hours=1)))

    result = run(archive, receiver, "--since", "1h")

    assert result.exit_code == 0, result.output
    assert [b["omics_run_id"] for b in receiver.accepted] == ["recent"]


def test_one_runs_events_listed_out_of_order_arrive_in_event_time_order_at_concurrency_8(
    archive, receiver
):
    # Seed-style keys carry the processing time: here the COMPLETED event was archived first.
    target = [payload("target", status, T0 + minutes(i)) for i, status in enumerate(STATUSES)]
    for i, body in enumerate(target):
        archive.put(body, key=seed_key(T0 + minutes(20 - i)))
    for r in range(7):
        for i, status in enumerate(STATUSES):
            archive.put(payload(f"other-{r}", status, T0 + minutes(i)))

    result = run(archive, receiver, "--concurrency", "8", *window(T0, T0 + timedelta(hours=1)))

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["delivered"] == 40
    sequence = [b["omics_run_id"] for b in posted(receiver)]
    assert [b["status"] for b in posted(receiver) if b["omics_run_id"] == "target"] == list(STATUSES)
    for r in range(7):
        assert [b["status"] for b in posted(receiver) if b["omics_run_id"] == f"other-{r}"] == list(STATUSES)
    # Runs went concurrently: the arrivals interleave instead of coming run by run.
    switches = sum(1 for a, b in itertools.pairwise(sequence) if a != b)
    assert switches > 7


def test_this_projects_keys_of_one_second_are_ordered_by_status_progress(archive, receiver):
    # EventBridge times have one-second resolution: five events of one run can share a second,
    # and their deterministic keys then sort by a hash, not by progress.
    for status in reversed(STATUSES):
        archive.put(payload("fast", status, T0))

    result = run(archive, receiver, *window(T0, T0 + minutes(1)))

    assert result.exit_code == 0, result.output
    assert [b["status"] for b in receiver.accepted] == list(STATUSES)


def test_a_seed_object_archived_late_still_goes_before_later_events_of_its_run(archive, receiver):
    # The seed Lambda stamped keys with the time it ran: this RUNNING event was archived 20
    # minutes late, after the run's COMPLETED event (a key of this project, stamped with event time).
    archive.put(payload("late", "RUNNING", T0), key=seed_key(T0 + minutes(20)))
    archive.put(payload("late", "COMPLETED", T0 + minutes(5)))
    for i in range(30):
        archive.put(payload(f"filler-{i}", "RUNNING", T0 + timedelta(seconds=i)))

    result = run(archive, receiver, *window(T0, T0 + minutes(30)))

    assert result.exit_code == 0, result.output
    assert [b["status"] for b in receiver.accepted if b["omics_run_id"] == "late"] == [
        "RUNNING", "COMPLETED"]


def test_429_with_retry_after_and_500s_are_retried(archive, receiver, tmp_path):
    archive.put(payload("retried", "RUNNING", T0))
    receiver.script(Scripted(429, headers={"Retry-After": "1"}), 500, 500)
    report = tmp_path / "report.jsonl"

    result = run(archive, receiver, "--report", str(report), *window(T0, T0 + minutes(1)))

    assert result.exit_code == 0, result.output
    assert len(receiver.requests) == 4
    assert receiver.requests[1].at - receiver.requests[0].at >= 0.9  # Retry-After honoured
    (line,) = report_lines(report)
    assert line["outcome"] == "delivered"
    assert (line["http_status"], line["attempts"]) == (200, 4)


def test_400_is_not_retried_and_is_reported_with_exit_1(archive, receiver, tmp_path):
    key = archive.put(payload("illegal", "RUNNING", T0))
    receiver.script(Scripted(400, body={"detail": "Invalid transition COMPLETED -> RUNNING"}))
    report = tmp_path / "report.jsonl"

    result = run(archive, receiver, "--report", str(report), *window(T0, T0 + minutes(1)),
                 output="table")

    assert result.exit_code == 1
    assert len(receiver.requests) == 1
    assert "│ refused           │ 1      │" in result.stdout
    assert "│ rejected │ illegal" in result.stdout
    assert "│ 400 (1 tries) │" in result.stdout and "HTTP 400: {\"detail\": \"Invalid" in result.stdout
    (line,) = report_lines(report)
    assert (line["key"], line["outcome"], line["http_status"]) == (key, "rejected", 400)
    assert "Invalid transition COMPLETED -> RUNNING" in line["error"]


def test_a_run_whose_event_keeps_failing_holds_back_its_later_events(archive, receiver, tmp_path):
    for i, status in enumerate(("RUNNING", "STOPPING", "COMPLETED")):
        archive.put(payload("flaky", status, T0 + minutes(i)))
    receiver.script(503, 503, 503, 503)  # the retry budget: 1 try + 3 retries
    report = tmp_path / "report.jsonl"

    result = run(archive, receiver, "--report", str(report), *window(T0, T0 + minutes(5)))

    assert result.exit_code == 1
    assert len(receiver.requests) == 4
    assert {r.body["status"] for r in receiver.requests} == {"RUNNING"}
    outcomes = [(line["status"], line["outcome"], line["attempts"]) for line in report_lines(report)]
    assert outcomes == [("RUNNING", "failed", 4), ("STOPPING", "held", 0), ("COMPLETED", "held", 0)]
    summary = json.loads(result.stdout)["summary"]
    assert (summary["failed"], summary["held"], summary["refused"]) == (1, 2, 0)


def test_resume_sends_nothing_twice(archive, receiver, tmp_path):
    for run_id in ("a", "b", "c"):
        for i, status in enumerate(("RUNNING", "COMPLETED")):
            archive.put(payload(run_id, status, T0 + minutes(i)))
    report = tmp_path / "report.jsonl"
    receiver.script(503, 503, 503, 503)  # the first run's first event fails, its second is held
    args = ["--concurrency", "1", "--report", str(report), *window(T0, T0 + minutes(5))]

    first = run(archive, receiver, *args)
    assert first.exit_code == 1
    delivered_first = {line["key"] for line in report_lines(report) if line["outcome"] == "delivered"}
    assert len(delivered_first) == 4
    sent_before = len(receiver.requests)

    second = run(archive, receiver, "--resume", str(report), *args)

    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["summary"] == {
        "delivered": 2, "already_processed": 0, "skipped": 0, "refused": 0, "held": 0,
        "failed": 0, "already_delivered_before": 4,
    }
    resent = [r.body for r in receiver.requests[sent_before:]]
    assert [(b["omics_run_id"], b["status"]) for b in resent] == [("a", "RUNNING"), ("a", "COMPLETED")]
    # 4 answers of 503 for a's RUNNING, then each of the six events exactly once.
    assert len(receiver.requests) == 4 + 6
    event_ids = [b["event_id"] for b in receiver.accepted]
    assert len(event_ids) == len(set(event_ids)) == 6
    # --report == --resume: the report grows, and now shows all six delivered.
    assert sum(1 for line in report_lines(report) if line["outcome"] == "delivered") == 6


def test_replaying_a_window_again_without_resume_reports_every_event_already_processed(
    archive, receiver, tmp_path
):
    for run_id in ("a", "b", "c"):
        for i, status in enumerate(("RUNNING", "COMPLETED")):
            archive.put(payload(run_id, status, T0 + minutes(i)))
    args = window(T0, T0 + minutes(5))

    first = run(archive, receiver, *args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["summary"] == {
        "delivered": 6, "already_processed": 0, "skipped": 0, "refused": 0, "held": 0,
        "failed": 0}

    report = tmp_path / "again.jsonl"
    second = run(archive, receiver, "--report", str(report), *args)

    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["summary"] == {
        "delivered": 0, "already_processed": 6, "skipped": 0, "refused": 0, "held": 0,
        "failed": 0}
    # Sent again (no --resume): the receiver recognised each event_id and changed nothing.
    assert len(receiver.requests) == 12 and len(receiver.accepted) == 6
    assert [(line["outcome"], line["http_status"]) for line in report_lines(report)] == [
        ("already_processed", 200)] * 6


class StillClock:
    """The rate limiter's clock and sleep: time stands still and no wait really sleeps, so each
    wait the limiter asks for is exactly how far its slot lies behind the first one."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self) -> float:
        return 1000.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))


@pytest.mark.parametrize("rate", [4.0, 0.0])
def test_rate_spaces_every_delivery_on_one_schedule_shared_by_all_runs(archive, receiver, rate):
    for r in range(4):
        for i, status in enumerate(("RUNNING", "STOPPING", "COMPLETED")):
            archive.put(payload(f"rated-{r}", status, T0 + minutes(i)))
    clients = ClientFactory()
    options = ReplayOptions(since=iso(T0), until=iso(T0 + minutes(5)), bucket=archive.bucket,
                            api_server=receiver.url, concurrency=4, rate=rate)
    plan = plan_replay(options, clients)
    clock = StillClock()

    result = replay(plan, clients, clock=clock, sleep=clock.sleep)

    assert result.ok and result.summary()["delivered"] == 12 and len(receiver.requests) == 12
    if rate:
        # One slot per delivery, 1/rate apart, whichever of the four workers took it: the first
        # goes at once, the others wait 0.25 s, 0.5 s, ... (a limiter per worker would repeat waits).
        assert clock.waits and sorted(clock.waits) == [0.25 * k for k in range(1, 12)]
    else:
        assert clock.waits == []  # --rate 0: no limit


def test_a_one_hour_window_of_a_large_archive_on_the_server_costs_few_list_calls(archive, receiver):
    # Four days of archive, one event a minute; only the hour from T0 is replayed.
    start = T0 - timedelta(days=2)
    bodies = [payload(f"bulk-{i}", "RUNNING", start + minutes(i)) for i in range(4 * 24 * 60)]
    # Written straight into the moto server's store (its S3 backend, in this process): 5,760
    # PutObject calls over HTTP would take most of a minute. Listing and reading go over HTTP.
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for body in bodies:
        key = archive_key(PREFIX, datetime.fromisoformat(body["event_time"]), body["event_id"])
        backend.put_object(archive.bucket, key, json.dumps(body).encode())
    in_window = [b for b in bodies if T0 <= datetime.fromisoformat(b["event_time"]) < T0 + timedelta(hours=1)]
    full_listing = sum(1 for _ in archive.s3.get_paginator("list_objects_v2").paginate(
        Bucket=archive.bucket, Prefix=f"{PREFIX}/", PaginationConfig={"PageSize": 1000}))

    result = run(archive, receiver, "--dry-run", "--since", iso(T0),
                 "--until", iso(T0 + timedelta(minutes=59, seconds=59)))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(in_window) == 60 and data["listed"] == data["would_send"] == 60
    assert data["first_key"].startswith(f"{PREFIX}/event_20261123_010000_")
    assert data["last_key"].startswith(f"{PREFIX}/event_20261123_015900_")
    assert full_listing == math.ceil(len(bodies) / 1000) == 6
    assert data["list_calls"] <= math.ceil(len(in_window) / 1000) + 1  # 1 here (2 at most)
    assert data["list_calls"] * 3 <= full_listing
    assert receiver.requests == []


def test_objects_that_are_not_json_or_not_payloads_are_reported_and_the_rest_delivered(
    archive, receiver
):
    good = [archive.put(payload(f"ok-{i}", "RUNNING", T0 + minutes(i))) for i in range(3)]
    at = "20261123_010100"
    bad_json = archive.put(b"{not json", key=f"{PREFIX}/event_{at}_{uuid.uuid4()}.json")
    a_list = archive.put(b"[1, 2]", key=f"{PREFIX}/event_{at}_{uuid.uuid4()}.json")
    no_fields = archive.put({"hello": "world"}, key=f"{PREFIX}/event_{at}_{uuid.uuid4()}.json")
    no_wes = archive.put(payload("untagged", "RUNNING", T0, wes_run_id=None))

    result = run(archive, receiver, *window(T0, T0 + minutes(5)))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"] == {"delivered": 3, "already_processed": 0, "skipped": 4, "refused": 0, "held": 0,
        "failed": 0}
    problems = {p["key"]: p for p in data["problems"]}
    assert set(problems) == {bad_json, a_list, no_fields}
    assert problems[bad_json]["error"].startswith("not JSON: ")
    assert problems[a_list]["error"] == "not a callback payload: a JSON list, expected an object"
    assert problems[no_fields]["error"] == "not a callback payload: no omics_run_id, status, event_time"
    assert {p["outcome"] for p in problems.values()} == {"invalid"}
    assert no_wes not in problems and len(receiver.accepted) == len(good)


def test_the_seed_lambdas_archive_samples_replay(archive, receiver):
    samples = sorted((FIXTURES / "archive").glob("event_*.json"))
    for sample in samples:
        archive.s3.put_object(Bucket=archive.bucket, Key=f"{PREFIX}/{sample.name}",
                              Body=sample.read_bytes())

    result = run(archive, receiver, "--since", "2026-01-22T22:00Z", "--until", "2026-01-22T23:00Z")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["delivered"] == 2
    expected = sorted((json.loads(s.read_text()) for s in samples), key=lambda b: b["event_time"])
    assert receiver.accepted == expected  # RUNNING then COMPLETED, exactly as archived


def test_dry_run_shows_count_keys_and_statuses_and_sends_nothing(archive, receiver, tmp_path):
    keys = [archive.put(payload(f"r{i}", status, T0 + minutes(i)))
            for i, status in enumerate(("RUNNING", "COMPLETED", "COMPLETED", "FAILED"))]
    archive.put(payload("untagged", "RUNNING", T0 + minutes(1), wes_run_id=None))
    report = tmp_path / "report.jsonl"

    result = run(archive, receiver, "--dry-run", "--report", str(report),
                 *window(T0, T0 + minutes(10)))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["would_send"] == 4 and data["would_skip"] == 1
    assert (data["first_key"], data["last_key"]) == (keys[0], keys[-1])
    assert data["by_status"] == {"COMPLETED": 2, "FAILED": 1, "RUNNING": 1}
    assert receiver.requests == [] and not report.exists()


def test_filters_by_status_run_id_and_wes_run_id(archive, receiver):
    for run_id in ("r1", "r2", "r3"):
        for i, status in enumerate(("RUNNING", "COMPLETED")):
            archive.put(payload(run_id, status, T0 + minutes(i)))
    wes_r3 = payload("r3", "RUNNING", T0)["wes_run_id"]
    for run_id in ("r1", "r2"):  # their RUNNING reached the receiver earlier (WES: QUEUED ↛ COMPLETE)
        receiver.states[payload(run_id, "RUNNING", T0)["wes_run_id"]] = "RUNNING"

    result = run(archive, receiver, "--status", "completed", "--run-id", "r1,r2",
                 *window(T0, T0 + minutes(5)))
    assert result.exit_code == 0, result.output
    assert sorted((b["omics_run_id"], b["status"]) for b in receiver.accepted) == [
        ("r1", "COMPLETED"), ("r2", "COMPLETED")]
    assert json.loads(result.stdout)["summary"]["filtered_out"] == 4

    result = run(archive, receiver, "--wes-run-id", wes_r3, *window(T0, T0 + minutes(5)))
    assert result.exit_code == 0, result.output
    assert [b["omics_run_id"] for b in receiver.accepted[2:]] == ["r3", "r3"]


def test_stack_supplies_bucket_prefix_api_server_and_token_which_is_never_printed(
    archive, monkeypatch, tmp_path
):
    monkeypatch.delenv("OMICS_EDP_API_TOKEN")
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"replay-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"AUTH_TOKEN": API_TOKEN}))["ARN"]
    archive.put(payload("from-stack", "RUNNING", T0), key=None)
    with CallbackReceiver(token=API_TOKEN) as receiver:
        stack = processor_stack(archive.bucket, PREFIX, receiver.url, secret_arn)
        report = tmp_path / "report.jsonl"
        result = runner.invoke(app, ["-o", "json", "-v", "replay", "--stack", stack,
                                     "--report", str(report), *window(T0, T0 + minutes(1))])
        assert result.exit_code == 0, result.output
        assert [b["omics_run_id"] for b in receiver.accepted] == ["from-stack"]
        assert receiver.requests[0].headers["x-internal-api-key"] == API_TOKEN
    assert API_TOKEN not in result.stdout + result.stderr + report.read_text()


def processor_stack(bucket: str, prefix: str, api_server: str, secret_arn: str) -> str:
    """A stand-in for the processor stack: the parameters and outputs `replay` reads."""
    template = {
        "Parameters": {name: {"Type": "String"} for name in
                       ("DataLakeBucket", "BucketPrefix", "ApiServer", "SecretArn")},
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ApiSecretArn": {"Value": {"Ref": "SecretArn"}}},
    }
    name = f"replay-proc-{uuid.uuid4().hex[:8]}"
    values = {"DataLakeBucket": bucket, "BucketPrefix": prefix, "ApiServer": api_server,
              "SecretArn": secret_arn}
    boto3.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()])
    return name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday", "--bucket", "b", "--api-server", "http://x"],
         "Error: --since yesterday: expected ISO 8601 (2026-11-23T00:55Z) or an age like 90m, 6h, 3d"),
        (["--since", "2026-11-23T02:00Z", "--until", "2026-11-23T01:00Z", "--bucket", "b"],
         "Error: --since (2026-11-23T02:00:00Z) is after --until (2026-11-23T01:00:00Z)"),
        (["--since", "1h", "--api-server", "http://x"],
         "Error: --bucket or --stack required (or DATA_LAKE_BUCKET)"),
        (["--since", "1h", "--bucket", "b"],
         "Error: --api-server or --stack required (or API_SERVER), or use --dry-run"),
        (["--since", "1h", "--bucket", "b", "--api-server", "http://x"],
         "Error: no API token: set OMICS_EDP_API_TOKEN, or use --stack to read the stack's secret"),
        (["--since", "1h", "--bucket", "b", "--dry-run", "--concurrency", "0"],
         "Error: --concurrency must be at least 1"),
        (["--since", "1h", "--bucket", "b", "--dry-run", "--resume", "/no/such/report.jsonl"],
         "Error: --resume /no/such/report.jsonl: file not found"),
    ],
)
def test_usage_errors_exit_2_with_one_line_before_any_aws_call(args, message):
    result = runner.invoke(app, ["replay", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_a_refused_api_key_stops_the_replay_after_the_first_refusal(archive, tmp_path):
    for run_id in ("a", "b", "c"):
        for i, status in enumerate(("RUNNING", "COMPLETED")):
            archive.put(payload(run_id, status, T0 + minutes(i)))
    report = tmp_path / "report.jsonl"
    with CallbackReceiver(token="the-rotated-key") as rotated:
        result = run(archive, rotated, "--concurrency", "1", "--report", str(report),
                     *window(T0, T0 + minutes(5)))
        assert len(rotated.requests) == 1  # not hammered: one refusal, then nothing

    assert result.exit_code == 1
    assert ("the receiver refused the API key: check OMICS_EDP_API_TOKEN / the stack's secret"
            in " ".join(result.stderr.split()))
    assert "5 event(s) not sent" in " ".join(result.stderr.split())
    summary = json.loads(result.stdout)["summary"]
    assert (summary["refused"], summary["held"], summary["failed"], summary["not_sent"]) == (1, 0, 0, 5)
    [line] = report_lines(report)
    assert (line["outcome"], line["http_status"]) == ("rejected", 403)
    assert API_TOKEN not in result.stdout + result.stderr + report.read_text()


@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry-run"])
def test_an_empty_window_says_so_in_words(archive, receiver, dry_run):
    """Rough edge 9: an empty window printed a table of zeros and 0/0 progress bars."""
    archive.put(payload("later", "RUNNING", T0 + timedelta(days=2)))
    result = run(archive, receiver, *window(T0, T0 + timedelta(hours=1)),
                 *(["--dry-run"] if dry_run else []), output="table")
    assert result.exit_code == 0, result.output
    assert (f"no archived events between {iso(T0)} and {iso(T0 + timedelta(hours=1))} "
            f"in s3://{archive.bucket}/omics-run-events/") in result.stderr
    assert "0/0" not in result.stderr and result.stdout == ""
    assert receiver.requests == []
    # Scripts still get the usual JSON shape.
    data = json.loads(run(archive, receiver, *window(T0, T0 + timedelta(hours=1))).stdout)
    assert data["summary"]["delivered"] == 0


def test_progress_draws_no_bar_for_a_phase_with_nothing_to_do():
    out = io.StringIO()
    with RichProgress(Console(file=out, width=100, force_terminal=False)) as progress:
        progress.phase("listing", None)
        progress.phase("replaying", 0)
        progress.advance(0)
    assert "0/0" not in out.getvalue() and "listing" not in out.getvalue()
    out = io.StringIO()
    with RichProgress(Console(file=out, width=100, force_terminal=False)) as progress:
        progress.phase("replaying", 3)
        progress.advance(3)
    assert "3/3" in out.getvalue()
