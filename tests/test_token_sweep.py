"""The token sweep: every command and the Lambda handler, under every failure we can provoke,
with a distinctive token; its raw and escaped forms (repr, JSON, URL-encoded, base64) must
appear nowhere: stdout, stderr, logs, tracebacks (--verbose), JSON output, replay reports,
raised errors (the DLQ's ErrorMessage) and `dlq show`.

Coverage, commands by failure modes (each also with -o json and with --verbose):
  process, replay (+ --report), Lambda handler, by: connection refused, 401 echoing the key,
  422 echoing the header in every escaped form, 503 echoing it until retries run out, an echo
  across the 2,000-character cut, a token that is not a valid header value (exit 2, nothing sent);
  dlq show by a dead letter whose ErrorMessage holds the raw token (written before the fix).
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import free_port, sample_path
from moto import mock_aws
from omics_helpers import BUCKET, sample_event
from replay.dlq_shapes import async_invocation_dlq
from replay.helpers import T0, iso, minutes, payload, put_payload
from test_secrets import leaks
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app
from omics_edp_cli.errors import OmicsEdpError
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted
from omics_edp_cli.omics import handler

TOKEN = "tok-SWEEP-7c1f'x/y+z=q-0042"
COMPLETED = str(sample_path("completed"))
runner = CliRunner()
ECHO = {"detail": {
    "raw": TOKEN, "url": urllib.parse.quote(TOKEN, safe=""), "url_plus": urllib.parse.quote_plus(TOKEN),
    "repr": repr(TOKEN), "json": json.dumps(TOKEN), "b64": base64.b64encode(TOKEN.encode()).decode(),
    "header": f"X-Internal-API-Key: {TOKEN}",
}}


def failure(mode: str, receiver: CallbackReceiver) -> str:
    """Script `mode` on the receiver; the API server URL to use."""
    if mode == "refused":
        return f"http://127.0.0.1:{free_port()}"
    if mode == "401-echo":
        receiver.script(Scripted(401, body={"detail": f"invalid key {TOKEN}"}))
    elif mode == "422-echo-escaped":
        receiver.script(Scripted(422, body=ECHO))
    elif mode == "503-echo-until-exhausted":
        receiver.script(*[Scripted(503, body=ECHO)] * 10)
    elif mode == "echo-across-the-cut":
        receiver.script(Scripted(422, body={"detail": "x" * 1985 + TOKEN + "y" * 40}))
    return receiver.url


MODES = ["refused", "401-echo", "422-echo-escaped", "503-echo-until-exhausted", "echo-across-the-cut"]
VIEWS = [[], ["-o", "json"], ["-v"], ["-v", "-o", "json"]]


def assert_clean(*texts: str) -> None:
    """No escaped form of the token, and no 10 characters of it in a row (a cut-off echo)."""
    parts = {TOKEN[i:i + 10] for i in range(len(TOKEN) - 9)}
    for text in texts:
        assert leaks(text, TOKEN) == [], text[-3000:]
        assert not [p for p in parts if p in text], text[-3000:]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("OMICS_EDP_API_TOKEN", TOKEN)
        monkeypatch.setenv("CALLBACK_BACKOFF", "0.01")
        monkeypatch.setenv("CALLBACK_MAX_RETRIES", "2")
        monkeypatch.setenv("CALLBACK_TIMEOUT", "2")
        yield s3


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: " ".join(v) or "table")
@pytest.mark.parametrize("mode", MODES)
def test_process(aws, receiver, fake_omics, caplog, mode: str, view: list[str]):
    caplog.set_level(logging.DEBUG, logger="omics_edp_cli")
    url = failure(mode, receiver)
    result = runner.invoke(app, [*view, "process", COMPLETED, "--bucket", BUCKET, "--api-server", url])
    assert result.exit_code == 1, result.output
    assert_clean(result.stdout, result.stderr, caplog.text)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: " ".join(v) or "table")
@pytest.mark.parametrize("mode", MODES)
def test_replay_and_its_report(aws, receiver, caplog, tmp_path: Path, mode: str, view: list[str]):
    caplog.set_level(logging.DEBUG, logger="omics_edp_cli")
    put_payload(aws, BUCKET, payload("8567247", "COMPLETED", T0))
    url = failure(mode, receiver)
    report = tmp_path / "report.jsonl"
    result = runner.invoke(app, [*view, "replay", "--bucket", BUCKET, "--api-server", url,
                                 "--since", iso(T0 - minutes(1)), "--until", iso(T0 + minutes(1)),
                                 "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert report.read_text().strip()
    assert_clean(result.stdout, result.stderr, caplog.text, report.read_text())


@pytest.mark.parametrize("command", [
    ["process", COMPLETED, "--no-enrich", "--bucket", BUCKET, "--api-server", "http://127.0.0.1:9"],
    ["replay", "--bucket", BUCKET, "--api-server", "http://127.0.0.1:9", "--since", "2026-01-01T00:00:00Z"],
])
@pytest.mark.parametrize("view", [[], ["-v"]], ids=["plain", "verbose"])
@pytest.mark.parametrize("bad", [TOKEN + "\r\nX-Injected: 1", f'{TOKEN}"', TOKEN[:8]])
def test_a_token_that_cannot_be_sent_is_refused_with_exit_2_and_never_shown(
        aws, receiver, monkeypatch, caplog, command: list[str], bad: str, view: list[str]):
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", bad)
    result = runner.invoke(app, [*view, *command])
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: environment variable OMICS_EDP_API_TOKEN: the API token ")
    if not view:
        assert result.stderr.strip() == last  # one line
    assert receiver.requests == []
    assert_clean(result.stdout, result.stderr, caplog.text)
    assert TOKEN[:8] not in result.stderr


@pytest.fixture
def lambda_env(aws, monkeypatch) -> Iterator[Any]:
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="sweep", SecretString=json.dumps({"AUTH_TOKEN": TOKEN}))["ARN"]
    monkeypatch.delenv("OMICS_EDP_API_TOKEN")
    monkeypatch.setenv("DATA_LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("ENV_SECRETS", secret)
    handler.reset()
    yield aws
    handler.reset()


@pytest.mark.parametrize("mode", MODES)
def test_the_lambda_handler_logs_and_errors(lambda_env, receiver, fake_omics, caplog, monkeypatch, mode: str):
    caplog.set_level(logging.DEBUG, logger="omics_edp_cli")
    monkeypatch.setenv("VERBOSE_LOGGING", "true")
    monkeypatch.setenv("API_SERVER", failure(mode, receiver))
    try:
        result = handler.lambda_handler(sample_event("completed"), None)
        error = ""
    except OmicsEdpError as e:  # what Lambda records, and puts in the DLQ's ErrorMessage
        result, error = {}, f"{type(e).__name__}: {e}"
    # Lambda's own log handler carries the redacting filter; caplog sees records before it.
    filtered = [h for h in logging.getLogger().handlers if any(
        type(f).__name__ == "RedactingFilter" for f in h.filters)]
    assert filtered
    for record in caplog.records:
        for h in filtered:
            h.filter(record)
    assert_clean(json.dumps(result), error, "\n".join(r.getMessage() for r in caplog.records))


def test_the_lambda_refuses_a_secret_token_that_cannot_be_sent(lambda_env, receiver, monkeypatch):
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.put_secret_value(SecretId="sweep", SecretString=json.dumps({"AUTH_TOKEN": TOKEN + "\nX: 1"}))
    monkeypatch.setenv("API_SERVER", receiver.url)
    with pytest.raises(OmicsEdpError) as raised:
        handler.lambda_handler(sample_event("completed"), None)
    assert type(raised.value).__name__ == "ConfigError"  # configuration, not a transient failure
    assert "secret 'arn:aws:secretsmanager:" in str(raised.value)
    assert "not a valid HTTP header value" in str(raised.value)
    assert_clean(str(raised.value))
    assert receiver.requests == []


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: " ".join(v) or "table")
def test_dlq_show_masks_a_token_left_in_an_old_dead_letter(aws, view: list[str]):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="sweep-dlq")["QueueUrl"]
    event = json.loads(Path(COMPLETED).read_text())
    message = (f"Invalid header value b'{TOKEN}\\n' ({urllib.parse.quote(TOKEN, safe='')}, "
               f"{base64.b64encode(TOKEN.encode()).decode()})")
    sent = sqs.send_message(QueueUrl=url, **async_invocation_dlq(event, message))["MessageId"]
    for command in (["dlq", "list", "--queue-url", url], ["dlq", "show", sent, "--queue-url", url]):
        result = runner.invoke(app, [*view, *command])
        assert result.exit_code == 0, result.output
        assert "***" in result.stdout
        assert_clean(result.stdout, result.stderr)
