"""`omics-edp reconcile` and the scheduled reconcile Lambda end to end: S3 on a moto server over
HTTP, the HealthOmics fake, and the WES-rules receiver on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from conftest import API_TOKEN, fixture_json
from omics_helpers import FAST, WES_RUN_ID, sample_event
from replay.helpers import payload, put_payload
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.omics import reconcile_handler
from omics_edp_cli.omics.archive import ArchiveStore, refused_key
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.timefmt import iso_z, parse_time

runner = CliRunner()
PREFIX = "omics-run-events"
WINDOW = ["--since", "2026-01-22T00:00Z", "--until", "2026-01-23T00:00Z"]
OUTPUT_URI = "s3://example-omics-output/test_WES/8567247"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, moto_server: str, fake_omics, receiver) -> dict[str, Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("CALLBACK_BACKOFF", "0.01")
    monkeypatch.setenv("CALLBACK_MAX_RETRIES", "1")
    s3 = boto3.client("s3")
    bucket = f"reconcile-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket="example-omics-output")
    s3.put_object(Bucket="example-omics-output", Key="test_WES/8567247/logs/outputs.json",
                  Body=json.dumps(fixture_json("omics/outputs-8567247.json")).encode())
    return {"s3": s3, "bucket": bucket}


def cli(env: dict[str, Any], receiver, *args: str) -> Any:
    return runner.invoke(app, ["-o", "json", "reconcile", "--bucket", env["bucket"],
                               "--api-server", receiver.url, *WINDOW, *args])


def objects(env: dict[str, Any]) -> list[str]:
    listing = env["s3"].list_objects_v2(Bucket=env["bucket"])
    return sorted(o["Key"] for o in listing.get("Contents", []))


def process_live(env: dict[str, Any], receiver, event: dict[str, Any]) -> str:
    """What the deployed Lambda did with an event that did arrive."""
    clients = ClientFactory()
    processor = Processor(ArchiveStore(clients.client("s3"), env["bucket"], PREFIX),
                          clients.client("omics"), CallbackClient(receiver.url, API_TOKEN, FAST))
    return processor.process(event).outcome


def test_a_run_whose_running_and_completed_events_were_lost_ends_complete_with_outputs(
    env, receiver, fake_omics
):
    assert process_live(env, receiver, sample_event("pending")) == "delivered"
    assert receiver.states[WES_RUN_ID] == "QUEUED"
    before, posts_before = objects(env), len(receiver.requests)

    report = cli(env, receiver)  # report only: no write, no callback

    assert report.exit_code == 1, report.output
    data = json.loads(report.stdout)
    assert data["attention"] == ["8567247"]
    [run] = data["runs"]
    assert (run["detail"], run["sent"], run["to_send"]) == (
        "missing COMPLETED", ["PENDING"], ["RUNNING", "COMPLETED"])
    assert objects(env) == before and len(receiver.requests) == posts_before

    fixed = cli(env, receiver, "--fix")

    assert fixed.exit_code == 0, fixed.output
    sent = [r.body for r in receiver.requests[posts_before:]]
    assert [(b["status"], b["event_id"]) for b in sent] == [
        ("RUNNING", "reconcile-8567247-RUNNING"), ("COMPLETED", "reconcile-8567247-COMPLETED")]
    assert sent[0]["event_time"] == "2026-01-22T22:16:38Z"  # startTime
    assert sent[1]["event_time"] == "2026-01-22T22:25:40Z"  # stopTime
    assert receiver.states[WES_RUN_ID] == "COMPLETE"
    assert receiver.outputs[WES_RUN_ID]["copied_file"] == f"{OUTPUT_URI}/out/copied.txt"
    assert json.loads(fixed.stdout)["summary"]["posts"] == 2

    posts_after_fix = len(receiver.requests)
    again = cli(env, receiver, "--fix")

    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["summary"]["posts"] == 0
    assert len(receiver.requests) == posts_after_fix
    assert json.loads(again.stdout)["summary"]["in_sync"] == 1


def _put_refusal(env: dict[str, Any], body: dict[str, Any], status: int) -> None:
    key = refused_key(PREFIX, parse_time(body["event_time"]), body["event_id"])
    env["s3"].put_object(Bucket=env["bucket"], Key=key, Body=json.dumps(
        {"event_id": body["event_id"], "http_status": status, "payload": body}).encode())


def _run(run_id: str, status: str, tags: dict[str, str] | None = None, **times: str) -> dict[str, Any]:
    run = copy.deepcopy(fixture_json("omics/get-run-8567247.json"))
    run.update({"id": run_id, "status": status, "tags": tags or {},
                "arn": f"arn:aws:omics:us-east-1:123456789012:run/{run_id}", **times})
    return run


def test_report_names_refused_untagged_and_vanished_runs_and_lists_every_page(
    env, receiver, fake_omics
):
    t = datetime(2026, 1, 22, 12, tzinfo=UTC)
    stamps = {"creationTime": iso_z(t), "startTime": iso_z(t + timedelta(minutes=1))}
    fake_omics.runs.clear()
    for i in range(230):  # three ListRuns pages; all but four stopped long before the window
        fake_omics.add_run(_run(f"5{i:06d}", "COMPLETED", creationTime="2025-01-01T00:00:00Z",
                                startTime="2025-01-01T00:01:00Z", stopTime="2025-01-01T01:00:00Z"))
    fake_omics.add_run(_run("7000001", "RUNNING", **stamps))  # skipped live: no tag
    put_payload(env["s3"], env["bucket"], payload("7000001", "RUNNING", t, wes_run_id=None))
    refused_run = _run("7000002", "RUNNING", {"WESRunId": WES_RUN_ID}, **stamps)
    fake_omics.add_run(refused_run)
    body = payload("7000002", "RUNNING", t + timedelta(minutes=1), wes_run_id=WES_RUN_ID)
    put_payload(env["s3"], env["bucket"], body)
    _put_refusal(env, body, 400)
    fake_omics.add_run(_run("7000003", "STARTING", **stamps))  # never archived, no tag
    put_payload(env["s3"], env["bucket"], payload("7999999", "RUNNING", t + timedelta(hours=1)))
    fake_omics.add_run(_run("7000004", "RUNNING", {"WESRunId": WES_RUN_ID}, **stamps))
    put_payload(env["s3"], env["bucket"], payload("7000004", "RUNNING", t, wes_run_id=WES_RUN_ID))

    result = runner.invoke(app, ["-o", "json", "reconcile", "--bucket", env["bucket"], *WINDOW])

    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    details = {r["run_id"]: r["detail"] for r in data["runs"]}
    assert details == {"7000001": "no WESRunId tag", "7000002": "refused (400)",
                       "7000003": "no WESRunId tag", "7999999": "not found in HealthOmics"}
    assert sorted(data["attention"]) == ["7000002", "7999999"]
    summary = data["summary"]
    assert (summary["in_sync"], summary["runs_listed"], summary["list_runs_calls"]) == (1, 234, 3)
    assert summary["posts"] == 0 and receiver.requests == []


def test_table_output_names_the_runs_and_says_what_to_do(env, receiver, fake_omics):
    process_live(env, receiver, sample_event("pending"))
    result = runner.invoke(app, ["reconcile", "--bucket", env["bucket"], *WINDOW])
    assert result.exit_code == 1
    assert "8567247" in result.stdout and "missing COMPLETED" in result.stdout
    assert "run again with --fix" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "--since yesterday: expected ISO 8601"),
    (["--since", "1h", "--fix"], "--fix needs --api-server or --stack"),
    (["--since", "1h", "--concurrency", "0"], "--concurrency must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_aws_call(args, message, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail
    result = runner.invoke(app, ["reconcile", "--bucket", "b", *args])
    assert result.exit_code == 2
    assert f"Error: {message}" in result.stderr


def test_fix_without_a_token_is_refused_before_any_call(monkeypatch):
    monkeypatch.delenv("OMICS_EDP_API_TOKEN", raising=False)
    result = runner.invoke(app, ["reconcile", "--bucket", "b", "--api-server", "http://x",
                                 "--since", "1h", "--fix"])
    assert result.exit_code == 2 and "Error: no API token" in result.stderr


def test_fix_with_an_unsendable_token_is_refused_before_any_aws_call(monkeypatch):
    """The one token policy (issue 12) for reconcile too: named, never shown, exit 2, and the
    stack is not even read (a stack read would fail against port 9)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", 'short"key')
    result = runner.invoke(app, ["reconcile", "--stack", "prod-omics", "--since", "1h", "--fix"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: environment variable OMICS_EDP_API_TOKEN")
    assert 'short"key' not in result.output


def test_the_scheduled_lambda_fixes_and_leaves_its_result_for_doctor(
    env, receiver, fake_omics, monkeypatch
):
    now = datetime.now(UTC).replace(microsecond=0)
    run = fake_omics.runs["8567247"]
    run.update({"creationTime": iso_z(now - timedelta(hours=2)),
                "startTime": iso_z(now - timedelta(hours=2) + timedelta(minutes=1)),
                "stopTime": iso_z(now - timedelta(hours=1))})
    for name, value in {"API_SERVER": receiver.url, "DATA_LAKE_BUCKET": env["bucket"],
                        "AUTH_TOKEN": API_TOKEN, "RECONCILE_LOOKBACK_HOURS": "6",
                        "STACK_NAME": "test-stack"}.items():
        monkeypatch.setenv(name, value)

    document = reconcile_handler.lambda_handler({"source": "aws.events"}, None)

    assert document["ok"] is True and document["summary"]["fixed"] == 1
    assert receiver.states[WES_RUN_ID] == "COMPLETE"
    stored = json.loads(env["s3"].get_object(
        Bucket=env["bucket"], Key=f"{PREFIX}/reconcile/last.json")["Body"].read())
    assert stored["summary"]["posts"] == 2 and stored["ok"] is True
    again = reconcile_handler.lambda_handler({"source": "aws.events"}, None)
    assert again["summary"]["posts"] == 0 and again["summary"]["in_sync"] == 1
