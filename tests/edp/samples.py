"""S3 event builders for the EDP tests: the shapes AWS delivers, with real field names."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote_plus

BUCKET = "instrument-bucket"


def eventbridge_event(
    key: str, sequencer: str, *, bucket: str = BUCKET, time: str = "2026-03-02T10:15:00Z",
    detail_type: str = "Object Created",
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{bucket}/{key}/{sequencer}")),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1024, "etag": "d41d8cd98f00b204e9800998ecf8427e",
                       "sequencer": sequencer},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def classic_records(keys: list[str], sequencer: str, *, bucket: str = BUCKET,
                    name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {"Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-03-02T10:15:00.123Z",
            "eventName": name,
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                "object": {"key": quote_plus(key, safe="/"), "size": 1024, "eTag": "abc",
                           "sequencer": f"{sequencer}{i}" if len(keys) > 1 else sequencer},
            },
        }
        for i, key in enumerate(keys)
    ]}


def sqs_record(body: Any, message_id: str | None = None) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or str(uuid.uuid5(uuid.NAMESPACE_URL, text)),
        "receiptHandle": "AQEB...",
        "body": text,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:edp-ingest",
        "awsRegion": "us-east-1",
    }


def sqs_lambda_event(bodies: list[Any]) -> dict[str, Any]:
    return {"Records": [sqs_record(b) for b in bodies]}


def receive_message(body: Any) -> dict[str, Any]:
    return {"MessageId": "m-1", "ReceiptHandle": "r", "MD5OfBody": "", "Body": json.dumps(body)}


def sns_notification(message: Any) -> dict[str, Any]:
    """The envelope an SQS queue subscribed to SNS receives (raw delivery off)."""
    return {"Type": "Notification", "MessageId": "n-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Subject": "Amazon S3 Notification", "Message": json.dumps(message),
            "Timestamp": "2026-03-02T10:15:01.000Z"}


def sns_lambda_event(message: Any) -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                         "Sns": {"Type": "Notification", "Message": json.dumps(message)}}]}
