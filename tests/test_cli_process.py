"""`omics-edp process` through the CLI runner: exit codes, the line a user reads, the JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from conftest import API_TOKEN, FIXTURES, sample_path
from moto import mock_aws
from omics_helpers import BUCKET, archived_keys
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted


@pytest.fixture
def receiver(running_receiver: CallbackReceiver) -> CallbackReceiver:
    return running_receiver

runner = CliRunner()
COMPLETED = str(sample_path("completed"))


def test_dry_run_on_a_shipped_sample_prints_payload_and_key_as_json():
    result = runner.invoke(app, ["-o", "json", "process", "--sample", "completed", "--dry-run",
                                 "--no-enrich"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "planned"
    assert "/omics-run-events/event_20260122_222545_" in data["archive_uri"]
    assert data["payload"]["omics_run_id"] == "8567247"
    assert data["reason"] == "would be skipped: no WESRunId tag on the run"


def test_dry_run_table_output_shows_key_and_payload():
    result = runner.invoke(app, ["process", COMPLETED, "--dry-run", "--no-enrich"])
    assert result.exit_code == 0, result.output
    assert "dry run: nothing written or sent" in result.stdout
    assert '"event_id": "5a3f1bc7-af4c-33fe-91ba-a4b27b06b9a7"' in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["process", "/no/such/event.json"], "Error: /no/such/event.json: file not found"),
        (["process", "--sample", "exploded"], "Error: no sample event 'exploded'; choose one of:"),
        (["process"], "Error: give an EVENT.json file or --sample NAME (one of them)"),
        (["process", COMPLETED],
         "Error: --bucket (or DATA_LAKE_BUCKET) and --api-server (or API_SERVER) required, or --stack NAME"),
        # Only what is missing is named (it used to say "--api-server required (or DATA_LAKE_BUCKET ...").
        (["process", COMPLETED, "--bucket", "b"],
         "Error: --api-server (or API_SERVER) required, or --stack NAME, or use --dry-run"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_not_json_exits_2(tmp_path: Path):
    bad = tmp_path / "event.json"
    bad.write_text("{oops")
    result = runner.invoke(app, ["process", str(bad), "--dry-run"])
    assert result.exit_code == 2
    assert "not valid JSON (line 1, column 2" in result.stderr


def test_not_a_healthomics_event_exits_2(tmp_path: Path):
    event = tmp_path / "s3.json"
    event.write_text((FIXTURES / "s3/object-created.json").read_text())
    result = runner.invoke(app, ["process", str(event), "--dry-run"])
    assert result.exit_code == 2
    assert "not a HealthOmics run status event: source is aws.s3, expected aws.omics" in result.stderr


@pytest.fixture
def live(monkeypatch, receiver, fake_omics):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
        monkeypatch.setenv("CALLBACK_BACKOFF", "0.01")
        monkeypatch.setenv("CALLBACK_MAX_RETRIES", "2")
        yield s3


def test_process_archives_and_delivers(live, receiver):
    result = runner.invoke(app, ["-o", "json", "process", COMPLETED, "--bucket", BUCKET,
                                 "--api-server", receiver.url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "delivered" and data["http_status"] == 200
    assert [r.body for r in receiver.requests] == [data["payload"]]
    assert len(archived_keys(live)) == 1
    assert API_TOKEN not in result.output


def test_process_refused_by_receiver_exits_1(live, receiver):
    receiver.script(Scripted(400, body={"detail": "Invalid state transition: COMPLETE -> RUNNING"}))
    result = runner.invoke(app, ["process", COMPLETED, "--bucket", BUCKET,
                                 "--api-server", receiver.url])
    assert result.exit_code == 1
    assert "Invalid state transition" in result.stdout


def test_process_with_receiver_down_exits_1_with_one_line(live, closed_url):
    result = runner.invoke(app, ["process", COMPLETED, "--bucket", BUCKET,
                                 "--api-server", closed_url])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: callback to {closed_url}")
    assert "failed after 3 attempts" in errors[0]
    assert len(archived_keys(live)) == 1


def test_process_missing_bucket_is_an_operation_failure(live, receiver):
    result = runner.invoke(app, ["process", COMPLETED, "--bucket", "not-created-bucket",
                                 "--api-server", receiver.url])
    assert result.exit_code == 1
    assert "writing s3://not-created-bucket/" in result.stderr
    assert receiver.requests == []


def test_receiver_down_shows_each_retry_and_ends_with_how_to_replay(live, closed_url, receiver):
    """Rough edge 8a: it was silent while retrying and did not say the event was kept."""
    result = runner.invoke(app, ["process", COMPLETED, "--bucket", BUCKET, "--api-server", closed_url])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "callback attempt 1 of 3 failed ([Errno 111] Connection refused); trying again"
    assert lines[1] == "callback attempt 2 of 3 failed ([Errno 111] Connection refused); trying again"
    [key] = archived_keys(live)
    last = lines[-1]
    assert len(lines) == 3 and last.startswith(f"Error: callback to {closed_url}")
    assert f"the event is archived at s3://{BUCKET}/{key}" in last
    replay = last.split("send it again once the receiver answers with: ")[1]
    assert replay == (f"omics-edp replay --bucket {BUCKET} --api-server {closed_url} "
                      "--since 2026-01-22T22:25:45Z --until 2026-01-22T22:25:45Z --run-id 8567247")
    # The command does what it says, once the receiver is back (here: at another address).
    args = replay.replace(closed_url, receiver.url).split()[1:]
    replayed = runner.invoke(app, ["-o", "json", *args])
    assert replayed.exit_code == 0, replayed.output
    assert [r.body["event_id"] for r in receiver.requests] == ["5a3f1bc7-af4c-33fe-91ba-a4b27b06b9a7"]


@pytest.fixture
def html_endpoint() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers everything with an HTML 502 page (a proxy's)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_error(502, "Bad Gateway")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_healthomics_html_page_is_one_line_once_without_html(monkeypatch, html_endpoint):
    """Rough edge 8b: a failing HealthOmics printed its HTML error page, twice. Since GetRun
    failing fails the event (issue 11: nothing lost), it is now one `Error:` line, once."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_OMICS", html_endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with mock_aws():
        result = runner.invoke(app, ["process", "--sample", "completed", "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "<" not in result.stderr and "DOCTYPE" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: GetRun 8567247 failed: an HTML page, not the HealthOmics API: check "
        "AWS_ENDPOINT_URL_OMICS, a proxy, or the region"]
