"""`omics-edp demo`: both pipelines end to end on one machine, through the real code.

Steps: deploy both stacks into a local AWS (moto) with the real deploy code; run a
HealthOmics run's status events through the processor while the NGS360 receiver is down for
part of it (failed invocations are dead-lettered as Lambda would); replay the archive with the
real replay code; send an instrument-style S3 burst through the EDP ingest and flush code;
show the batch state and the dead-letter queue. Each step is reported as it finishes.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import EdpSettings, rules_from_parameters
from omics_edp_cli.edp.handlers import build_batcher, ingest_sqs_batch
from omics_edp_cli.errors import DeliveryError, OperationError
from omics_edp_cli.local.sandbox import LocalSandbox
from omics_edp_cli.omics.archive import ArchiveStore
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.ops import batches as batch_state
from omics_edp_cli.ops.deploy import packaging
from omics_edp_cli.ops.deploy.execute import DeployRequest, deploy_stack
from omics_edp_cli.ops.deploy.packaging import LambdaPackage
from omics_edp_cli.ops.deployment import EdpStack, ProcessorStack, load_typed
from omics_edp_cli.ops.dlq import queues as dlq
from omics_edp_cli.ops.inputs import load_sample
from omics_edp_cli.ops.replay.execute import replay
from omics_edp_cli.ops.replay.plan import ReplayOptions, plan_replay

TOKEN = "demo-" + "0" * 8  # the local receiver's key; nothing secret
RUN_ID = "8567247"
WES_RUN_ID = "0f6f1c3e-2b6a-4f7e-9d7e-3c1b5a9e8d21"
RUN_EVENTS = ("pending", "starting", "running", "stopping", "completed")
DOWN_FOR = {"running", "stopping"}  # the receiver is "down" while these arrive
# Short budget so the "receiver down" part takes a moment, not a minute: the local receiver
# answers 503 at once, so waiting between attempts (0.2 s each with jitter) shows nothing.
DEMO_DELIVERY = DeliveryPolicy(max_retries=2, timeout=2.0, backoff_factor=0.01, backoff_max=0.02,
                               backoff_jitter=0.0)
BURST = {"novaseq-01/run-0001/": 45, "novaseq-01/run-0002/": 12, "raw/scratch/": 3}
COUNT_THRESHOLD = 20
QUIET_SECONDS = 300
STACK_KINDS = ("processor", "edp")


@dataclass(frozen=True)
class Names:
    """Resource names of one demo run.

    A run id keeps two runs in one process apart: moto's state is per process, not per server.
    """

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def processor_stack(self) -> str:
        return f"omics-edp-demo-{self.run}-processor"

    @property
    def edp_stack(self) -> str:
        return f"omics-edp-demo-{self.run}-edp"

    @property
    def data_lake(self) -> str:
        return f"omics-edp-demo-{self.run}-data-lake"

    @property
    def instrument_bucket(self) -> str:
        return f"omics-edp-demo-{self.run}-instruments"

    @property
    def event_bus(self) -> str:
        return f"omics-edp-demo-{self.run}-bus"

    @property
    def registry(self) -> str:
        return f"omics-edp-demo-{self.run}-registry"

    @property
    def consumer_queue(self) -> str:
        return f"omics-edp-demo-{self.run}-package-consumer"


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
    packages_created: int = 0
    ready_events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    seconds: float = 0.0
    names: Names = field(default_factory=Names)


Report = Callable[[Step], None]


def run_demo(report: Report, *, keep: Callable[[LocalSandbox, DemoResult], None] | None = None,
             names: Names | None = None) -> DemoResult:
    """Run every step against a fresh sandbox; `keep` is called before it shuts down."""
    started = time.monotonic()
    result = DemoResult(names=names or Names())
    n = result.names
    packages: dict[str, LambdaPackage] = {}
    with LocalSandbox(TOKEN, while_starting=lambda box: _warm_up(box, packages)) as box:
        report(Step("Local AWS", "moto, a HealthOmics fake and an NGS360 receiver on 127.0.0.1", [
            {"service": "AWS (moto)", "endpoint": box.aws_url},
            {"service": "HealthOmics fake", "endpoint": box.omics.url},
            {"service": "NGS360 callback receiver", "endpoint": box.receiver.url},
        ]))
        _deploy_both(box, n, report, packages)
        # The two pipelines share nothing but the local AWS: the HealthOmics one runs on a
        # thread of its own and reports as it goes; the EDP one's steps are reported after it,
        # in the same order as ever. Meanwhile this process and the local AWS's both work.
        edp_steps: list[Step] = []
        with ThreadPoolExecutor(1, thread_name_prefix="demo-processor") as pool:
            omics = pool.submit(_omics_pipeline, box, n, report, result)
            _edp_burst(box, n, edp_steps.append, result)
            _package(box, n, edp_steps.append, result)
            omics.result()
        for step in edp_steps:
            report(step)
        _inspect(box, n, report, result)
        result.archived = _count_archive(box, n)
        result.callbacks_accepted = len(box.receiver.accepted)
        result.seconds = time.monotonic() - started
        if keep is not None:
            keep(box, result)
    return result


def _omics_pipeline(box: LocalSandbox, n: Names, report: Report, result: DemoResult) -> None:
    _run_processor(box, n, report, result)
    _replay(box, n, report, result)


def _warm_up(box: LocalSandbox, packages: dict[str, LambdaPackage]) -> None:
    """While the local AWS starts (its own process, the other core): this side's start-up work.

    The clients every step uses are built now (no request is sent), quilt3 imported, and both
    stacks' Lambda packages built, as `deploy` builds them, for the Deploy step to upload.
    """
    for service in ("s3", "cloudformation", "sqs", "events", "lambda", "dynamodb", "omics"):
        box.clients.client(service)
    for kind in STACK_KINDS:
        packages[kind] = packaging.build(kind)
    with contextlib.suppress(ImportError):  # reported by the Packager step
        import omics_edp_cli.packager.push  # noqa: F401


def _deploy_both(box: LocalSandbox, n: Names, report: Report,
                 packages: dict[str, LambdaPackage]) -> None:
    s3 = box.clients.client("s3")
    s3.create_bucket(Bucket=n.data_lake)
    s3.put_bucket_encryption(Bucket=n.data_lake, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.create_bucket(Bucket=n.instrument_bucket)
    s3.put_bucket_notification_configuration(
        Bucket=n.instrument_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    stacks = [
        ("processor", n.processor_stack, {
            "DeadLetterEmail": "operator@example.com", "ApiServer": box.receiver.url,
            "ApiServerAuthToken": TOKEN, "DataLakeBucket": n.data_lake,
        }),
        ("edp", n.edp_stack, {
            "BucketName": n.instrument_bucket, "BucketIgnorePrefixes": "raw/*",
            "BucketThresholdEventCount": str(COUNT_THRESHOLD),
            "BucketThresholdDuration": str(QUIET_SECONDS), "EventBusName": n.event_bus,
        }),
    ]
    rows = []
    # One after the other: the local AWS's CloudFormation loses track of one of two change sets
    # executed at once (its stack never leaves CREATE_IN_PROGRESS).
    for kind, name, parameters in stacks:
        started = time.monotonic()
        outcome = deploy_stack(box.clients, DeployRequest(
            kind=kind, stack_name=name, parameters=parameters, code_bucket=n.data_lake,
            code_prefix="omics-edp-code", assume_yes=True, package=packages.get(kind)))
        rows.append({"stack": name, "status": outcome.status, "code": outcome.code_key,
                     "seconds": round(time.monotonic() - started, 1)})
    report(Step("Deploy", "both stacks deployed with the real deploy code", rows))
    _pause_queue_trigger(box, n)
    _attach_consumer(box, n)


def _pause_queue_trigger(box: LocalSandbox, n: Names) -> None:
    """Turn off the ingest queue's Lambda trigger: the demo runs the handler in-process.

    The local AWS cannot run Lambda code (it needs Docker), and left on, the trigger would
    take the messages off the queue and fail them.
    """
    ingest = load_typed(box.clients, n.edp_stack, EdpStack).ingest_function_name
    lam = box.clients.client("lambda")
    for mapping in lam.list_event_source_mappings(FunctionName=ingest)["EventSourceMappings"]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)


def _attach_consumer(box: LocalSandbox, n: Names) -> None:
    """Point the EDP bus's rule at an SQS queue standing in for a packaging consumer.

    The deployed rule targets the SNS topic people subscribe to; the local AWS cannot deliver
    to SNS targets (moto 5.2 raises on PutEvents), so the demo swaps in a queue and reads back
    exactly what a consumer would receive.
    """
    events = box.clients.client("events")
    rule = f"{n.edp_stack}-package-ready"
    sqs = box.clients.client("sqs")
    url = sqs.create_queue(QueueName=n.consumer_queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=n.event_bus)["Targets"]
    events.remove_targets(Rule=rule, EventBusName=n.event_bus, Ids=[t["Id"] for t in targets])
    events.put_targets(Rule=rule, EventBusName=n.event_bus, Targets=[{"Id": "demo-consumer", "Arn": arn}])


def _consumed(box: LocalSandbox, n: Names) -> list[dict[str, Any]]:
    """The package-objects-ready events the stand-in consumer queue received."""
    sqs = box.clients.client("sqs")
    url = sqs.get_queue_url(QueueName=n.consumer_queue)["QueueUrl"]
    received: list[dict[str, Any]] = []
    for _ in range(100):  # bounded: the queue holds one message per emitted batch
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        received.extend(json.loads(m["Body"]) for m in messages)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    return received


def _processor(box: LocalSandbox, processor: ProcessorStack) -> Processor:
    archive = ArchiveStore(box.clients.client("s3"), processor.data_lake_bucket, processor.bucket_prefix)
    callback = CallbackClient(processor.api_server, TOKEN, DEMO_DELIVERY)
    return Processor(archive, box.clients.client("omics"), callback)


def _write_run_outputs(box: LocalSandbox, output_uri: str) -> None:
    """The run's `logs/outputs.json`, which the processor maps into `output_mapping`."""
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    outputs = {
        "copied_file": {"class": "File", "location": f"{output_uri}/out/copied.txt"},
        "reports": [{"class": "File", "location": f"{output_uri}/out/report-{n}.html"} for n in (1, 2)],
    }
    s3 = box.clients.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/logs/outputs.json", Body=json.dumps(outputs).encode())


