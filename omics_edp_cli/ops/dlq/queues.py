"""`omics-edp dlq`: read, group, redrive and purge the dead-letter queues of either stack.

Reading never consumes: messages are received with a visibility timeout (so one scan sees each
message once) and made visible again as soon as the scan ends, even if it fails. A message is
deleted only after its redrive succeeded, or after `purge` saved it to a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.ops.deployment import load_stack
from omics_edp_cli.ops.dlq.messages import (
    EVENTBRIDGE_TARGET,
    DeadLetter,
    function_name,
    function_qualifier,
    parse_message,
    target_label,
)
from omics_edp_cli.ops.ratelimit import RateLimiter

# The labels of every stack kind's DLQs (`DeployedStack.dead_letter_queues`, docs/CONTRACTS.md).
QUEUE_LABELS = ("processor", "ingest", "flush", "packager")
SCAN_VISIBILITY = 60  # seconds a scanned message stays hidden if we crash before releasing it
WORK_VISIBILITY = 900  # redrive / purge: long enough to finish before anyone else sees them
_EMPTY_RECEIVES = 3  # short polls may come back empty while messages remain (SQS samples servers)


@dataclass(frozen=True)
class DeadLetterQueue:
    """A DLQ and where its messages came from (`function`, `source_queue_url`: stack or flags)."""

    url: str
    label: str
    function: str | None = None
    source_queue_url: str | None = None
    function_is_override: bool = False
    source_is_override: bool = False

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


def resolve_queues(
    clients: ClientFactory,
    stack: str | None = None,
    queue_url: str | None = None,
    which: str | None = None,
    function: str | None = None,
    source_queue_url: str | None = None,
) -> list[DeadLetterQueue]:
    """The DLQs to work on: every DLQ output of `stack` (or the `which` one), or `queue_url`."""
    if bool(stack) == bool(queue_url):
        raise ConfigError("give --stack NAME or --queue-url URL (one of them)")
    if which is not None and which not in QUEUE_LABELS:
        raise ConfigError(f"--queue must be one of: {', '.join(QUEUE_LABELS)}")
    if queue_url:
        return [DeadLetterQueue(queue_url, queue_url.rstrip("/").rsplit("/", 1)[-1], function,
                                source_queue_url, bool(function), bool(source_queue_url))]
    deployed = load_stack(clients, str(stack))
    queues = [
        DeadLetterQueue(
            url=url,
            label=label,
            function=function or stack_function,
            source_queue_url=source_queue_url or stack_source,
            function_is_override=bool(function),
            source_is_override=bool(source_queue_url),
        )
        for label, url, stack_function, stack_source in deployed.dead_letter_queues()
        if which is None or which == label
    ]
    if not queues:
        labels = ", ".join(label for label, *_ in deployed.dead_letter_queues())
        raise ConfigError(f"stack {stack} is an omics-edp {deployed.kind} stack: its dead-letter "
                          f"queues are {labels}, not {which}")
    return queues


def _sqs_call(action: str, queue: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (BotoCoreError, ClientError) as e:
        raise OperationError(f"{action} {queue} failed: {e}") from e


def depth(sqs: Any, queue: DeadLetterQueue) -> dict[str, int]:
    """Approximate visible / in-flight / delayed message counts."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    attrs = _sqs_call("reading the depth of", queue.name, lambda: sqs.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=names)["Attributes"])
    return {
        "visible": int(attrs.get(names[0], 0)),
        "in_flight": int(attrs.get(names[1], 0)),
        "delayed": int(attrs.get(names[2], 0)),
    }


def receive(
    sqs: Any, queue: DeadLetterQueue, visibility: int, limit: int | None = None,
    skip: Iterable[str] = (),
) -> list[DeadLetter]:
    """Receive up to `limit` messages (all visible ones by default), hiding them for `visibility` s."""
    expected = depth(sqs, queue)["visible"]
    seen = set(skip)
    letters: list[DeadLetter] = []
    empties = 0
    while limit is None or len(letters) < limit:
        batch = min(10, limit - len(letters)) if limit is not None else 10
        response = _sqs_call("receiving from", queue.name, partial(
            sqs.receive_message, QueueUrl=queue.url, MaxNumberOfMessages=batch,
            VisibilityTimeout=visibility, WaitTimeSeconds=0, AttributeNames=["All"],
            MessageAttributeNames=["All"]))
        messages: list[dict[str, Any]] = response.get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        letters.extend(parse_message(m, queue.url, queue.function, queue.source_queue_url) for m in fresh)
        seen.update(m["MessageId"] for m in messages)
        if not fresh:
            empties += 1
            if len(letters) >= expected or empties >= _EMPTY_RECEIVES:
                break
    return letters


