"""Recognising dead-letter shapes and grouping them by cause (pure, no AWS)."""

from __future__ import annotations

import json

import pytest
from conftest import fixture_json, sample_json
from replay.dlq_shapes import async_invocation_dlq, destination_record, eventbridge_target_dlq

from omics_edp_cli.ops.dlq.messages import (
    function_name,
    function_qualifier,
    mask_ids,
    parse_message,
    rule_name,
    target_label,
)
from omics_edp_cli.ops.dlq.queues import DeadLetterQueue, QueueScan, _sendable_attributes, group

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/processor-dlq"
EVENT = sample_json("completed")
RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/prod-omics-RunStatusRule-1A2B3C4D"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:prod-omics-processor"
THROTTLED = ("rule:prod-omics-RunStatusRule-1A2B3C4D -> lambda:prod-omics-processor: THROTTLING: "
             "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: "
             "TooManyRequestsException; Request ID: <id>; Proxy: null)")


def received(args: dict, message_id: str = "m-1", sent_ms: str = "1795395600000") -> dict:
    """What ReceiveMessage returns for a message sent with `args`."""
    return {"MessageId": message_id, "ReceiptHandle": "rh", "Body": args["MessageBody"],
            "Attributes": {"SentTimestamp": sent_ms, "ApproximateReceiveCount": "1"},
            "MessageAttributes": args.get("MessageAttributes", {})}


def test_async_invocation_message():
    args = async_invocation_dlq(EVENT, "{request_id} Task timed out", "6e0e7f3a-1c2b-4d5e-8f90-123456789abc")
    letter = parse_message(received(args), QUEUE, default_function="omics-processor")
    assert letter.kind == "lambda-async" and letter.event == EVENT
    assert (letter.request_id, letter.error_code) == ("6e0e7f3a-1c2b-4d5e-8f90-123456789abc", "200")
    assert letter.signature == "lambda:omics-processor: <id> Task timed out"
    assert letter.failed_at is not None and letter.failed_at.year == 2026
    assert letter.queue_name == "processor-dlq"


def test_destination_record():
    args = destination_record(EVENT, "omics-processor", "DeliveryError", "HTTP 503 for run 8567247")
    letter = parse_message(received(args), QUEUE)
    assert letter.kind == "lambda-destination" and letter.event == EVENT
    assert letter.function == "arn:aws:lambda:us-east-1:123456789012:function:omics-processor:$LATEST"
    assert (letter.condition, letter.error_code) == ("RetriesExhausted", "Unhandled")
    assert letter.signature == "lambda:omics-processor: DeliveryError: HTTP 503 for run <n>"
    assert letter.failed_at.isoformat() == "2026-11-23T01:02:03.456000+00:00"
    assert letter.stack_trace and letter.record()["stack_trace"] == letter.stack_trace


def test_eventbridge_target_failure_message():
    # The processor stack's rule target has the same DLQ as the function (DeadLetterConfig).
    letter = parse_message(received(eventbridge_target_dlq(EVENT, RULE_ARN, FUNCTION_ARN)), QUEUE,
                           default_function="omics-processor", default_source_queue=QUEUE)
    assert letter.kind == "eventbridge-target" and letter.event == EVENT
    assert (letter.rule_arn, letter.target_arn) == (RULE_ARN, FUNCTION_ARN)
    assert letter.function == FUNCTION_ARN and letter.is_lambda  # redriven to TARGET_ARN
    assert letter.source_queue_url is None  # not an SQS redrive
    assert (letter.error_code, letter.condition, letter.retry_attempts) == (
        "THROTTLING", "MaximumRetryAttempts", 10)
    assert letter.error_message.startswith("Rate Exceeded. (Service: AWSLambda; Status Code: 429;")
    assert letter.signature == THROTTLED
    assert letter.failed_at is not None and letter.failed_at.year == 2026
    record = letter.record()
    assert (record["rule_arn"], record["target_arn"], record["error_code"]) == (
        RULE_ARN, FUNCTION_ARN, "THROTTLING")
    assert record["event"] == EVENT


def test_an_eventbridge_message_for_a_target_that_is_not_a_function():
    args = eventbridge_target_dlq(
        EVENT, "arn:aws:events:us-east-1:123456789012:rule/omics-edp-bus/package-ready",
        "arn:aws:sns:us-east-1:123456789012:package-ready", "NO_PERMISSIONS",
        "User: arn:aws:sts::123456789012:assumed-role/x is not authorized", attempts=None, condition=None)
    letter = parse_message(received(args), QUEUE, default_function="omics-processor")
    assert letter.kind == "eventbridge-target" and not letter.is_lambda and letter.function is None
    assert (letter.retry_attempts, letter.condition) == (None, None)
    assert letter.signature == (
        "rule:package-ready -> sns:package-ready: NO_PERMISSIONS: User: <arn> is not authorized")