def _run_processor(box: LocalSandbox, n: Names, report: Report, result: DemoResult) -> None:
    run = json.loads(resources.files("omics_edp_cli.samples").joinpath(
        "run-status-completed.json").read_text())  # only for the output URI
    box.omics.add_run({
        "id": RUN_ID, "status": "COMPLETED", "tags": {"WESRunId": WES_RUN_ID},
        "runOutputUri": run["detail"]["runOutputUri"],
        "logLocation": {"runLogStream": "arn:aws:logs:us-east-1:123456789012:log-group:"
                        f"/aws/omics/WorkflowLog:log-stream:run/{RUN_ID}"},
    }, [{"taskId": f"11482{i:02d}", "name": name, "status": "COMPLETED"}
        for i, name in enumerate(("copy_file", "checksum", "publish"))])
    _write_run_outputs(box, run["detail"]["runOutputUri"])
    stack = load_typed(box.clients, n.processor_stack, ProcessorStack)
    processor, dead_letter_queue = _processor(box, stack), stack.dead_letter_queue_url
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
                QueueUrl=dead_letter_queue, MessageBody=json.dumps(event),
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


def _replay(box: LocalSandbox, n: Names, report: Report, result: DemoResult) -> None:
    times = [datetime.fromisoformat(load_sample(s)["time"].replace("Z", "+00:00")) for s in RUN_EVENTS]
    since = (min(times) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (max(times) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    options = ReplayOptions(since=since, until=until, stack=n.processor_stack)
    plan = plan_replay(options, box.clients, env={"OMICS_EDP_API_TOKEN": TOKEN})
    outcome = replay(plan, box.clients, policy=DEMO_DELIVERY, env={})
    result.replayed = dict(outcome.summary())
    report(Step("Replay", f"omics-edp replay --stack {n.processor_stack} --since {since} --until {until}",
                [{"outcome": k, "events": v} for k, v in outcome.summary().items()]))


def _edp_batcher(box: LocalSandbox, n: Names, edp: EdpStack) -> tuple[Batcher, EdpSettings]:
    """The batcher the deployed functions run: the stack's table, bus and thresholds."""
    settings = EdpSettings(
        table=edp.state_table_name, event_bus=edp.event_bus_name,
        rules=rules_from_parameters(edp.parameters, f"stack {n.edp_stack}"),
        buckets=tuple(edp.bucket_names), manifest_location=edp.manifest_location)
    return build_batcher(settings, box.clients), settings


def _edp_burst(box: LocalSandbox, n: Names, report: Report, result: DemoResult) -> None:
    s3 = box.clients.client("s3")
    sqs = box.clients.client("sqs")
    edp = load_typed(box.clients, n.edp_stack, EdpStack)
    queue = edp.ingest_queue_url
    keys = [f"{prefix}Data/L001/s_1_{1101 + i}.bcl.gz"
            for prefix, files in BURST.items() for i in range(files)]
    # The local S3 sends "Object Created" to EventBridge, whose rule (from edp.yaml) puts it on
    # the ingest queue: the same wiring as in AWS. An instrument writes several files at once.
    with ThreadPoolExecutor(4, thread_name_prefix="demo-instrument") as pool:
        sent = len(list(pool.map(
            lambda key: s3.put_object(Bucket=n.instrument_bucket, Key=key, Body=b"x" * 64), keys)))
    batcher, settings = _edp_batcher(box, n, edp)
    rules = settings.rules
    now = time.time()
    # Ingest as if the objects arrived a quiet period (and one flush interval) ago, so that the
    # flush below runs at the real present: no emission time lies in the future.
    clock = now - rules.quiet_seconds - 60
    for _ in range(1000):  # what the SQS event source mapping does: batches of up to 10 records
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
        response = ingest_sqs_batch({"Records": records}, batcher, clock, buckets=settings.buckets)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages) if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=queue, Entries=done)
    target = batch_state.open_target(box.clients, stack=n.edp_stack)
    open_now = batch_state.open_rows(target.store, clock)
    report(Step("omics-edp batches list", f"{sent} S3 objects over {len(BURST)} prefixes went through "
                f"S3 → EventBridge → SQS → ingest; {len(open_now)} batch(es) still open",
                [{k: r[k] for k in ("prefix", "count", "flush_in_seconds")} for r in open_now]))
    # The every-minute flush, now that the quiet time has passed.
    flushed = batcher.flush(now)
    if flushed.unpublished or flushed.failed_keys:
        raise OperationError("the demo flush could not publish every batch")
    received = sorted(_consumed(box, n), key=lambda e: (e["detail"]["prefix"], e["detail"]["first_event_at"]))
    result.ready_events = received
    result.batches_emitted = len(received)
    rows = [{"prefix": e["detail"]["prefix"], "count": e["detail"]["count"],
             "trigger": e["detail"]["trigger"], "emitted_at": e["time"], "batch_id": e["detail"]["batch_id"]}
            for e in received]
    report(Step("EDP batcher", f"{len(received)} package-objects-ready events received from {n.event_bus} "
                f"(count {rules.count}, quiet {rules.quiet_seconds:g} s; "
                f"{', '.join(rules.ignore) or 'nothing'} ignored)", rows))


