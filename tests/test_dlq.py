"""`omics-edp dlq list|show|redrive|purge` against a moto server: the four message shapes, both stacks."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote

import pytest
from conftest import FIXTURES, sample_json
from replay.dlq_shapes import async_invocation_dlq, destination_record, eventbridge_target_dlq
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.cli.context import AppContext

runner = CliRunner()
TIMEOUT = "{request_id} Task timed out after 60.00 seconds (run {run})"
THROTTLED_SIGNATURE = ("THROTTLING: Rate Exceeded. (Service: AWSLambda; Status Code: 429; "
                       "Error Code: TooManyRequestsException; Request ID: <id>; Proxy: null)")


@dataclass
class Deployment:
    """A processor-like and an EDP-like stack whose DLQs hold one kind of message each."""

    sqs: Any
    clients: ClientFactory
    function: str
    processor_stack: str
    processor_dlq: str
    edp_stack: str
    ingest_queue: str
    ingest_dlq: str
    flush_dlq: str
    flush_function: str
    function_arn: str = ""
    rule: str = ""
    invoked: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, Any] = field(default_factory=dict)

    @property
    def processor_events(self) -> dict[str, Any]:
        """The processor DLQ's messages (every HealthOmics event) by message id."""
        return {k: v for k, v in self.events.items() if v["source"] == "aws.omics"}

    def cli(self, *args: str, output: str = "json") -> Any:
        # A wide terminal, so table cells are not wrapped mid-sentence. Rich reads COLUMNS when
        # a console is made, so it is set before the AppContext (and its consoles) exist.
        with mock.patch.dict(os.environ, {"COLUMNS": "250"}):
            return runner.invoke(app, ["-o", output, "dlq", *args], obj=AppContext(clients=self.clients))

    def visible(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def ids(self, url: str) -> set[str]:
        """Message ids in a queue, read without changing it (released at once)."""
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return {m["MessageId"] for m in got.get("Messages", [])}


def out(result: Any) -> Any:
    """The command's JSON. moto's in-process Lambda prints Docker warnings to stdout on every
    invoke (it cannot run the code), so skip anything before the document."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in "[{")
    return json.loads("\n".join(lines[start:]))


def _function(clients: ClientFactory, name: str) -> str:
    role = clients.client("iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return str(clients.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
        Code={"ZipFile": code.getvalue()})["FunctionArn"])


def _stack(clients: ClientFactory, name: str, outputs: dict[str, str], marker: str | None = None) -> None:
    """A stack with these outputs; `marker` is the parameter that tells its kind (ApiServer, BucketName)."""
    template = {
        "Parameters": {marker: {"Type": "String", "Default": "x"}} if marker else {},
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    clients.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, moto_server: str) -> Deployment:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    tag = uuid.uuid4().hex[:8]
    clients = ClientFactory()
    sqs = clients.client("sqs")
    function, flush_function = f"processor-{tag}", f"edp-flush-{tag}"
    function_arn = _function(clients, function)
    processor_dlq = sqs.create_queue(QueueName=f"processor-dlq-{tag}")["QueueUrl"]
    flush_dlq = sqs.create_queue(QueueName=f"flush-dlq-{tag}")["QueueUrl"]
    ingest_dlq = sqs.create_queue(QueueName=f"ingest-dlq-{tag}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=ingest_dlq, AttributeNames=["QueueArn"])
    ingest_queue = sqs.create_queue(QueueName=f"ingest-{tag}", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 1})})["QueueUrl"]
    deployment = Deployment(sqs, clients, function, f"proc-{tag}", processor_dlq, f"edp-{tag}",
                            ingest_queue, ingest_dlq, flush_dlq, flush_function, function_arn,
                            rule=f"proc-{tag}-RunStatusRule-1A2B3C4D")
    _stack(clients, deployment.processor_stack,
           {"DeadLetterQueueUrl": processor_dlq, "FunctionName": function}, "ApiServer")
    _stack(clients, deployment.edp_stack,
           {"IngestQueueUrl": ingest_queue, "IngestDeadLetterQueueUrl": ingest_dlq,
            "FlushDeadLetterQueueUrl": flush_dlq, "FlushFunctionName": flush_function}, "BucketName")

    # Processor DLQ: two async-invocation failures (same cause, different ids), one destination record.
    for status in ("RUNNING", "COMPLETED"):
        event = sample_json(status)
        body = async_invocation_dlq(event, TIMEOUT.replace("{run}", str(uuid.uuid4().int)[:7]))
        deployment.events[sqs.send_message(QueueUrl=processor_dlq, **body)["MessageId"]] = event
    failed = sample_json("failed")
    record = destination_record(
        failed, function, "DeliveryError",
        "callback to http://api.example/internal still failing after 5 attempts: HTTP 503")
    deployment.events[sqs.send_message(QueueUrl=processor_dlq, **record)["MessageId"]] = failed
    # ... and two events EventBridge could not hand to the function (the rule target's
    # DeadLetterConfig is the same queue): throttled, each with its own request id.
    rule_arn = f"arn:aws:events:us-east-1:123456789012:rule/{deployment.rule}"
    for status in ("STARTING", "CANCELLED"):
        event = sample_json(status)
        body = eventbridge_target_dlq(event, rule_arn, function_arn)
        deployment.events[sqs.send_message(QueueUrl=processor_dlq, **body)["MessageId"]] = event

    # EDP ingest DLQ: an S3 event the ingest function could not handle, moved by SQS itself.
    s3_event = json.loads((FIXTURES / "s3/object-created.json").read_text())
    sent = sqs.send_message(QueueUrl=ingest_queue, MessageBody=json.dumps(s3_event), MessageAttributes={
        "origin": {"DataType": "String", "StringValue": "eventbridge"}})
    for _ in range(2):  # received once without being deleted: the second receive moves it
        sqs.receive_message(QueueUrl=ingest_queue, VisibilityTimeout=0)
    deployment.events[sent["MessageId"]] = s3_event
    assert deployment.visible(ingest_dlq) == 1

    lam = clients.client("lambda")
    lam.meta.events.register("before-call.lambda.Invoke", lambda params, **_: deployment.invoked.append(
        {"path": params["url_path"], "type": params["headers"].get("X-Amz-Invocation-Type"),
         "event": json.loads(params["body"])}))
    return deployment


def test_list_groups_by_failure_signature_and_leaves_the_queue_as_it_was(deployment):
    before = deployment.ids(deployment.processor_dlq)

    result = deployment.cli("list", "--stack", deployment.processor_stack)

    assert result.exit_code == 0, result.output
    data = out(result)
    assert [(q["queue"], q["visible"]) for q in data["queues"]] == [("processor", 5)]
    groups = {(g["kind"], g["count"]): g for g in data["groups"]}
    assert set(groups) == {("lambda-async", 2), ("eventbridge-target", 2), ("lambda-destination", 1)}
    timeout = groups[("lambda-async", 2)]
    assert timeout["signature"] == (
        f"lambda:{deployment.function}: <id> Task timed out after 60.00 seconds (run <n>)")
    assert len(timeout["sample_ids"]) == 2 and timeout["first"] and timeout["last"]
    destination = groups[("lambda-destination", 1)]
    assert destination["signature"] == (
        f"lambda:{deployment.function}: DeliveryError: callback to http://api.example/internal "
        "still failing after 5 attempts: HTTP 503")
    assert destination["first"] == "2026-11-23T01:02:03Z"
    # EventBridge target failures: by rule and target, the request ids masked so both group.
    eventbridge = groups[("eventbridge-target", 2)]
    assert eventbridge["signature"] == (
        f"rule:{deployment.rule} -> lambda:{deployment.function}: {THROTTLED_SIGNATURE}")
    assert len(eventbridge["sample_ids"]) == 2 and eventbridge["first"] and eventbridge["last"]
    # Not consumed: every message is visible again at once.
    assert deployment.visible(deployment.processor_dlq) == 5
    assert deployment.ids(deployment.processor_dlq) == before


def test_list_shows_sqs_redrive_messages_of_the_edp_stack_with_their_source(deployment):
    result = deployment.cli("list", "--stack", deployment.edp_stack, output="table")

    assert result.exit_code == 0, result.output
    ingest_name = deployment.ingest_queue.rsplit("/", 1)[-1]
    assert f"sqs:{ingest_name}: not processed within the source queue's maxReceiveCount" in result.stdout
    assert "(ingest): 1 visible, 0 in flight" in result.stderr
    assert "(flush): 0 visible" in result.stderr
    assert deployment.visible(deployment.ingest_dlq) == 1


def test_show_prints_the_original_event_and_the_error_of_each_shape(deployment):
    kinds = set()
    for message_id, event in deployment.events.items():
        stack = deployment.edp_stack if event.get("source") == "aws.s3" else deployment.processor_stack
        result = deployment.cli("show", message_id, "--stack", stack)
        assert result.exit_code == 0, result.output
        shown = out(result)
        kinds.add(shown["kind"])
        assert shown["event"] == event
        if shown["kind"] == "lambda-async":
            assert shown["error_code"] == "200"
            assert "Task timed out after 60.00 seconds" in shown["error_message"]
            assert shown["request_id"] and shown["function"] == deployment.function
        elif shown["kind"] == "lambda-destination":
            assert (shown["error_type"], shown["condition"]) == ("DeliveryError", "RetriesExhausted")
            assert shown["stack_trace"] and shown["source"] == f"lambda:{deployment.function}"
        elif shown["kind"] == "eventbridge-target":
            assert shown["rule_arn"].endswith(f":rule/{deployment.rule}")
            assert shown["target_arn"] == shown["function"] == deployment.function_arn
            assert shown["error_code"] == "THROTTLING"
            assert shown["error_message"].startswith("Rate Exceeded. (Service: AWSLambda; Status Code: 429")
            assert (shown["condition"], shown["retry_attempts"]) == ("MaximumRetryAttempts", 10)
        else:
            assert shown["kind"] == "sqs-redrive"
            assert shown["message_attributes"]["origin"]["StringValue"] == "eventbridge"
    assert kinds == {"lambda-async", "lambda-destination", "eventbridge-target", "sqs-redrive"}
    assert deployment.visible(deployment.processor_dlq) == 5
    assert deployment.visible(deployment.ingest_dlq) == 1


def test_show_as_a_table_prints_the_error_then_the_event(deployment):
    message_id = next(i for i, e in deployment.events.items() if e["detail"].get("status") == "FAILED")

    result = deployment.cli("show", message_id[:8], "--stack", deployment.processor_stack, output="table")

    assert result.exit_code == 0, result.output
    assert "DeliveryError" in result.stdout and "RetriesExhausted" in result.stdout
    assert result.stdout.index("Stack trace:") < result.stdout.index("Original event:")
    assert '"status": "FAILED"' in result.stdout


def test_show_as_a_table_prints_an_eventbridge_failures_rule_target_and_error_then_the_event(deployment):
    message_id = next(i for i, e in deployment.events.items() if e["detail"].get("status") == "CANCELLED")

    result = deployment.cli("show", message_id, "--stack", deployment.processor_stack, output="table")

    assert result.exit_code == 0, result.output
    assert "eventbridge-target" in result.stdout
    assert f"rule:{deployment.rule} -> lambda:{deployment.function}" in result.stdout
    assert deployment.function_arn in result.stdout and "THROTTLING" in result.stdout
    assert "TooManyRequestsException" in result.stdout
    assert result.stdout.index("THROTTLING") < result.stdout.index("Original event:")
    assert result.stdout.index("Original event:") < result.stdout.index('"status": "CANCELLED"')


def test_show_an_unknown_id_fails_with_one_line(deployment):
    result = deployment.cli("show", "no-such-id", "--stack", deployment.processor_stack)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no message 'no-such-id' in processor-dlq-")


def test_redrive_reinvokes_lambda_failures_with_the_original_event_and_empties_the_queue(deployment):
    result = deployment.cli("redrive", "--stack", deployment.processor_stack, "--rate", "0")

    assert result.exit_code == 0, result.output
    rows = out(result)
    assert {r["outcome"] for r in rows} == {"redriven"} and len(rows) == 5
    assert sorted(r["kind"] for r in rows) == [
        "eventbridge-target", "eventbridge-target", "lambda-async", "lambda-async", "lambda-destination"]
    assert {r["target"] for r in rows} == {f"lambda:{deployment.function}"}
    assert all(call["type"] == "Event" for call in deployment.invoked)
    # By name for the async-invocation messages; by the (unqualified) ARN the destination record
    # or EventBridge's TARGET_ARN names otherwise.
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{deployment.function}"
    assert deployment.function_arn == arn
    assert sorted(unquote(call["path"]) for call in deployment.invoked) == sorted(
        [f"/2015-03-31/functions/{deployment.function}/invocations"] * 2
        + [f"/2015-03-31/functions/{arn}/invocations"] * 3)
    # Each original event exactly once (the EventBridge ones too, not the SQS message around them).
    assert sorted(json.dumps(c["event"]) for c in deployment.invoked) == sorted(
        json.dumps(e) for e in deployment.processor_events.values())
    assert deployment.visible(deployment.processor_dlq) == 0


def test_redrive_sends_sqs_messages_back_to_their_source_queue(deployment):
    result = deployment.cli("redrive", "--stack", deployment.edp_stack, "--queue", "ingest")

    assert result.exit_code == 0, result.output
    (row,) = out(result)
    assert (row["kind"], row["outcome"]) == ("sqs-redrive", "redriven")
    assert deployment.visible(deployment.ingest_dlq) == 0
    got = deployment.sqs.receive_message(QueueUrl=deployment.ingest_queue, MessageAttributeNames=["All"])
    (message,) = got["Messages"]
    assert json.loads(message["Body"]) == json.loads((FIXTURES / "s3/object-created.json").read_text())
    assert message["MessageAttributes"]["origin"]["StringValue"] == "eventbridge"


def test_redrive_by_queue_url_finds_the_source_queue_from_its_redrive_policy(deployment):
    result = deployment.cli("redrive", "--queue-url", deployment.ingest_dlq)

    assert result.exit_code == 0, result.output
    assert out(result)[0]["target"] == f"sqs:{deployment.ingest_queue.rsplit('/', 1)[-1]}"
    assert deployment.visible(deployment.ingest_queue) == 1


def test_a_failed_redrive_keeps_the_message(deployment):
    result = deployment.cli("redrive", "--queue-url", deployment.processor_dlq,
                            "--function", "no-such-function", "--rate", "0")

    assert result.exit_code == 1
    rows = out(result)
    assert [r["outcome"] for r in rows] == ["failed"] * 5
    assert all("ResourceNotFoundException" in r["error"] for r in rows)
    assert deployment.visible(deployment.processor_dlq) == 5  # nothing deleted, visible again


def test_an_async_failure_without_a_known_function_is_not_redriven(deployment):
    result = deployment.cli("redrive", "--queue-url", deployment.processor_dlq, "--rate", "0")

    assert result.exit_code == 1
    outcomes = {r["kind"]: r for r in out(result)}
    assert outcomes["lambda-async"]["error"] == (
        "the function this message came from is unknown: pass --function")
    assert outcomes["lambda-destination"]["outcome"] == "redriven"  # the record names its function
    assert outcomes["eventbridge-target"]["outcome"] == "redriven"  # so does TARGET_ARN
    assert deployment.visible(deployment.processor_dlq) == 2


def test_an_eventbridge_message_is_kept_when_its_target_cannot_be_reinvoked(deployment):
    """A target function that is gone, and a target that is not a function: both fail, both stay."""
    queue = deployment.sqs.create_queue(QueueName=f"rule-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    event = sample_json("running")
    rule_arn = "arn:aws:events:us-east-1:123456789012:rule/omics-edp-bus/package-ready"
    gone = f"arn:aws:lambda:us-east-1:123456789012:function:deleted-{uuid.uuid4().hex[:8]}"
    topic = "arn:aws:sns:us-east-1:123456789012:package-ready"
    for target, code in ((gone, "RESOURCE_NOT_FOUND"), (topic, "NO_PERMISSIONS")):
        deployment.sqs.send_message(QueueUrl=queue, **eventbridge_target_dlq(
            event, rule_arn, target, code, "target unavailable", attempts=None, condition=None))

    result = deployment.cli("redrive", "--queue-url", queue, "--rate", "0")

    assert result.exit_code == 1
    rows = {r["target"]: r for r in out(result)}
    assert {r["outcome"] for r in rows.values()} == {"failed"}
    assert "ResourceNotFoundException" in rows[f"lambda:{gone.rsplit(':', 1)[-1]}"]["error"]
    assert rows["sns:package-ready"]["error"] == (
        "the EventBridge target sns:package-ready is not a Lambda function: "
        "only functions are re-invoked (pass --function to send the event to one)")
    assert deployment.visible(queue) == 2  # nothing deleted

    listed = out(deployment.cli("list", "--queue-url", queue))
    assert sorted(g["signature"] for g in listed["groups"]) == [
        f"rule:package-ready -> lambda:{gone.rsplit(':', 1)[-1]}: RESOURCE_NOT_FOUND: target unavailable",
        "rule:package-ready -> sns:package-ready: NO_PERMISSIONS: target unavailable",
    ]


def test_redrive_dry_run_and_limit(deployment):
    dry = deployment.cli("redrive", "--stack", deployment.processor_stack, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert {r["outcome"] for r in out(dry)} == {"would redrive"}
    assert "dry run: nothing sent or deleted" in dry.stderr
    assert deployment.invoked == [] and deployment.visible(deployment.processor_dlq) == 5

    one = deployment.cli("redrive", "--stack", deployment.processor_stack, "--limit", "1")
    assert one.exit_code == 0, one.output
    assert len(out(one)) == 1 and len(deployment.invoked) == 1
    assert deployment.visible(deployment.processor_dlq) == 4


def test_purge_needs_yes_then_saves_every_message_before_deleting(deployment, tmp_path: Path):
    refused = deployment.cli("purge", "--stack", deployment.processor_stack)
    assert refused.exit_code == 2
    assert "pass --yes" in refused.stderr
    assert deployment.visible(deployment.processor_dlq) == 5

    saved = tmp_path / "saved.jsonl"
    result = deployment.cli("purge", "--stack", deployment.processor_stack, "--save", str(saved), "--yes")

    assert result.exit_code == 0, result.output
    assert f"Saved 5 message(s) to {saved}; deleted 5." in result.stderr
    assert out(result) == {"saved": 5, "deleted": 5, "file": str(saved)}
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert {line["message_id"]: line["event"] for line in lines} == deployment.processor_events
    assert all(line["queue_url"] == deployment.processor_dlq for line in lines)
    assert deployment.visible(deployment.processor_dlq) == 0

    again = deployment.cli("purge", "--stack", deployment.processor_stack, "--save", str(saved), "--yes")
    assert again.exit_code == 2 and "already exists" in again.stderr

    # Rough edge 10: purging empty queues used to leave an empty report file behind.
    empty = tmp_path / "empty.jsonl"
    nothing = deployment.cli("purge", "--stack", deployment.processor_stack, "--save", str(empty), "--yes")
    assert nothing.exit_code == 0, nothing.output
    assert "Nothing to purge: the dead-letter queue is empty (no file written)." in nothing.stderr
    assert out(nothing) == {"saved": 0, "deleted": 0, "file": None}
    assert not empty.exists()


def test_purge_names_its_file_by_default(deployment, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = deployment.cli("purge", "--stack", deployment.edp_stack, "--queue", "ingest", "--yes")
    assert result.exit_code == 0, result.output
    (saved,) = tmp_path.glob("dlq-ingest-dlq-*.jsonl")
    assert f"to {saved.name}" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list"], "Error: give --stack NAME or --queue-url URL (one of them)"),
        (["show", "x", "--stack", "a", "--queue-url", "b"],
         "Error: give --stack NAME or --queue-url URL (one of them)"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = runner.invoke(app, ["dlq", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_a_stack_not_deployed_by_omics_edp_is_a_usage_error(deployment):
    name = f"plain-{uuid.uuid4().hex[:6]}"
    _stack(deployment.clients, name, {"Something": "else"})
    result = deployment.cli("list", "--stack", name)
    assert result.exit_code == 2
    assert f"Error: stack {name} was not deployed by omics-edp" in result.stderr


def test_a_queue_of_the_other_stack_kind_is_a_usage_error(deployment):
    result = deployment.cli("list", "--stack", deployment.processor_stack, "--queue", "ingest")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: stack {deployment.processor_stack} is an omics-edp processor stack: its dead-letter "
        "queues are processor, not ingest")


def test_redrive_reinvokes_the_packager_with_the_batch_event_it_failed_on(deployment):
    """A packager stack's DLQ: an async failure and an EventBridge target failure of a
    `package-objects-ready` event both go back to the packager function, event unchanged."""
    clients, sqs, tag = deployment.clients, deployment.sqs, uuid.uuid4().hex[:8]
    function = f"packager-{tag}"
    function_arn = _function(clients, function)
    dlq = sqs.create_queue(QueueName=f"packager-dlq-{tag}")["QueueUrl"]
    stack = f"pkg-{tag}"
    _stack(clients, stack, {"PackagerDeadLetterQueueUrl": dlq, "PackagerFunctionName": function,
                            "PackagerRuleName": f"{stack}-Rule"}, "RegistryBucket")
    batch = {"version": "0", "id": str(uuid.uuid4()), "source": "com.quiltdata.edp",
             "detail-type": "package-objects-ready", "detail": {
                 "bucket": "lab-raw", "prefix": "instrument/run-7/", "count": 3,
                 "batch_id": f"b-{tag}", "manifest": f"s3://edp-state/manifests/b-{tag}.jsonl"}}
    timeout = TIMEOUT.replace("{run}", "1")
    sqs.send_message(QueueUrl=dlq, **async_invocation_dlq(batch, timeout))
    rule_arn = f"arn:aws:events:us-east-1:123456789012:rule/{stack}-Rule"
    sqs.send_message(QueueUrl=dlq, **eventbridge_target_dlq(batch, rule_arn, function_arn))

    result = deployment.cli("redrive", "--stack", stack, "--rate", "0")

    assert result.exit_code == 0, result.output
    rows = out(result)
    assert [(r["outcome"], r["target"]) for r in rows] == [("redriven", f"lambda:{function}")] * 2
    assert sorted(r["kind"] for r in rows) == ["eventbridge-target", "lambda-async"]
    assert [c["event"] for c in deployment.invoked] == [batch, batch]
    assert all(call["type"] == "Event" and function in unquote(call["path"])
               for call in deployment.invoked)
    assert deployment.visible(dlq) == 0
