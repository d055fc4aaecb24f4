"""The processor fails loudly or delivers: the Lambda entry point with moto (S3, Secrets Manager),
the HealthOmics fake over HTTP (told to fail) and the WES-rules receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from conftest import API_TOKEN
from moto import mock_aws
from omics_helpers import BUCKET, PREFIX, WES_RUN_ID, archived_keys, sample_event

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ApiKeyRefused, EnrichmentError
from omics_edp_cli.local.fake_omics import FakeOmics
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted
from omics_edp_cli.omics import handler

SECRET = "ngs360/omics-processor-nothing-lost"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, receiver, fake_omics) -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=SECRET, SecretString=json.dumps({"AUTH_TOKEN": API_TOKEN}))
        for name, value in {"API_SERVER": receiver.url, "DATA_LAKE_BUCKET": BUCKET,
                            "ENV_SECRETS": SECRET, "CALLBACK_MAX_RETRIES": "1",
                            "CALLBACK_BACKOFF": "0.01", "CALLBACK_TIMEOUT": "2",
                            "STACK_NAME": "test-stack"}.items():
            monkeypatch.setenv(name, value)
        handler.reset()
        # botocore's own retries (standard mode: 5 attempts, seconds of backoff) cut to one
        # retry, so a HealthOmics that keeps failing fails the invocation quickly.
        omics = boto3.client("omics", endpoint_url=fake_omics.url, region_name="us-east-1",
                             config=Config(retries={"mode": "standard", "max_attempts": 2},
                                           inject_host_prefix=False))
        handler.warm(ClientFactory(overrides={"omics": omics}))
        yield s3
        handler.reset()


def read(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def payload_keys(s3: Any) -> list[str]:
    return [k for k in archived_keys(s3) if "/refused/" not in k]


def refusal_keys(s3: Any) -> list[str]:
    return [k for k in archived_keys(s3) if k.startswith(f"{PREFIX}/refused/")]


def emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_get_run_500_fails_the_invocation_keeps_the_archive_and_the_retry_delivers(
    lambda_env, receiver, fake_omics, capsys
):
    event = sample_event("pending")
    assert handler.lambda_handler(event, None)["outcome"] == "delivered"
    [key] = payload_keys(lambda_env)
    good = read(lambda_env, key)
    assert good["wes_run_id"] == WES_RUN_ID

    fake_omics.fail("GetRun", 500, times=None)  # every attempt botocore makes
    with pytest.raises(EnrichmentError, match="GetRun 8567247 failed"):
        handler.lambda_handler(event, None)  # the same event, re-processed during the blip
    assert read(lambda_env, key) == good  # the archive was not made worse
    assert len(receiver.requests) == 1

    fake_omics.heal()
    running = sample_event("running")
    fake_omics.fail("GetRun", 500, times=None)
    with pytest.raises(EnrichmentError):
        handler.lambda_handler(running, None)
    assert len(payload_keys(lambda_env)) == 1  # nothing archived without its tags
    fake_omics.heal()
    assert handler.lambda_handler(running, None)["outcome"] == "delivered"  # Lambda's retry
    assert receiver.states[WES_RUN_ID] == "RUNNING"
    metrics = [m["outcome"] for m in emf_lines(capsys.readouterr().out)]
    assert metrics == ["delivered", "failed", "failed", "delivered"]


def test_an_html_page_instead_of_healthomics_is_named_as_such(lambda_env, receiver, fake_omics):
    fake_omics.fail("GetRun", 502, html=True, times=None)
    with pytest.raises(EnrichmentError, match="HTML page, not the HealthOmics API"):
        handler.lambda_handler(sample_event("running"), None)
    assert archived_keys(lambda_env) == [] and receiver.requests == []


def test_list_run_tasks_failing_is_a_named_gap_in_the_archive_never_sent(
    lambda_env, receiver, fake_omics
):
    receiver.states[WES_RUN_ID] = "RUNNING"
    fake_omics.fail("ListRunTasks", 500, times=None)
    assert handler.lambda_handler(sample_event("completed"), None)["outcome"] == "delivered"
    [key] = payload_keys(lambda_env)
    assert read(lambda_env, key)["enrichment_gaps"] == ["task_logs"]
    assert "enrichment_gaps" not in receiver.requests[0].body

    fake_omics.heal()  # re-processed without the gap: the better record replaces it
    handler.lambda_handler(sample_event("completed"), None)
    assert "enrichment_gaps" not in read(lambda_env, key)
    assert len(read(lambda_env, key)["log_urls"]["task_logs"]) == 3


def test_a_record_with_a_wes_run_id_is_never_overwritten_by_one_without(
    lambda_env, receiver, fake_omics
):
    event = sample_event("pending")
    handler.lambda_handler(event, None)
    [key] = payload_keys(lambda_env)
    fake_omics.runs["8567247"]["tags"] = {}  # the tag is gone (or was never readable)
    handler.lambda_handler(event, None)
    assert read(lambda_env, key)["wes_run_id"] == WES_RUN_ID


def test_403_fails_the_invocation_in_one_line_without_the_key(lambda_env, receiver, capsys):
    receiver.script(Scripted(403, body={"detail": f"invalid key {API_TOKEN}"}))
    with pytest.raises(ApiKeyRefused) as refused:
        handler.lambda_handler(sample_event("pending"), None)
    assert str(refused.value).startswith("the receiver refused the API key (HTTP 403")
    assert API_TOKEN not in str(refused.value)
    assert refusal_keys(lambda_env) == []  # not a refusal of the payload: it waits in the DLQ
    assert [m["Failed"] for m in emf_lines(capsys.readouterr().out)] == [1]


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_permanent_refusal_keeps_a_record_and_counts_a_metric(
    lambda_env, receiver, capsys, status
):
    receiver.script(Scripted(status, body={"detail": f"no: {API_TOKEN}"}))
    result = handler.lambda_handler(sample_event("pending"), None)
    assert result["outcome"] == "refused" and result["statusCode"] == 400
    [key] = refusal_keys(lambda_env)
    record = read(lambda_env, key)
    assert record["http_status"] == status
    assert record["payload"]["status"] == "PENDING" and record["payload"]["wes_run_id"] == WES_RUN_ID
    assert record["receiver_answer"] == '{"detail": "no: ***"}'
    assert record["refused_at"].endswith("Z")
    [line] = emf_lines(capsys.readouterr().out)
    assert line["Refused"] == 1 and line["Stack"] == "test-stack"
    assert line["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "Refused", "Unit": "Count"}]


def test_a_foreign_callback_url_tag_is_refused_and_gets_nothing(lambda_env, receiver, fake_omics):
    with CallbackReceiver(token=API_TOKEN) as foreign:
        fake_omics.runs["8567247"]["tags"]["callback_url"] = foreign.url + "/steal"
        result = handler.lambda_handler(sample_event("pending"), None)
        assert foreign.requests == []
    assert result["outcome"] == "refused" and receiver.requests == []
    [key] = refusal_keys(lambda_env)
    record = read(lambda_env, key)
    assert record["http_status"] is None
    assert "not an allowed callback origin" in record["reason"]
    assert record["callback_url"] == foreign.url + "/steal"


def test_an_allowed_callback_url_tag_is_honoured(lambda_env, receiver, fake_omics, monkeypatch):
    with CallbackReceiver(token=API_TOKEN) as other:
        monkeypatch.setenv("ALLOWED_CALLBACK_ORIGINS", f"{receiver.url}, {other.url.upper()}")
        handler.reset()
        handler.warm()
        fake_omics.runs["8567247"]["tags"]["callback_url"] = (
            other.url + "/internal/callbacks/omics-state-change")
        assert handler.lambda_handler(sample_event("pending"), None)["outcome"] == "delivered"
        assert len(other.accepted) == 1 and receiver.requests == []


def test_the_receiver_enforces_the_wes_state_machine(receiver):
    import requests

    url = receiver.url + "/internal/callbacks/omics-state-change"

    def post(status: str, event_id: str, key: str = API_TOKEN) -> requests.Response:
        body = {"omics_run_id": "1", "wes_run_id": WES_RUN_ID, "status": status,
                "event_time": "2026-01-01T00:00:00Z", "event_id": event_id}
        return requests.post(url, json=body, headers={"X-Internal-API-Key": key}, timeout=5)

    assert post("PENDING", "e0", key="wrong").status_code == 403
    refused = post("COMPLETED", "e1")
    assert refused.status_code == 400 and "QUEUED -> COMPLETE" in refused.text
    assert post("PENDING", "e2").json()["message"] == "no state change"
    assert post("RUNNING", "e3").status_code == 200
    assert post("COMPLETED", "e4").status_code == 200
    assert "event ignored" in post("RUNNING", "e5").json()["message"]
    assert post("RUNNING", "e5").json()["already_processed"] is True
    assert receiver.states[WES_RUN_ID] == "COMPLETE"


def test_the_fake_pages_list_runs_and_fails_on_demand(fake_omics: FakeOmics):
    for i in range(250):
        fake_omics.add_run({"id": f"9{i:06d}", "status": "COMPLETED"})
    omics = ClientFactory().client("omics")  # AWS_ENDPOINT_URL_OMICS: the fake
    pages = list(omics.get_paginator("list_runs").paginate(PaginationConfig={"PageSize": 100}))
    assert [len(p["items"]) for p in pages] == [100, 100, 51]
    fake_omics.fail("ListRuns", 400, code="ValidationException")
    with pytest.raises(omics.exceptions.ValidationException):
        omics.list_runs()