def _package(box: LocalSandbox, n: Names, report: Report, result: DemoResult) -> None:
    """The packager on every package-objects-ready event: Quilt packages in a local registry."""
    try:
        from omics_edp_cli.packager.config import PackagerSettings
        from omics_edp_cli.packager.packager import Packager
        from omics_edp_cli.packager.push import browse
    except ImportError:
        report(Step("Packager", "skipped: quilt3 is not installed (pip install 'omics-edp-cli[packager]')"))
        return
    s3 = box.clients.client("s3")
    s3.create_bucket(Bucket=n.registry)
    s3.put_bucket_versioning(Bucket=n.registry, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=n.registry, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    packager = Packager(PackagerSettings.checked(registry=n.registry), box.clients)
    rows = []
    for ready in result.ready_events:
        outcome = packager.package(ready)
        if outcome.outcome != "created":
            raise OperationError(f"the demo could not package {ready['detail']['prefix']}: {outcome.error}")
        result.packages_created += 1
        rows.append({"package": outcome.package, "top_hash": str(outcome.top_hash)[:12],
                     "entries": outcome.entries, "batch_id": outcome.batch_id})
    latest = {name: browse(n.registry, name) for name in dict.fromkeys(str(r["package"]) for r in rows)}
    report(Step("Packager", f"{len(rows)} Quilt package revision(s) in s3://{n.registry} "
                f"({', '.join(f'{k}: {len(list(v.walk()))} entries' for k, v in latest.items())})", rows))


def _inspect(box: LocalSandbox, n: Names, report: Report, result: DemoResult) -> None:
    queues = dlq.resolve_queues(box.clients, stack=n.processor_stack)
    groups = dlq.group(dlq.scan(box.clients, queues))
    result.dead_letters = sum(g["count"] for g in groups)
    report(Step("omics-edp dlq list", f"{result.dead_letters} dead letter(s) in {n.processor_stack}; "
                "the replay already delivered them, so `dlq purge --yes` is safe",
                [{k: g[k] for k in ("queue", "kind", "count", "signature")} for g in groups]))


def _count_archive(box: LocalSandbox, n: Names) -> int:
    listing = box.clients.client("s3").list_objects_v2(Bucket=n.data_lake, Prefix="omics-run-events/event_")
    return int(listing.get("KeyCount", 0))
