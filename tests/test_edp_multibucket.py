"""End to end on a moto server: one EDP stack watching two buckets, S3 → EventBridge → SQS →
ingest → flush, every manifest read back from S3 and compared with what was written."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.edp import handlers
from omics_edp_cli.ops.deploy.execute import DeployHooks, DeployRequest, deploy_stack
from omics_edp_cli.ops.deployment import EdpStack, load_typed


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out = []
    for _ in range(200):  # bounded: a few dozen messages at most
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        out.extend({"messageId": m["MessageId"], "body": m["Body"]} for m in messages)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    raise AssertionError("queue never drained")


@pytest.mark.e2e
def test_one_stack_batches_two_buckets_and_every_manifest_is_exact(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    clients = ClientFactory(region="us-east-1")
    s3, sqs, events = clients.client("s3"), clients.client("sqs"), clients.client("events")
    first, second, other, code = unique("lab-a"), unique("lab-b"), unique("elsewhere"), unique("code")
    stack, bus = unique("edp"), unique("bus")
    for bucket in (first, second, other, code):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    result = deploy_stack(clients, DeployRequest("edp", {
        "BucketName": f"{first},{second}", "EventBusName": bus, "BucketThresholdEventCount": "5",
        "BucketIgnorePrefixes": "scratch/*",
    }, stack_name=stack, code_bucket=code, assume_yes=True), DeployHooks(poll_seconds=0.05))
    assert result.status == "CREATE_COMPLETE"
    edp = load_typed(clients, stack, EdpStack)
    assert edp.bucket_names == [first, second]
    location = edp.manifest_location
    assert location and location.startswith("s3://") and location.endswith("/manifests/")
    # The stack's rule targets SNS, which the local AWS cannot deliver to: a queue stands in.
    rule = f"{stack}-package-ready"
    consumer = sqs.create_queue(QueueName=unique("consumer"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=consumer, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=[t["Id"] for t in targets])
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "consumer", "Arn": arn}])
    # moto would run the ingest function's zip itself (in docker) off the queue: this test runs
    # the handler in process instead, as `omics-edp demo` does.
    lam = clients.client("lambda")
    mappings = lam.list_event_source_mappings(FunctionName=edp.ingest_function_name)["EventSourceMappings"]
    for mapping in mappings:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

    written: dict[tuple[str, str], dict[str, Any]] = {}
    uploads = ((first, "nova/run-1/", 7), (second, "nova/run-1/", 3), (second, "mi/run-9/", 2),
               (other, "nova/run-1/", 4), (first, "scratch/tmp/", 2))
    for bucket, run, files in uploads:
        for i in range(files):
            key = f"{run}f{i}.bcl"
            s3.put_object(Bucket=bucket, Key=key, Body=b"x" * (100 + i))
            head = s3.head_object(Bucket=bucket, Key=key)
            written[(bucket, key)] = {"size": head["ContentLength"], "etag": head["ETag"].strip('"')}

    function = clients.client("lambda").get_function_configuration(FunctionName=edp.ingest_function_name)
    for name, value in function["Environment"]["Variables"].items():
        monkeypatch.setenv(name, str(value))
    now = time.time()
    clock = {"now": now}
    handlers.reset(clients=clients, clock=lambda: clock["now"])
    try:
        records = drain(sqs, edp.ingest_queue_url)
        # The rule let in both watched buckets (ignored keys too: the ingest skips them), not the other.
        buckets_queued = {json.loads(r["body"])["detail"]["bucket"]["name"] for r in records}
        assert buckets_queued == {first, second}
        for start in range(0, len(records), 10):
            assert handlers.ingest_handler({"Records": records[start:start + 10]}, None) == {
                "batchItemFailures": []}
        clock["now"] = now + 400
        summary = handlers.flush_handler({}, None)
        assert summary["unpublished"] == 0
    finally:
        handlers.reset()

    received = [json.loads(m["body"]) for m in drain(sqs, consumer)]
    got = sorted((e["detail"]["bucket"], e["detail"]["prefix"], e["detail"]["count"], e["detail"]["trigger"])
                 for e in received)
    assert got == sorted([(first, "nova/run-1/", 5, "count"), (first, "nova/run-1/", 2, "quiet"),
                          (second, "nova/run-1/", 3, "quiet"), (second, "mi/run-9/", 2, "quiet")])
    manifest_bucket = location[5:].split("/", 1)[0]
    listed: list[tuple[str, str]] = []
    for event in received:
        detail = event["detail"]
        assert detail["manifest"] == f"{location}{detail['batch_id']}.jsonl"
        key = detail["manifest"][len(f"s3://{manifest_bucket}/"):]
        body = s3.get_object(Bucket=manifest_bucket, Key=key)["Body"].read().decode()
        lines = [json.loads(line) for line in body.splitlines()]
        assert len(lines) == detail["count"]
        for line in lines:
            assert line["bucket"] == detail["bucket"] and line["key"].startswith(detail["prefix"])
            assert line["size"] == written[(line["bucket"], line["key"])]["size"]
            listed.append((line["bucket"], line["key"]))
    expected = sorted(k for k in written if k[0] in (first, second) and not k[1].startswith("scratch/"))
    assert sorted(listed) == expected  # every watched object in exactly one manifest
    assert s3.list_objects_v2(Bucket=manifest_bucket, Prefix="manifests/segments/").get("KeyCount", 0) == 0
