"""DynamoDB (and S3) calls the EDP ingest handler makes per 100-record SQS batch over 5 prefixes.

Runs the real `ingest_handler` on moto (in process) and counts the calls through botocore's
`before-call` event hooks on the clients it is handed. Works on the code before batch
manifests (no S3 client needed) and after (an S3 manifest location is configured when the
code reads one), so the two versions can be compared with the same script:

    git stash -- omics_edp_cli  # or check out the older commit
    .venv/bin/python bench/bench_edp_writes.py

Cases:
- count 20: every prefix fills exactly one batch (5 emissions per SQS batch);
- count 50: nothing becomes full (writes = prefixes);
- count 10000, 20 SQS batches in a row: open batches grow to 400 objects each (manifest
  members appended in the same write; on the new code, spilled to S3 segments when large).
Also prints the largest batch-state item written (bytes of the PutItem request body).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

T0 = 1_772_445_600  # 2026-03-02T10:00:00Z
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
RECORDS, PREFIXES = 100, 5


def sqs_batch(batch: int) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{batch}-{i}", "body": json.dumps({
        "source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T10:00:00Z",
        "detail": {"bucket": {"name": "instrument-bucket"},
                   "object": {"key": f"run/p{i % PREFIXES}/b{batch:03d}-f{i:03d}.fastq.gz",
                              "size": 1_000_000 + i, "etag": f"{batch:08x}{i:024x}",
                              "sequencer": f"0065E8{batch:04X}{i:06X}"}},
    })} for i in range(RECORDS)]}


def run_case(count: str, batches: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from omics_edp_cli.aws import ClientFactory
    from omics_edp_cli.edp import handlers
    from omics_edp_cli.edp.dynamodb_store import create_table

    os.environ["BUCKET_THRESHOLD_EVENT_COUNT"] = count
    with mock_aws():
        dynamodb, events, s3 = boto3.client("dynamodb"), boto3.client("events"), boto3.client("s3")
        create_table(dynamodb, "edp-state")
        events.create_event_bus(Name="quilt-edp")
        s3.create_bucket(Bucket="edp-manifests")
        calls: list[str] = []
        s3_calls: list[str] = []
        largest = [0]

        def on_dynamodb(model: Any, params: Any = None, **_: Any) -> None:
            if model.name in WRITES:
                calls.append(model.name)
            if model.name == "PutItem" and params is not None:
                largest[0] = max(largest[0], len(params.get("body", b"")))

        def on_s3(model: Any, **_: Any) -> None:
            s3_calls.append(model.name)

        dynamodb.meta.events.register("before-call.dynamodb.*", on_dynamodb)
        s3.meta.events.register("before-call.s3.*", on_s3)
        handlers.reset(clients=ClientFactory(overrides={"dynamodb": dynamodb, "events": events, "s3": s3}),
                       clock=lambda: float(T0))
        per_batch = []
        for b in range(batches):
            before = len(calls)
            result = handlers.ingest_handler(sqs_batch(b), None)
            assert result == {"batchItemFailures": []}, result
            per_batch.append(len(calls) - before)
        handlers.reset()
    return {"writes": per_batch, "s3": len(s3_calls), "largest_item": largest[0]}


def main() -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "STATE_TABLE": "edp-state",
                       "EVENT_BUS_NAME": "quilt-edp", "BUCKET_PREFIX_DEPTH": "2",
                       # read by the code with batch manifests, ignored by the code before it
                       "MANIFEST_LOCATION": "s3://edp-manifests/manifests/"})
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    logging.disable(logging.INFO)  # the handler logs one line per invocation
    try:
        from omics_edp_cli.edp import manifests  # noqa: F401
        version = "with batch manifests"
    except ImportError:
        version = "before batch manifests"
    print(f"ingest handler, {RECORDS}-record SQS batches over {PREFIXES} prefixes ({version}):")
    cases = [("count 20: 5 batches full per SQS batch", "20", 1),
             ("count 50: nothing full", "50", 1),
             ("count 10000: 20 SQS batches into 5 growing batches", "10000", 20)]
    for name, count, batches in cases:
        r = run_case(count, batches)
        w = r["writes"]
        print(f"  {name:52s} DynamoDB writes per SQS batch: "
              f"min {min(w)}, max {max(w)}, mean {sum(w) / len(w):.2f}; "
              f"S3 calls in all: {r['s3']}; largest PutItem body: {r['largest_item']:,} bytes")


if __name__ == "__main__":
    main()