@pytest.mark.parametrize(
    ("arn", "label"),
    [
        (FUNCTION_ARN, "lambda:prod-omics-processor"),
        (f"{FUNCTION_ARN}:live", "lambda:prod-omics-processor"),
        ("arn:aws:sns:us-east-1:123456789012:topic", "sns:topic"),
        ("arn:aws:sqs:us-east-1:123456789012:queue", "sqs:queue"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:flow", "states:stateMachine:flow"),
        ("arn:aws:events:us-east-1:123456789012:event-bus/other", "events:other"),
        (None, "?"),
    ],
)
def test_target_label(arn, label):
    assert target_label(arn) == label


def test_rule_name_on_the_default_and_a_custom_bus():
    assert rule_name(RULE_ARN) == "prod-omics-RunStatusRule-1A2B3C4D"
    assert rule_name("arn:aws:events:us-east-1:123456789012:rule/my-bus/my-rule") == "my-rule"
    assert rule_name(None) is None


def test_sqs_redrive_message_keeps_body_and_attributes():
    body = json.dumps(fixture_json("s3/object-created.json"))
    message = received({"MessageBody": body, "MessageAttributes": {
        "origin": {"DataType": "String", "StringValue": "eventbridge", "StringListValues": []}}})
    message["Attributes"]["DeadLetterQueueSourceArn"] = "arn:aws:sqs:us-east-1:123456789012:edp-ingest"
    letter = parse_message(message, QUEUE)
    assert letter.kind == "sqs-redrive" and letter.event["source"] == "aws.s3"
    assert letter.source == "sqs:edp-ingest"
    assert _sendable_attributes(letter.message_attributes) == {
        "origin": {"DataType": "String", "StringValue": "eventbridge"}}


def test_a_non_json_body_is_kept_as_text():
    letter = parse_message(received({"MessageBody": "plain text"}), QUEUE, default_source_queue=QUEUE)
    assert (letter.kind, letter.event, letter.source) == ("sqs-redrive", "plain text", "sqs:processor-dlq")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("RequestId: 6e0e7f3a-1c2b-4d5e-8f90-123456789abc Error", "RequestId: <id> Error"),
        ("at 2026-11-23T01:02:03.456Z run 8567247", "at <time> run <n>"),
        ("role arn:aws:iam::123456789012:role/x denied", "role <arn> denied"),
        ("etag b1946ac92492d2347c6235b4d2611184", "etag <hex>"),
        ("Task timed out after 60.00 seconds", "Task timed out after 60.00 seconds"),
    ],
)
def test_mask_ids(text, masked):
    assert mask_ids(text) == masked


@pytest.mark.parametrize(
    ("function", "name", "qualifier"),
    [
        ("my-fn", "my-fn", None),
        ("arn:aws:lambda:us-east-1:1:function:my-fn", "my-fn", None),
        ("arn:aws:lambda:us-east-1:1:function:my-fn:$LATEST", "my-fn", None),
        ("arn:aws:lambda:us-east-1:1:function:my-fn:live", "my-fn", "live"),
    ],
)
def test_function_name_and_qualifier(function, name, qualifier):
    assert (function_name(function), function_qualifier(function)) == (name, qualifier)


def test_group_counts_same_cause_and_orders_biggest_first():
    queue = DeadLetterQueue(QUEUE, "processor", function="omics-processor")
    letters = [
        parse_message(received(async_invocation_dlq(EVENT, "{request_id} Task timed out"), f"t{i}",
                               str(1795395600000 + i * 60_000)), QUEUE, queue.function)
        for i in range(4)
    ] + [parse_message(received(destination_record(EVENT, "omics-processor", "KeyError", "'x'"), "d"),
                       QUEUE)] + [
        # Throttled twice, each time with another request id: one cause, one group.
        parse_message(received(eventbridge_target_dlq(EVENT, RULE_ARN, FUNCTION_ARN), f"e{i}"),
                      QUEUE, queue.function)
        for i in range(2)
    ]
    rows = group([QueueScan(queue, {"visible": 7, "in_flight": 0, "delayed": 0}, letters)])
    assert [(r["count"], r["kind"]) for r in rows] == [
        (4, "lambda-async"), (2, "eventbridge-target"), (1, "lambda-destination")]
    assert (rows[1]["signature"], rows[1]["sample_ids"]) == (THROTTLED, ["e0", "e1"])
    assert rows[0]["sample_ids"] == ["t0", "t1", "t2"]
    assert (rows[0]["first"], rows[0]["last"]) == ("2026-11-23T01:00:00Z", "2026-11-23T01:03:00Z")