def release(sqs: Any, letters: Iterable[DeadLetter]) -> None:
    """Make messages visible again at once."""
    pending = list(letters)
    for start in range(0, len(pending), 10):
        chunk = pending[start:start + 10]
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                   for i, m in enumerate(chunk)]
        _sqs_call("releasing messages of", chunk[0].queue_name,
                  lambda c=chunk, e=entries: sqs.change_message_visibility_batch(  # type: ignore[misc]
                      QueueUrl=c[0].queue_url, Entries=e))


def delete(sqs: Any, letter: DeadLetter) -> None:
    _sqs_call("deleting a message from", letter.queue_name,
              lambda: sqs.delete_message(QueueUrl=letter.queue_url, ReceiptHandle=letter.receipt_handle))


@contextmanager
def peeked(sqs: Any, queue: DeadLetterQueue, limit: int | None = None) -> Iterator[list[DeadLetter]]:
    """The queue's messages, made visible again when the block ends (whatever happens in it)."""
    letters = receive(sqs, queue, SCAN_VISIBILITY, limit)
    try:
        yield letters
    finally:
        release(sqs, letters)


@dataclass(frozen=True)
class QueueScan:
    queue: DeadLetterQueue
    depth: dict[str, int]
    letters: list[DeadLetter]


def scan(clients: ClientFactory, queues: list[DeadLetterQueue], limit: int | None = None) -> list[QueueScan]:
    """Read every message of every queue without consuming any."""
    sqs = clients.client("sqs")
    scans = []
    for queue in queues:
        before = depth(sqs, queue)
        with peeked(sqs, queue, limit) as letters:
            scans.append(QueueScan(queue, before, letters))
    return scans


