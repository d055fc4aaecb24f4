"""The dead-letter message shapes AWS writes (the fourth, SQS redrive, is made by SQS itself in tests)."""

from __future__ import annotations

import json
import uuid
from typing import Any

ACCOUNT = "123456789012"


def async_invocation_dlq(
    event: dict[str, Any], message: str, request_id: str | None = None
) -> dict[str, Any]:
    """`SendMessage` arguments for a Lambda asynchronous-invocation DLQ message (DeadLetterConfig)."""
    request_id = request_id or str(uuid.uuid4())
    return {
        "MessageBody": json.dumps(event),
        "MessageAttributes": {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": message.format(request_id=request_id)},
        },
    }


def destination_record(event: dict[str, Any], function: str, error_type: str, message: str,
                       region: str = "us-east-1") -> dict[str, Any]:
    """`SendMessage` arguments for a Lambda on-failure destination record."""
    record = {
        "version": "1.0",
        "timestamp": "2026-11-23T01:02:03.456Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": "",
            "stackTrace": ['  File "/var/task/omics_edp_cli/omics/handler.py", line 60, in lambda_handler\n'],
        },
    }
    return {"MessageBody": json.dumps(record)}


THROTTLED = ("Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; "
             "Request ID: {request_id}; Proxy: null)")


def eventbridge_target_dlq(
    event: dict[str, Any], rule_arn: str, target_arn: str, code: str = "THROTTLING",
    message: str = THROTTLED, attempts: int | None = 10,
    condition: str | None = "MaximumRetryAttempts",
) -> dict[str, Any]:
    """`SendMessage` arguments for an EventBridge rule target's dead-letter message: the original
    event as the body, the error in the attributes EventBridge sets (all strings)."""
    attributes = {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": target_arn,
        "ERROR_CODE": code,
        "ERROR_MESSAGE": message.format(request_id=uuid.uuid4()),
    }
    if attempts is not None:
        attributes["RETRY_ATTEMPTS"] = str(attempts)
    if condition is not None:
        attributes["EXHAUSTED_RETRY_CONDITION"] = condition
    return {
        "MessageBody": json.dumps(event),
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }
