"""The four shapes a dead-letter message comes in, and what each says about the failure.

* Lambda asynchronous-invocation DLQ (`DeadLetterConfig`): the body is the original event; the
  message attributes `RequestID`, `ErrorCode`, `ErrorMessage` carry the error.
* Lambda on-failure destination: the body is an invocation record with `requestContext`
  (function ARN, condition), `requestPayload` (the event), `responseContext`, `responsePayload`
  (the error the function raised).
* EventBridge target DLQ (a rule target's `DeadLetterConfig`): EventBridge could not invoke the
  target at all (permissions, throttling, a deleted function). The body is the original event; the
  message attributes `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE` (and
  `EXHAUSTED_RETRY_CONDITION`, `RETRY_ATTEMPTS` when retries ran out) carry the error.
* SQS redrive: after `maxReceiveCount` receives the message itself is moved; the body is the
  original message, attributes are kept, and AWS adds `DeadLetterQueueSourceArn`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from omics_edp_cli.omics.secrets import redact
from omics_edp_cli.timefmt import parse_time

Kind = Literal["lambda-async", "lambda-destination", "eventbridge-target", "sqs-redrive"]
LAMBDA_ASYNC: Kind = "lambda-async"
LAMBDA_DESTINATION: Kind = "lambda-destination"
EVENTBRIDGE_TARGET: Kind = "eventbridge-target"
SQS_REDRIVE: Kind = "sqs-redrive"
ASYNC_ERROR_ATTRIBUTES = ("RequestID", "ErrorCode", "ErrorMessage")
EVENTBRIDGE_ATTRIBUTES = ("RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE")

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


def is_lambda_arn(arn: str | None) -> bool:
    return bool(arn) and str(arn).split(":")[2:3] == ["lambda"]


def rule_name(rule_arn: str | None) -> str | None:
    """`my-rule` from `arn:aws:events:r:a:rule/my-rule` or `...:rule/my-bus/my-rule`."""
    if not rule_arn:
        return None
    return rule_arn.rsplit("/", 1)[-1] if "/" in rule_arn else rule_arn.rsplit(":", 1)[-1]


def target_label(target_arn: str | None) -> str:
    """`lambda:my-fn` for a function; `sns:my-topic`, `sqs:my-queue`... for other targets."""
    if not target_arn:
        return "?"
    if is_lambda_arn(target_arn):
        return f"lambda:{function_name(target_arn)}"
    parts = target_arn.split(":", 5)
    if len(parts) < 6:
        return target_arn
    return f"{parts[2]}:{parts[5].rsplit('/', 1)[-1]}"


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
    rule_arn: str | None = None  # EventBridge: the rule whose target could not be invoked
    target_arn: str | None = None  # EventBridge: that target
    retry_attempts: int | None = None  # EventBridge: attempts made before giving up
    request_id: str | None = None
    error_code: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] | None = None
    condition: str | None = None  # RetriesExhausted, EventAgeExceeded (destination records);
    # MaximumRetryAttempts, MaximumEventAgeInSeconds (EventBridge)
    failed_at: datetime | None = None

    @property
    def queue_name(self) -> str:
        return self.queue_url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_lambda(self) -> bool:
        """Redriven by invoking a function (an EventBridge message: when its target is one)."""
        if self.kind == EVENTBRIDGE_TARGET:
            return is_lambda_arn(self.target_arn)
        return self.kind != SQS_REDRIVE

    @property
    def source(self) -> str:
        """Where the message came from: the function, the rule and its target, or the source queue."""
        if self.kind == EVENTBRIDGE_TARGET:
            return f"rule:{rule_name(self.rule_arn) or '?'} -> {target_label(self.target_arn)}"
        if self.is_lambda:
            return f"lambda:{function_name(self.function) or '?'}"
        if self.source_queue_arn:
            return f"sqs:{self.source_queue_arn.rsplit(':', 1)[-1]}"
        if self.source_queue_url:
            return f"sqs:{self.source_queue_url.rstrip('/').rsplit('/', 1)[-1]}"
        return "sqs:?"

    @property
    def error(self) -> str:
        if self.kind == EVENTBRIDGE_TARGET:
            # ERROR_CODE (NO_PERMISSIONS, THROTTLING, RESOURCE_NOT_FOUND...) then ERROR_MESSAGE.
            parts = [p for p in (self.error_code, self.error_message) if p]
            return ": ".join(parts) if parts else "no error recorded"
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
        # Secrets first: masking ids could break a token apart so the redactor no longer knows it.
        return f"{self.source}: {mask_ids(redact(self.error))[:300]}"

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
            "rule_arn": self.rule_arn,
            "target_arn": self.target_arn,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "request_id": self.request_id,
            "condition": self.condition,
            "retry_attempts": self.retry_attempts,
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
    event = decoded if decoded is not None else body
    common: dict[str, Any] = {
        "queue_url": queue_url,
        "message_id": message["MessageId"],
        "receipt_handle": message.get("ReceiptHandle", ""),
        "body": body,
        "attributes": attributes,
        "message_attributes": message_attributes,
    }
    if any(name in message_attributes for name in EVENTBRIDGE_ATTRIBUTES):
        # Checked first: the attributes are EventBridge's own, whatever the event in the body is.
        target = _attribute(message_attributes, "TARGET_ARN")
        attempts = _attribute(message_attributes, "RETRY_ATTEMPTS")
        return DeadLetter(
            kind=EVENTBRIDGE_TARGET,
            event=event,
            function=target if is_lambda_arn(target) else None,
            rule_arn=_attribute(message_attributes, "RULE_ARN"),
            target_arn=target,
            retry_attempts=int(attempts) if attempts and attempts.isdigit() else None,
            condition=_attribute(message_attributes, "EXHAUSTED_RETRY_CONDITION"),
            error_code=_attribute(message_attributes, "ERROR_CODE"),
            error_message=_attribute(message_attributes, "ERROR_MESSAGE"),
            failed_at=_sent_at(attributes),
            **common,
        )
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
            event=event,
            function=default_function,
            request_id=_attribute(message_attributes, "RequestID"),
            error_code=_attribute(message_attributes, "ErrorCode"),
            error_message=_attribute(message_attributes, "ErrorMessage"),
            failed_at=_sent_at(attributes),
            **common,
        )
    return DeadLetter(
        kind=SQS_REDRIVE,
        event=event,
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
        return parse_time(value)
    except ValueError:
        return None
