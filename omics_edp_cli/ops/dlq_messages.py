"""The three shapes a dead-letter message comes in, and what each says about the failure.

* Lambda asynchronous-invocation DLQ (`DeadLetterConfig`): the body is the original event; the
  message attributes `RequestID`, `ErrorCode`, `ErrorMessage` carry the error.
* Lambda on-failure destination: the body is an invocation record with `requestContext`
  (function ARN, condition), `requestPayload` (the event), `responseContext`, `responsePayload`
  (the error the function raised).
* SQS redrive: after `maxReceiveCount` receives the message itself is moved; the body is the
  original message, attributes are kept, and AWS adds `DeadLetterQueueSourceArn`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["lambda-async", "lambda-destination", "sqs-redrive"]
LAMBDA_ASYNC: Kind = "lambda-async"
LAMBDA_DESTINATION: Kind = "lambda-destination"
SQS_REDRIVE: Kind = "sqs-redrive"
ASYNC_ERROR_ATTRIBUTES = ("RequestID", "ErrorCode", "ErrorMessage")

_ID_PATTERNS = (
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<id>"),
    (re.compile(r"\barn:aws[\w-]*:[^\s'\"]+"), "<arn>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<hex>"),
    (re.compile(r"(?<![\w.])\d{4,}(?![\w.])"), "<n>"),
)


def mask_ids(text: str) -> str:
    """The error message with request ids, ARNs, run ids and times masked, so equal causes group."""
    for pattern, placeholder in _ID_PATTERNS:
        text = pattern.sub(placeholder, text)
    return text.strip()


def function_name(function: str | None) -> str | None:
    """`my-fn` from `my-fn`, `arn:aws:lambda:r:a:function:my-fn` or `...:function:my-fn:$LATEST`."""
    if not function:
        return None
    if function.startswith("arn:"):
        parts = function.split(":")
        return parts[6] if len(parts) > 6 else function
    return function


def function_qualifier(function: str | None) -> str | None:
    """The version or alias of a qualified function ARN (None for `$LATEST` or unqualified)."""
    if not function or not function.startswith("arn:"):
        return None
    parts = function.split(":")
    qualifier = parts[7] if len(parts) > 7 else None
    return None if qualifier in (None, "", "$LATEST") else qualifier


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter message, parsed. `event` is what was originally sent or invoked."""

    queue_url: str
    message_id: str
    receipt_handle: str = field(repr=False)
    kind: Kind
    event: Any
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, Any] = field(default_factory=dict)
    function: str | None = None  # name or ARN of the Lambda function that failed
    source_queue_arn: str | None = None  # for SQS redrive, when AWS recorded it
    source_queue_url: str | None = None  # for SQS redrive: the queue known to feed this DLQ
    request_id: str | None = None
    error_code: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] | None = None
    condition: str | None = None  # destination records: RetriesExhausted, EventAgeExceeded, ...
    failed_at: datetime | None = None

    @property
    def queue_name(self) -> str:
        return self.queue_url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_lambda(self) -> bool:
        return self.kind != SQS_REDRIVE

    @property
    def source(self) -> str:
        """Where the message came from: the function, or the source queue."""
        if self.is_lambda:
            return f"lambda:{function_name(self.function) or '?'}"
        if self.source_queue_arn:
            return f"sqs:{self.source_queue_arn.rsplit(':', 1)[-1]}"
        if self.source_queue_url:
            return f"sqs:{self.source_queue_url.rstrip('/').rsplit('/', 1)[-1]}"
        return "sqs:?"

    @property
    def error(self) -> str:
        if self.error_message or self.error_type:
            return ": ".join(p for p in (self.error_type, self.error_message) if p)
        if self.error_code:
            return f"error code {self.error_code}"
        if self.kind == SQS_REDRIVE:
            return "not processed within the source queue's maxReceiveCount"
        return "no error recorded"

    @property
    def signature(self) -> str:
        """Failure signature: source + error message with ids masked."""
        return f"{self.source}: {mask_ids(self.error)[:300]}"

    def record(self) -> dict[str, Any]:
        """Everything about the message, JSON-ready (what `show` prints and `purge` saves)."""
        return {
            "message_id": self.message_id,
            "queue": self.queue_name,
            "kind": self.kind,
            "source": self.source,
            "function": self.function,
            "source_queue_arn": self.source_queue_arn,
            "source_queue_url": self.source_queue_url,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "request_id": self.request_id,
            "condition": self.condition,
            "error_code": self.error_code,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "stack_trace": self.stack_trace,
            "receive_count": self.attributes.get("ApproximateReceiveCount"),
            "event": self.event,
            "attributes": self.attributes,
            "message_attributes": self.message_attributes,
            "body": self.body,
        }


def parse_message(
    message: dict[str, Any],
    queue_url: str,
    default_function: str | None = None,
    default_source_queue: str | None = None,
) -> DeadLetter:
    """Recognise a received SQS message's shape.

    The defaults are what the stack says feeds this queue: an asynchronous-invocation message
    does not name its function, and moto (unlike AWS) does not record an SQS message's source.
    """
    body = message.get("Body", "")
    attributes = dict(message.get("Attributes") or {})
    message_attributes = dict(message.get("MessageAttributes") or {})
    decoded = _json(body)
    common: dict[str, Any] = {
        "queue_url": queue_url,
        "message_id": message["MessageId"],
        "receipt_handle": message.get("ReceiptHandle", ""),
        "body": body,
        "attributes": attributes,
        "message_attributes": message_attributes,
    }
    if isinstance(decoded, dict) and "requestContext" in decoded and "requestPayload" in decoded:
        request = decoded.get("requestContext") or {}
        response = decoded.get("responsePayload")
        error = response if isinstance(response, dict) else {}
        response_context = decoded.get("responseContext") or {}
        return DeadLetter(
            kind=LAMBDA_DESTINATION,
            event=decoded.get("requestPayload"),
            function=request.get("functionArn") or default_function,
            request_id=request.get("requestId"),
            condition=request.get("condition"),
            error_code=_str(response_context.get("functionError")),
            error_type=_str(error.get("errorType")),
            error_message=_str(error.get("errorMessage")) or (
                None if isinstance(response, dict) or response is None else str(response)),
            stack_trace=error.get("stackTrace") if isinstance(error.get("stackTrace"), list) else None,
            failed_at=_iso(decoded.get("timestamp")) or _sent_at(attributes),
            **common,
        )
    if any(name in message_attributes for name in ASYNC_ERROR_ATTRIBUTES):
        return DeadLetter(
            kind=LAMBDA_ASYNC,
            event=decoded if decoded is not None else body,
            function=default_function,
            request_id=_attribute(message_attributes, "RequestID"),
            error_code=_attribute(message_attributes, "ErrorCode"),
            error_message=_attribute(message_attributes, "ErrorMessage"),
            failed_at=_sent_at(attributes),
            **common,
        )
    return DeadLetter(
        kind=SQS_REDRIVE,
        event=decoded if decoded is not None else body,
        source_queue_arn=attributes.get("DeadLetterQueueSourceArn"),
        source_queue_url=default_source_queue,
        failed_at=_sent_at(attributes),
        **common,
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _attribute(attributes: dict[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, dict):
        return value.get("StringValue")
    return None


def _sent_at(attributes: dict[str, str]) -> datetime | None:
    stamp = attributes.get("SentTimestamp")
    if not stamp or not stamp.isdigit():
        return None
    return datetime.fromtimestamp(int(stamp) / 1000, tz=UTC)


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