def group(scans: list[QueueScan], samples: int = 3) -> list[dict[str, Any]]:
    """Messages grouped by queue and failure signature, biggest group first."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for queue_scan in scans:
        for letter in queue_scan.letters:
            key = (queue_scan.queue.label, letter.signature)
            entry = groups.setdefault(key, {
                "queue": queue_scan.queue.label, "kind": letter.kind, "signature": letter.signature,
                "count": 0, "first": None, "last": None, "sample_ids": [],
            })
            entry["count"] += 1
            if letter.failed_at:
                entry["first"] = min(filter(None, (entry["first"], letter.failed_at)))
                entry["last"] = max(filter(None, (entry["last"], letter.failed_at)))
            if len(entry["sample_ids"]) < samples:
                entry["sample_ids"].append(letter.message_id)
    rows = sorted(groups.values(), key=lambda g: (-g["count"], g["queue"], g["signature"]))
    for row in rows:
        for name in ("first", "last"):
            row[name] = row[name].strftime("%Y-%m-%dT%H:%M:%SZ") if row[name] else None
    return rows


def find(clients: ClientFactory, queues: list[DeadLetterQueue], message_id: str) -> DeadLetter:
    """The message with this id (or unique id prefix), read without consuming it."""
    matches = [
        letter for queue_scan in scan(clients, queues) for letter in queue_scan.letters
        if letter.message_id == message_id or letter.message_id.startswith(message_id)
    ]
    exact = [m for m in matches if m.message_id == message_id]
    if exact:
        return exact[0]
    if not matches:
        names = ", ".join(q.name for q in queues)
        raise OperationError(f"no message {message_id!r} in {names} (it may be in flight: try again)")
    if len(matches) > 1:
        raise ConfigError(f"{message_id!r} matches {len(matches)} messages: give more of the id")
    return matches[0]


@dataclass(frozen=True)
class RedriveOutcome:
    message_id: str
    queue: str
    kind: str
    target: str
    outcome: str  # redriven | would redrive | failed
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "queue": self.queue, "kind": self.kind,
                "target": self.target, "outcome": self.outcome, "error": self.error}


class Redriver:
    """Sends dead letters back where they came from: SQS messages to their source queue, Lambda
    failures and EventBridge target failures to their function (asynchronous invoke with the
    original event)."""

    def __init__(self, clients: ClientFactory, rate: float | None = None,
                 on_outcome: Callable[[RedriveOutcome], None] | None = None):
        self.clients = clients
        self.sqs = clients.client("sqs")
        self.limiter = RateLimiter(rate)
        self.on_outcome = on_outcome or (lambda _: None)
        self._sources: dict[str, list[str]] = {}

    def run(self, queues: list[DeadLetterQueue], dry_run: bool = False,
            limit: int | None = None) -> list[RedriveOutcome]:
        outcomes: list[RedriveOutcome] = []
        for queue in queues:
            remaining = None if limit is None else limit - len(outcomes)
            if remaining is not None and remaining <= 0:
                break
            outcomes.extend(self._queue(queue, dry_run, remaining))
        return outcomes

    def _queue(self, queue: DeadLetterQueue, dry_run: bool, limit: int | None) -> list[RedriveOutcome]:
        # Cap at the depth we start with: a redriven message that fails again comes back to this
        # queue and must not be picked up again in the same run.
        budget = depth(self.sqs, queue)["visible"]
        budget = budget if limit is None else min(limit, budget)
        outcomes: list[RedriveOutcome] = []
        handled: set[str] = set()
        keep: list[DeadLetter] = []  # failed or dry-run: released when done
        try:
            while len(outcomes) < budget:
                chunk = receive(self.sqs, queue, WORK_VISIBILITY, min(10, budget - len(outcomes)),
                                skip=handled)
                if not chunk:
                    break
                for letter in chunk:
                    handled.add(letter.message_id)
                    outcome = self._one(queue, letter, dry_run)
                    if outcome.outcome != "redriven":
                        keep.append(letter)
                    outcomes.append(outcome)
                    self.on_outcome(outcome)
        finally:
            release(self.sqs, keep)
        return outcomes

    def _one(self, queue: DeadLetterQueue, letter: DeadLetter, dry_run: bool) -> RedriveOutcome:
        try:
            target, send = self._plan(queue, letter)
        except OperationError as e:
            where = target_label(letter.target_arn) if letter.kind == EVENTBRIDGE_TARGET else "?"
            return RedriveOutcome(letter.message_id, queue.label, letter.kind, where, "failed", str(e))
        if dry_run:
            return RedriveOutcome(letter.message_id, queue.label, letter.kind, target, "would redrive")
        self.limiter.acquire()
        try:
            send()
            # Deleted only now that the redrive succeeded.
            delete(self.sqs, letter)
        except OperationError as e:
            return RedriveOutcome(letter.message_id, queue.label, letter.kind, target, "failed", str(e))
        return RedriveOutcome(letter.message_id, queue.label, letter.kind, target, "redriven")

    def _plan(self, queue: DeadLetterQueue, letter: DeadLetter) -> tuple[str, Callable[[], None]]:
        eventbridge = letter.kind == EVENTBRIDGE_TARGET
        if eventbridge and not letter.is_lambda and not queue.function_is_override:
            if not letter.target_arn:
                raise OperationError("the EventBridge target of this message is unknown: pass --function")
            raise OperationError(
                f"the EventBridge target {target_label(letter.target_arn)} is not a Lambda function: "
                "only functions are re-invoked (pass --function to send the event to one)")
        if letter.is_lambda or eventbridge:
            # EventBridge messages name their target function (TARGET_ARN), like destination records.
            function = queue.function if queue.function_is_override else (letter.function or queue.function)
            if not function:
                raise OperationError("the function this message came from is unknown: pass --function")
            return f"lambda:{function_name(function)}", lambda: self._invoke(function, letter)
        source = self._source_queue(queue, letter)
        return f"sqs:{source.rsplit('/', 1)[-1]}", lambda: self._send(source, letter)

    def _invoke(self, function: str, letter: DeadLetter) -> None:
        args: dict[str, Any] = {"FunctionName": function, "InvocationType": "Event",
                                "Payload": json.dumps(letter.event).encode()}
        if function.startswith("arn:") and len(function.split(":")) > 7:
            # A qualified ARN: the function ARN plus `Qualifier` (none for $LATEST).
            args["FunctionName"] = function.rsplit(":", 1)[0]
            if qualifier := function_qualifier(function):
                args["Qualifier"] = qualifier
        try:
            response = self.clients.client("lambda").invoke(**args)
        except (BotoCoreError, ClientError) as e:
            raise OperationError(f"invoking {function_name(function)} failed: {e}") from e
        if response.get("StatusCode") != 202:
            raise OperationError(f"invoking {function_name(function)}: HTTP {response.get('StatusCode')}")

    def _send(self, source_url: str, letter: DeadLetter) -> None:
        args: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": letter.body}
        attributes = _sendable_attributes(letter.message_attributes)
        if attributes:
            args["MessageAttributes"] = attributes
        if source_url.endswith(".fifo"):
            args["MessageGroupId"] = letter.attributes.get("MessageGroupId", "redrive")
            args["MessageDeduplicationId"] = letter.attributes.get(
                "MessageDeduplicationId", letter.message_id)
        _sqs_call("sending a message to", source_url.rsplit("/", 1)[-1],
                  lambda: self.sqs.send_message(**args))

    def _source_queue(self, queue: DeadLetterQueue, letter: DeadLetter) -> str:
        """Flag > the message's `DeadLetterQueueSourceArn` > the stack > the queues whose redrive
        policy targets this DLQ (when there is exactly one)."""
        if queue.source_is_override and queue.source_queue_url:
            return queue.source_queue_url
        if letter.source_queue_arn:
            _, _, _, _, account, name = letter.source_queue_arn.split(":", 5)
            return str(_sqs_call("finding queue", name, lambda: self.sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]))
        if queue.source_queue_url:
            return queue.source_queue_url
        if queue.url not in self._sources:
            self._sources[queue.url] = _sqs_call("listing the source queues of", queue.name,
                                                 lambda: self.sqs.list_dead_letter_source_queues(
                                                     QueueUrl=queue.url).get("queueUrls", []))
        sources = self._sources[queue.url]
        if len(sources) == 1:
            return sources[0]
        found = "no queue" if not sources else f"{len(sources)} queues"
        raise OperationError(
            f"source queue unknown ({found} redrive to {queue.name}): pass --source-queue-url")


def _sendable_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as `SendMessage` takes them (receive adds empty list fields)."""
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        entry = {k: v for k, v in value.items()
                 if k in ("DataType", "StringValue", "BinaryValue") and v not in (None, "", b"")}
        if "DataType" in entry and len(entry) > 1:
            clean[name] = entry
    return clean


