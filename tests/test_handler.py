"""The Lambda entry point as AWS calls it: configuration from the environment, token from
Secrets Manager, HealthOmics through a local HTTP fake, S3 and Secrets Manager in moto."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from conftest import API_TOKEN
from moto import mock_aws
from omics_helpers import BUCKET, WES_RUN_ID, archived_keys, sample_event

from omics_edp_cli.errors import ApiKeyRefused, DeliveryError
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted
from omics_edp_cli.omics import handler


@pytest.fixture
def receiver(running_receiver: CallbackReceiver) -> CallbackReceiver:
    return running_receiver

SECRET = "ngs360/omics-processor"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, receiver, fake_omics) -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=SECRET, SecretString=json.dumps({"AUTH_TOKEN": API_TOKEN})
        )
        monkeypatch.setenv("API_SERVER", receiver.url)
        monkeypatch.setenv("DATA_LAKE_BUCKET", BUCKET)
        monkeypatch.setenv("ENV_SECRETS", SECRET)
        monkeypatch.setenv("CALLBACK_MAX_RETRIES", "2")
        monkeypatch.setenv("CALLBACK_BACKOFF", "0.01")
        monkeypatch.setenv("CALLBACK_TIMEOUT", "2")
        handler.reset()
        yield s3
        handler.reset()


def test_handler_delivers_with_token_from_secrets_manager(lambda_env, receiver, fake_omics):
    result = handler.lambda_handler(sample_event("completed"), None)
    assert result["statusCode"] == 200 and result["outcome"] == "delivered"
    [request] = receiver.requests
    assert request.headers["x-internal-api-key"] == API_TOKEN
    assert request.body["wes_run_id"] == WES_RUN_ID
    assert len(request.body["log_urls"]["task_logs"]) == 3
    assert ("GetRun", "8567247") in fake_omics.calls
    assert len(archived_keys(lambda_env)) == 1


def test_handler_takes_the_token_from_auth_token_without_a_secret(lambda_env, receiver, monkeypatch):
    monkeypatch.delenv("ENV_SECRETS")
    monkeypatch.setenv("AUTH_TOKEN", API_TOKEN)  # the only place the key can come from now
    handler.reset()
    result = handler.lambda_handler(sample_event("running"), None)
    assert result["outcome"] == "delivered"
    [request] = receiver.requests
    assert request.headers["x-internal-api-key"] == API_TOKEN


def test_handler_returns_a_clear_error_for_an_invalid_event(lambda_env, receiver):
    result = handler.lambda_handler({"source": "aws.s3"}, None)
    assert result["statusCode"] == 400 and result["outcome"] == "invalid"
    assert "source is aws.s3, expected aws.omics" in result["reason"]
    assert archived_keys(lambda_env)[0].startswith("omics-run-events/rejected/")
    assert receiver.requests == []


def test_handler_raises_when_receiver_stays_down_so_lambda_retries(lambda_env, receiver):
    receiver.down = True
    with pytest.raises(DeliveryError):
        handler.lambda_handler(sample_event("running"), None)
    assert len(archived_keys(lambda_env)) == 1
    assert len(receiver.requests) == 3


def test_missing_configuration_fails_loudly(monkeypatch):
    monkeypatch.delenv("API_SERVER", raising=False)
    handler.reset()
    with pytest.raises(Exception, match="API_SERVER"):
        handler.lambda_handler(sample_event("running"), None)


def test_verbose_logging_never_shows_the_token(lambda_env, receiver, monkeypatch, caplog):
    monkeypatch.setenv("VERBOSE_LOGGING", "true")
    stream = io.StringIO()
    lambda_like = logging.StreamHandler(stream)  # what the Lambda runtime installs on root
    lambda_like.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(lambda_like)
    caplog.set_level(logging.DEBUG)
    try:
        handler.lambda_handler(sample_event("running"), None)
        # A receiver that echoes the key back in an error body must not leak it either.
        receiver.script(Scripted(403, body={"detail": f"bad key {API_TOKEN}"}))
        with pytest.raises(ApiKeyRefused) as refused:
            handler.lambda_handler(sample_event("completed"), None)
        receiver.down = True
        again = sample_event("stopping")
        with pytest.raises(DeliveryError) as failure:
            handler.lambda_handler(again, None)
    finally:
        root.removeHandler(lambda_like)
    logged = stream.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    assert "received event" in logged  # verbose really was on
    assert "HTTP 403" in logged
    assert API_TOKEN not in logged
    assert API_TOKEN not in str(failure.value) + str(refused.value)


@pytest.mark.parametrize(
    "module", ["omics_edp_cli.omics.handler", "omics_edp_cli.omics.processor"]
)
def test_lambda_modules_load_neither_typer_nor_rich(module):
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'typer', 'rich', 'click'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
