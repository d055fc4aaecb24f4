"""The three dead-letter message shapes, as AWS writes them."""

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