@dataclass(frozen=True)
class PurgeResult:
    path: Path
    saved: int
    deleted: int


def default_purge_file(queues: list[DeadLetterQueue], now: datetime | None = None) -> Path:
    now = now or datetime.now(UTC)
    name = queues[0].name if len(queues) == 1 else "-".join(q.label for q in queues)
    return Path(f"dlq-{name}-{now:%Y%m%dT%H%M%SZ}.jsonl")


def purge(clients: ClientFactory, queues: list[DeadLetterQueue], path: Path) -> PurgeResult:
    """Save every message to `path` (JSON lines, never overwriting a file), then delete exactly those.

    Deleting what was saved (not `PurgeQueue`) means a message arriving meanwhile is not lost.
    """
    sqs = clients.client("sqs")
    try:
        out = path.open("x", encoding="utf-8")
    except FileExistsError:
        raise ConfigError(f"{path} already exists: choose another --save file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot write: {e.strerror or e}") from None
    letters: list[DeadLetter] = []
    try:
        with out:
            for queue in queues:
                received = receive(sqs, queue, WORK_VISIBILITY)
                letters.extend(received)
                for letter in received:
                    out.write(json.dumps({**letter.record(), "queue_url": queue.url}, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        release(sqs, letters)
        raise
    deleted = 0
    for letter in letters:
        delete(sqs, letter)
        deleted += 1
    return PurgeResult(path, len(letters), deleted)
