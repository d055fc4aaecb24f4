"""The processor end to end in-process: moto S3, stubbed HealthOmics, a real local receiver."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import API_TOKEN
from moto import mock_aws
from omics_helpers import (
    BUCKET,
    FAST,
    PREFIX,
    SAMPLES,
    WES_RUN_ID,
    archived_keys,
    make_processor,
    sample_event,
    stub_omics,
)

from omics_edp_cli.errors import ArchiveError, DeliveryError, EnrichmentError
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted
from omics_edp_cli.omics.archive import ARCHIVE_NAMESPACE, ArchiveStore, Encryption, archive_key
from omics_edp_cli.omics.config import CALLBACK_PATH
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.event import flatten, parse_time
from omics_edp_cli.omics.processor import Processor


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def receiver(running_receiver: CallbackReceiver) -> CallbackReceiver:
    return running_receiver


def read_json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.mark.parametrize("status", SAMPLES)
def test_each_sample_event_is_archived_encrypted_and_posted_identically(s3, receiver, status):
    event = sample_event(status)
    omics, stubber = stub_omics(event, tags={"WESRunId": WES_RUN_ID})

    result = make_processor(s3, omics, receiver.url).process(event)

    assert result.outcome == "delivered"
    stubber.assert_no_pending_responses()
    [key] = archived_keys(s3)
    assert result.archive_uri == f"s3://{BUCKET}/{key}"
    [request] = receiver.requests
    assert request.path == CALLBACK_PATH
    assert request.headers["x-internal-api-key"] == API_TOKEN
    assert request.body == read_json(s3, key) == result.payload
    assert s3.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256"
    assert request.body["wes_run_id"] == WES_RUN_ID
    assert request.body["status"] == event["detail"]["status"]
    assert request.body["event_id"] == event["id"]
    assert request.body["event_time"] == event["time"]
    finished = status in {"completed", "failed", "cancelled"}
    assert ("log_urls" in request.body) == finished


def test_archive_key_is_event_time_and_uuid5_of_event_id(s3, receiver):
    event = sample_event("completed")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    make_processor(s3, omics, receiver.url).process(event)
    [key] = archived_keys(s3)
    assert key.startswith(f"{PREFIX}/event_20260122_222545_")
    name = uuid.UUID(key.rsplit("_", 1)[1].removesuffix(".json"))
    assert name.version == 5
    # Derived from the event id alone: the same id always gives the same key, another id another.
    assert name == uuid.uuid5(ARCHIVE_NAMESPACE, event["id"])
    other = archive_key(PREFIX, parse_time(event["time"]), event["id"] + "-other")
    assert other != key and archive_key(PREFIX, parse_time(event["time"]), event["id"]) == key


def test_flatten_matches_the_seed_lambda():
    event = sample_event("completed")
    flat = flatten(event)
    # detail.* lifted to the top, list items suffixed, scalars kept.
    assert flat["runId"] == "8567247" and flat["status"] == "COMPLETED"
    assert flat["resources_0"] == event["resources"][0]
    assert flat["source"] == "aws.omics" and flat["detail-type"] == "Run Status Change"
    assert "detail" not in flat and "resources" not in flat
    nested = flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}, "l": [4, {"f": 5}], "c": 6})
    assert nested == {"a": 1, "c": 6, "d": {"e": 3}, "l_0": 4, "f_1": 5}


def test_archive_is_kms_encrypted_when_a_key_is_given(s3, receiver):
    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    callback = CallbackClient(receiver.url, API_TOKEN, FAST)
    archive = ArchiveStore(s3, BUCKET, PREFIX, Encryption(kms_key_id=key_id))
    Processor(archive, omics, callback).process(event)
    [key] = archived_keys(s3)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)


@pytest.mark.parametrize("status", [501, 505, 507])
def test_any_5xx_is_retried(s3, receiver, status):
    receiver.script(status, 200)
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "delivered" and result.attempts == 2
    assert len(receiver.requests) == 2


def test_a_callback_slower_than_the_timeout_is_retried_and_delivered(s3, receiver):
    # The first answer comes after the read timeout; the second at once.
    receiver.script(Scripted(200, delay=FAST.timeout + 0.5), 200)
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome in {"delivered", "already_processed"} and result.attempts == 2


def test_failed_with_long_status_message_is_truncated_and_accepted(s3, receiver):
    event = sample_event("failed")
    event["detail"]["statusMessage"] = "x" * 1500
    event["detail"]["failureReason"] = "y" * 2500
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})

    result = make_processor(s3, omics, receiver.url).process(event)

    assert result.outcome == "delivered" and result.http_status == 200
    [accepted] = receiver.accepted
    assert 0 < len(accepted["status_message"]) <= 1000
    assert accepted["status_message"].startswith("xxx")
    assert 0 < len(accepted["failure_reason"]) <= 2000


def test_failed_carries_status_message_and_failure_reason(s3, receiver):
    event = sample_event("failed")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    make_processor(s3, omics, receiver.url).process(event)
    [body] = receiver.accepted
    assert body["failure_reason"] == "RUN_TASK_FAILED"
    assert body["status_message"] == event["detail"]["statusMessage"]


def _put_outputs(s3: Any, event: dict[str, Any], body: bytes) -> None:
    uri = event["detail"]["runOutputUri"]
    bucket, prefix = uri[5:].split("/", 1)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/logs/outputs.json", Body=body)


def test_completed_with_outputs_json_maps_cwl_locations(s3, receiver, load_fixture):
    event = sample_event("completed")
    _put_outputs(s3, event, json.dumps(load_fixture("omics/outputs-8567247.json")).encode())
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})

    result = make_processor(s3, omics, receiver.url).process(event)

    base = "s3://example-omics-output/test_WES/8567247/out"
    assert result.payload["output_mapping"] == {
        "copied_file": f"{base}/copied.txt",
        "reports": [f"{base}/report-1.html", f"{base}/report-2.html"],
        "read_count": "123456",
    }
    assert receiver.accepted[0]["output_mapping"] == result.payload["output_mapping"]


def test_completed_without_outputs_json_omits_mapping_and_still_delivers(s3, receiver):
    event = sample_event("completed")
    s3.create_bucket(Bucket="example-omics-output")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "delivered"
    assert "output_mapping" not in result.payload
    assert any("not found" in w for w in result.warnings)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
def test_completed_with_malformed_outputs_json_omits_mapping(s3, receiver, body):
    event = sample_event("completed")
    _put_outputs(s3, event, body)
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "delivered"
    assert "output_mapping" not in result.payload
    assert result.warnings


def test_list_run_tasks_two_pages_give_three_task_log_urls(s3, receiver):
    event = sample_event("completed")
    omics, stubber = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    stubber.assert_no_pending_responses()  # both pages were requested
    task_logs = result.payload["log_urls"]["task_logs"]
    assert sorted(task_logs) == ["checksum", "copy_file", "publish"]
    assert sorted(url.rsplit("%2F", 1)[1] for url in task_logs.values()) == [
        "1148209", "1148210", "1148211"]
    assert result.payload["log_urls"]["run_log"].endswith("run%2F8567247")
    assert "manifest%2Frun%2F8567247" in result.payload["log_urls"]["manifest_log_base_url"]


def test_tasks_sharing_a_name_each_keep_a_log_url(s3, receiver):
    event = sample_event("completed")
    page = {"items": [{"taskId": str(i), "name": "scatter"} for i in range(1, 4)]}
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID}, pages=[page])
    result = make_processor(s3, omics, receiver.url).process(event)
    assert len(result.payload["log_urls"]["task_logs"]) == 3


def test_no_wes_run_id_tag_is_archived_not_delivered_and_skipped(s3, receiver):
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"Project": "P-1"})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "skipped"
    assert "WESRunId" in (result.reason or "")
    assert receiver.requests == []
    [key] = archived_keys(s3)
    assert "wes_run_id" not in read_json(s3, key)


def test_get_run_failure_fails_before_anything_is_archived_or_sent(s3, receiver):
    event = sample_event("running")
    omics = boto3.client("omics", region_name="us-east-1")
    stubber = Stubber(omics)
    stubber.add_client_error("get_run", "AccessDeniedException", "no", 403)
    stubber.activate()
    with pytest.raises(EnrichmentError, match=r"GetRun 8567247 failed.*AccessDenied"):
        make_processor(s3, omics, receiver.url).process(event)
    assert archived_keys(s3) == [] and receiver.requests == []


def test_a_run_not_found_is_archived_and_skipped(s3, receiver):
    event = sample_event("running")
    omics = boto3.client("omics", region_name="us-east-1")
    stubber = Stubber(omics)
    stubber.add_client_error("get_run", "ResourceNotFoundException", "gone", 404)
    stubber.activate()
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "skipped" and "not found in HealthOmics" in " ".join(result.warnings)
    assert len(archived_keys(s3)) == 1 and receiver.requests == []


def test_same_event_twice_gives_exactly_one_archive_object(s3, receiver):
    event = sample_event("running")
    for _ in range(2):
        omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
        make_processor(s3, omics, receiver.url).process(event)
    assert len(archived_keys(s3)) == 1
    assert len(receiver.requests) == 2 and receiver.requests[1].body == receiver.requests[0].body


def test_s3_write_failure_makes_no_callback_and_fails(s3, receiver):
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    processor = make_processor(s3, omics, receiver.url, bucket="no-such-bucket-here")
    with pytest.raises(ArchiveError, match="no-such-bucket-here"):
        processor.process(event)
    assert receiver.requests == []


def test_callback_500_500_200_is_delivered_once(s3, receiver):
    receiver.script(500, 500)
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "delivered"
    assert result.attempts == 3
    assert len(receiver.requests) == 3
    assert len(receiver.accepted) == 1


def test_429_retry_after_is_honoured(s3, receiver):
    receiver.script(Scripted(429, headers={"Retry-After": "1"}))
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "delivered" and result.attempts == 2
    first, second = receiver.requests
    assert second.at - first.at >= 0.95  # the fast policy alone would wait ~0.01 s


def test_400_is_reported_with_body_not_retried_no_exception(s3, receiver):
    receiver.script(Scripted(400, body={"detail": "Invalid state transition: COMPLETE -> RUNNING"}))
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event)
    assert result.outcome == "refused"
    assert result.http_status == 400
    assert "Invalid state transition" in (result.reason or "")
    assert len(receiver.requests) == 1
    _payload_key, refusal_key = archived_keys(s3)  # the payload, and its refusal record
    assert refusal_key.startswith(f"{PREFIX}/refused/event_")
    record = read_json(s3, refusal_key)
    assert (record["http_status"], record["payload"]["status"]) == (400, "RUNNING")
    assert "Invalid state transition" in record["receiver_answer"]


def test_receiver_down_beyond_budget_fails_after_archiving(s3, closed_url):
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="4 attempts"):
        make_processor(s3, omics, closed_url).process(event)
    assert time.monotonic() - started < 5
    assert len(archived_keys(s3)) == 1  # archived first: nothing lost


def test_persistent_503_fails_the_invocation(s3, receiver):
    receiver.down = True
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    with pytest.raises(DeliveryError, match="HTTP 503"):
        make_processor(s3, omics, receiver.url).process(event)
    assert len(receiver.requests) == 4


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(source="aws.s3"), "source is aws.s3, expected aws.omics"),
        # Rough edge 10: this read "source is None, expected 'aws.omics'".
        (lambda e: e.pop("source"), "source is missing, expected aws.omics"),
        (lambda e: e.update({"detail-type": 7}), "detail-type is 7, expected"),
        (lambda e: e["detail"].pop("runId"), "missing or empty detail.runId"),
        (lambda e: e.update(time="yesterday"), "time yesterday is not ISO 8601"),
    ],
    ids=["wrong-source", "no-source", "number-detail-type", "missing-runId", "bad-time"],
)
def test_invalid_events_are_kept_under_rejected_with_reason(s3, receiver, mutate, reason):
    event = sample_event("running")
    mutate(event)
    result = make_processor(s3, None, receiver.url).process(event)
    assert result.outcome == "invalid" and reason in (result.reason or "")
    [key] = archived_keys(s3)
    assert key.startswith(f"{PREFIX}/rejected/")
    kept = read_json(s3, key)
    assert reason in kept["reason"] and kept["event"] == event
    assert receiver.requests == []


def test_a_list_instead_of_an_object_is_rejected(s3, receiver):
    result = make_processor(s3, None, receiver.url).process([sample_event("running")])
    assert result.outcome == "invalid"
    [key] = archived_keys(s3)
    assert "expected a JSON object" in read_json(s3, key)["reason"]


def test_dry_run_writes_and_sends_nothing(s3, receiver):
    event = sample_event("running")
    omics, _ = stub_omics(event, tags={"WESRunId": WES_RUN_ID})
    result = make_processor(s3, omics, receiver.url).process(event, dry_run=True)
    assert result.outcome == "planned" and result.payload["wes_run_id"] == WES_RUN_ID
    assert archived_keys(s3) == [] and receiver.requests == []
