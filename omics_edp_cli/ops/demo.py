"""`omics-edp demo`: both pipelines end to end on one machine, through the real code.

Steps: deploy both stacks into a local AWS (moto) with the real deploy code; run a
HealthOmics run's status events through the processor while the NGS360 receiver is down for
part of it (failed invocations are dead-lettered as Lambda would); replay the archive with the
real replay code; send an instrument-style S3 burst through the EDP ingest and flush code;
show the batch state and the dead-letter queue. Each step is reported as it finishes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import BatchRules, EdpSettings
from omics_edp_cli.edp.handlers import build_batcher, ingest_sqs_batch
from omics_edp_cli.errors import DeliveryError, OperationError
from omics_edp_cli.omics.archive import ArchiveStore
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.ops import batch_state, dlq
from omics_edp_cli.ops.deploy import DeployRequest, deploy_stack
from omics_edp_cli.ops.inputs import load_sample
from omics_edp_cli.ops.replay import ReplayOptions, plan_replay, replay
from omics_edp_cli.ops.sandbox import LocalSandbox
from omics_edp_cli.ops.stack import describe_stack

TOKEN = "demo-" + "0" * 8  # the local receiver's key; nothing secret
PROCESSOR_STACK = "omics-edp-demo-processor"
EDP_STACK = "omics-edp-demo-edp"
DATA_LAKE = "omics-edp-demo-data-lake"
INSTRUMENT_BUCKET = "omics-edp-demo-instruments"
EVENT_BUS = "omics-edp-demo-bus"
RUN_ID = "8567247"
WES_RUN_ID = "0f6f1c3e-2b6a-4f7e-9d7e-3c1b5a9e8d21"
RUN_EVENTS = ("pending", "starting", "running", "stopping", "completed")
DOWN_FOR = {"running", "stopping"}  # the receiver is "down" while these arrive
# Short budget so the "receiver down" part takes a second, not a minute.
DEMO_DELIVERY = DeliveryPolicy(max_retries=2, timeout=2.0, backoff_factor=0.05, backoff_max=0.2)
BURST = {"novaseq-01/run-0001/": 45, "novaseq-01/run-0002/": 12, "raw/scratch/": 3}
COUNT_THRESHOLD = 20
QUIET_SECONDS = 300


@dataclass
class Step:
    """One finished step: a title, what it did, and rows to show."""

    title: str
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DemoResult:
    archived: int = 0
    callbacks_accepted: int = 0
    deliveries_failed: int = 0
    replayed: dict[str, int] = field(default_factory=dict)
    batches_emitted: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    aws_url: str = ""


Report = Callable[[Step], None]


def run_demo(report: Report, *, keep: Callable[[LocalSandbox], None] | None = None) -> DemoResult:
    """Run every step against a fresh sandbox; `keep` is called before it shuts down."""
    started = time.monotonic()
    result = DemoResult()
    with LocalSandbox(TOKEN) as box:
        result.aws_url = box.aws_url
        report(Step("Local AWS", "moto, a HealthOmics fake and an NGS360 receiver on 127.0.0.1", [
            {"service": "AWS (moto)", "endpoint": box.aws_url},
            {"service": "HealthOmics fake", "endpoint": box.omics.url},
            {"service": "NGS360 callback receiver", "endpoint": box.receiver.url},
        ]))
        _deploy_both(box, report)
        _run_processor(box, report, result)
        _replay(box, report, result)
        _edp_burst(box, report, result)
        _inspect(box, report, result)
        result.archived = _count_archive(box)
        result.callbacks_accepted = len(box.receiver.accepted)
        result.seconds = time.monotonic() - started
        if keep is not None:
            keep(box)
    return result


def _deploy_both(box: LocalSandbox, report: Report) -> None:
    s3 = box.clients.client("s3")
    s3.create_bucket(Bucket=DATA_LAKE)
    s3.put_bucket_encryption(Bucket=DATA_LAKE, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.create_bucket(Bucket=INSTRUMENT_BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=INSTRUMENT_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    stacks = [
        ("processor", PROCESSOR_STACK, {
            "DeadLetterEmail": "operator@example.com", "ApiServer": box.receiver.url,
            "ApiServerAuthToken": TOKEN, "DataLakeBucket": DATA_LAKE,
        }),
        ("edp", EDP_STACK, {
            "BucketName": INSTRUMENT_BUCKET, "BucketIgnorePrefixes": "raw/*",
            "BucketThresholdEventCount": str(COUNT_THRESHOLD),
            "BucketThresholdDuration": str(QUIET_SECONDS), "EventBusName": EVENT_BUS,
        }),
    ]
    rows = []
    for kind, name, parameters in stacks:
        started = time.monotonic()
        outcome = deploy_stack(box.clients, DeployRequest(
            kind=kind, stack_name=name, parameters=parameters, code_bucket=DATA_LAKE,
            code_prefix="omics-edp-code", assume_yes=True))
        rows.append({"stack": name, "status": outcome.status, "code": outcome.code_key,
                     "seconds": round(time.monotonic() - started, 1)})
    report(Step("Deploy", "both stacks deployed with the real deploy code", rows))


def _processor(box: LocalSandbox) -> Processor:
    info = describe_stack(box.clients.client("cloudformation"), PROCESSOR_STACK)
    archive = ArchiveStore(box.clients.client("s3"), info.parameter("DataLakeBucket"),
                           info.parameters.get("BucketPrefix") or "omics-run-events")
    callback = CallbackClient(info.parameter("ApiServer"), TOKEN, DEMO_DELIVERY)
    return Processor(archive, box.clients.client("omics"), callback)


def _run_processor(box: LocalSandbox, report: Report, result: DemoResult) -> None:
    run = json.loads(resources.files("omics_edp_cli.samples").joinpath(
        "run-status-completed.json").read_text())  # only for the output URI
    box.omics.add_run({
        "id": RUN_ID, "status": "COMPLETED", "tags": {"WESRunId": WES_RUN_ID},
        "runOutputUri": run["detail"]["runOutputUri"],
        "logLocation": {"runLogStream": "arn:aws:logs:us-east-1:123456789012:log-group:"
                        f"/aws/omics/WorkflowLog:log-stream:run/{RUN_ID}"},
    }, [{"taskId": f"11482{i:02d}", "name": name, "status": "COMPLETED"}
        for i, name in enumerate(("copy_file", "checksum", "publish"))])
    processor = _processor(box)
    info = describe_stack(box.clients.client("cloudformation"), PROCESSOR_STACK)
    sqs = box.clients.client("sqs")
    rows = []
    for status in RUN_EVENTS:
        event = load_sample(status)
        box.receiver.down = status in DOWN_FOR
        try:
            outcome = processor.process(event)
            rows.append({"status": event["detail"]["status"], "outcome": outcome.outcome,
                         "archive": outcome.archive_uri})
        except DeliveryError as e:
            # What Lambda does after its retries: the event goes to the dead-letter queue.
            result.deliveries_failed += 1
            sqs.send_message(
                QueueUrl=info.output("DeadLetterQueueUrl"), MessageBody=json.dumps(event),
                MessageAttributes={
                    "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                    "ErrorMessage": {"DataType": "String", "StringValue": str(e)[:200]},
                })
            rows.append({"status": event["detail"]["status"], "outcome": "failed → DLQ",
                         "archive": "archived before delivery"})
    box.receiver.down = False
    report(Step("Processor", f"{len(RUN_EVENTS)} HealthOmics events of run {RUN_ID}; the receiver "
                f"was down for {len(DOWN_FOR)} of them", rows))


def _replay(box: LocalSandbox, report: Report, result: DemoResult) -> None:
    times = [datetime.fromisoformat(load_sample(s)["time"].replace("Z", "+00:00")) for s in RUN_EVENTS]
    since = (min(times) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (max(times) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    options = ReplayOptions(since=since, until=until, stack=PROCESSOR_STACK)
    plan = plan_replay(options, box.clients, env={"OMICS_EDP_API_TOKEN": TOKEN})
    outcome = replay(plan, box.clients, policy=DEMO_DELIVERY, env={})
    result.replayed = dict(outcome.summary())
    report(Step("Replay", f"omics-edp replay --stack {PROCESSOR_STACK} --since {since} --until {until}",
                [{"outcome": k, "events": v} for k, v in outcome.summary().items()]))


def _edp_batcher(box: LocalSandbox) -> tuple[Batcher, EdpSettings]:
    info = describe_stack(box.clients.client("cloudformation"), EDP_STACK)
    settings = EdpSettings(
        table=info.output("StateTableName"), event_bus=info.output("EventBusName"),
        rules=BatchRules(count=COUNT_THRESHOLD, quiet_seconds=QUIET_SECONDS, ignore=("raw/*",)),
        bucket=INSTRUMENT_BUCKET)
    return build_batcher(settings, box.clients), settings


def _s3_event(key: str, size: int, when: datetime, sequencer: str) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1", "resources": [f"arn:aws:s3:::{INSTRUMENT_BUCKET}"],
        "detail": {"version": "0", "bucket": {"name": INSTRUMENT_BUCKET},
                   "object": {"key": key, "size": size, "sequencer": sequencer},
                   "reason": "PutObject"},
    }


def _edp_burst(box: LocalSandbox, report: Report, result: DemoResult) -> None:
    s3 = box.clients.client("s3")
    sqs = box.clients.client("sqs")
    queue = describe_stack(box.clients.client("cloudformation"), EDP_STACK).output("IngestQueueUrl")
    now = datetime.now(UTC)
    sent = 0
    entries: list[dict[str, Any]] = []
    for prefix, files in BURST.items():
        for i in range(files):
            key = f"{prefix}Data/L001/s_1_{1101 + i}.bcl.gz"
            s3.put_object(Bucket=INSTRUMENT_BUCKET, Key=key, Body=b"x" * 64)
            # EventBridge would deliver this to the ingest queue (moto's S3 does not emit it).
            event = _s3_event(key, 64, now + timedelta(seconds=sent), f"{sent:016X}")
            entries.append({"Id": str(len(entries)), "MessageBody": json.dumps(event)})
            sent += 1
            if len(entries) == 10:
                sqs.send_message_batch(QueueUrl=queue, Entries=entries)
                entries = []
    if entries:
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    batcher, settings = _edp_batcher(box)
    emitted = []
    clock = now.timestamp() + sent
    while True:  # what the SQS event source mapping does: batches of up to 10 records
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
        response = ingest_sqs_batch({"Records": records}, batcher, clock, bucket=settings.bucket)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    # The every-minute flush, run once after the quiet time has passed.
    flushed = batcher.flush(clock + QUIET_SECONDS + 60)
    if flushed.unpublished or flushed.failed_keys:
        raise OperationError("the demo flush could not publish every batch")
    store = batch_state.open_target(box.clients, stack=EDP_STACK).store
    emitted = batch_state.recent_rows(store, 50)
    result.batches_emitted = len(emitted)
    rows = [{k: r[k] for k in ("prefix", "count", "trigger", "status", "batch_id")} for r in emitted]
    report(Step("EDP batcher", f"{sent} S3 objects over {len(BURST)} prefixes (raw/* ignored) → "
                f"{len(emitted)} package-objects-ready events on {EVENT_BUS}", rows))


def _inspect(box: LocalSandbox, report: Report, result: DemoResult) -> None:
    target = batch_state.open_target(box.clients, stack=EDP_STACK)
    open_now = batch_state.open_rows(target.store, time.time())
    report(Step("omics-edp batches list", f"{len(open_now)} open batch(es) left in {EDP_STACK}",
                [{k: r[k] for k in ("prefix", "count", "flush_in_seconds")} for r in open_now]))
    queues = dlq.resolve_queues(box.clients, stack=PROCESSOR_STACK)
    groups = dlq.group(dlq.scan(box.clients, queues))
    result.dead_letters = sum(g["count"] for g in groups)
    report(Step("omics-edp dlq list", f"{result.dead_letters} dead letter(s) in {PROCESSOR_STACK}; "
                "the replay already delivered them, so `dlq purge --yes` is safe",
                [{k: g[k] for k in ("queue", "kind", "count", "signature")} for g in groups]))


def _count_archive(box: LocalSandbox) -> int:
    listing = box.clients.client("s3").list_objects_v2(Bucket=DATA_LAKE, Prefix="omics-run-events/event_")
    return int(listing.get("KeyCount", 0))
