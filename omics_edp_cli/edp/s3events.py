"""S3 object events in every shape a user has, reduced to one small `ObjectEvent`.

Shapes: the EventBridge `Object Created` event; classic S3 notifications (`Records[]`, keys
URL-encoded with `+` for spaces); either of them inside an SQS message (a Lambda SQS record's
`body`, or a `ReceiveMessage` message's `Body`) or an SNS notification (a Lambda SNS record,
or the SNS envelope an SQS subscription receives). Other S3 event types (deletions, restores,
the `s3:TestEvent`) are not object creations: they yield nothing rather than an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from omics_edp_cli import timefmt
from omics_edp_cli.errors import ConfigError


class S3EventError(ConfigError):
    """A message that is not a (well-formed) S3 event; retrying cannot fix it."""


@dataclass(slots=True)
class ObjectEvent:
    """One object creation. `time` is epoch seconds (the event's own time, not arrival).

    `digest` identifies the write for de-duplication: a repeated delivery has the same one
    (see `object_digest`).
    (Not frozen: a frozen dataclass costs four times as much to create, and the simulator
    creates one per event; `__init__` is written out for the same reason.)
    """

    bucket: str
    key: str
    sequencer: str
    time: float
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    digest: int = field(init=False, repr=False, compare=False)

    def __init__(self, bucket: str, key: str, sequencer: str, time: float, size: int | None = None,
                 etag: str | None = None, version_id: str | None = None) -> None:
        self.bucket, self.key, self.sequencer, self.time = bucket, key, sequencer, time
        self.size, self.etag, self.version_id = size, etag, version_id
        self.digest = object_digest(key, sequencer)


def object_digest(key: str, sequencer: str) -> int:
    """The 8-byte BLAKE2b digest of key and sequencer, as an unsigned int (its 16 hex digits,
    big-endian, are what a batch id and the stored state are made of): short enough to keep
    thousands in one DynamoDB item, and 8 bytes in the engine's de-duplication window."""
    return int.from_bytes(hashlib.blake2b(f"{key}\0{sequencer}".encode(), digest_size=8).digest(), "big")


_time_cache: dict[str, float] = {}


def parse_time(text: str) -> float:
    """ISO 8601 (`2026-03-02T10:15:00Z`, with or without fraction or offset) → epoch seconds."""
    if type(text) is not str:
        raise S3EventError(f"bad event time {text!r}: not a string")
    cached = _time_cache.get(text)
    if cached is not None:
        return cached
    try:
        value = timefmt.parse_time(text).timestamp()
    except ValueError:
        raise S3EventError(f"bad event time {text!r}") from None
    # Bursts share timestamps (EventBridge times have one-second resolution).
    if len(_time_cache) > 4096:
        _time_cache.clear()
    _time_cache[text] = value
    return value


_iso_cache: dict[float, str] = {}


def iso_time(epoch: float) -> str:
    """Epoch seconds → `2026-03-02T10:15:00Z` (milliseconds only when there are some)."""
    text = _iso_cache.get(epoch)
    if text is None:
        text = timefmt.iso_z(datetime.fromtimestamp(epoch, UTC))
        # Emissions share times (flush ticks, one-second event times): each is written 3 times.
        if len(_iso_cache) > 4096:
            _iso_cache.clear()
        _iso_cache[epoch] = text
    return text


def parse_message(message: Any) -> list[ObjectEvent]:
    """Every object-created event in one message of any supported shape (a dict or JSON text).

    Anything that is not a well-formed S3 event raises `S3EventError`, never another error:
    callers (the ingest Lambda, the simulator) rely on it to set one bad message aside.
    """
    if type(message) is dict and "detail-type" in message:  # the common case first
        return _eventbridge(message)
    try:
        return _parse(message)
    except RecursionError:  # nested deeper than Python's stack (JSON arrays, wrappers)
        raise S3EventError("nested too deeply to be an S3 event") from None


def _parse(message: Any) -> list[ObjectEvent]:
    if isinstance(message, (str, bytes, bytearray)):
        try:
            message = json.loads(message)
        except ValueError as e:  # json.JSONDecodeError, UnicodeDecodeError
            raise S3EventError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise S3EventError(f"expected a JSON object, got {type(message).__name__}")
    if "detail-type" in message or "detail" in message:
        return _eventbridge(message)
    records = message.get("Records")
    if records is not None:
        if not isinstance(records, list):
            raise S3EventError("'Records' is not a list")
        events: list[ObjectEvent] = []
        for record in records:
            events.extend(_record(record))
        return events
    if "Body" in message:  # a message as SQS ReceiveMessage returns it
        return _parse(message["Body"])
    if message.get("Type") == "Notification" and "Message" in message:  # SNS → SQS envelope
        return _parse(message["Message"])
    if message.get("Event") == "s3:TestEvent":
        return []
    if "s3" in message and "eventName" in message:  # one classic record on its own
        return _classic(message)
    raise S3EventError(
        "not an S3 event: expected an EventBridge event, S3 Records, or an SQS/SNS message holding one"
    )


def _record(record: Any) -> list[ObjectEvent]:
    if not isinstance(record, dict):
        raise S3EventError("a record in 'Records' is not an object")
    if "body" in record:  # Lambda SQS record
        return _parse(record["body"])
    if "Sns" in record:  # Lambda SNS record
        sns = record["Sns"]
        if not isinstance(sns, dict) or "Message" not in sns:
            raise S3EventError("SNS record without a Message")
        return _parse(sns["Message"])
    if "s3" in record:
        return _classic(record)
    raise S3EventError("a record in 'Records' is neither S3, SQS nor SNS")


def _eventbridge(event: dict[str, Any]) -> list[ObjectEvent]:
    source = event.get("source")
    if source != "aws.s3":
        raise S3EventError(f"EventBridge event from {source or 'no source'}, not aws.s3")
    if event.get("detail-type") != "Object Created":
        return []
    return [eventbridge_object(event)]


def eventbridge_object(event: dict[str, Any]) -> ObjectEvent:
    """The object of an EventBridge `Object Created` event (source and type already checked)."""
    try:
        detail = event["detail"]
        obj = detail["object"]
        key = obj["key"]
        bucket = detail["bucket"]["name"]
        text = event["time"]
    except KeyError as e:
        raise S3EventError(f"EventBridge S3 event without {e}") from None
    except TypeError:  # a string or list where an object belongs
        raise S3EventError("EventBridge S3 event whose detail, bucket or object is not an object") from None
    return eventbridge_fields(bucket, key, text, obj.get("sequencer"), obj.get("etag"),
                              obj.get("size"), obj.get("version-id"))


def eventbridge_fields(bucket: Any, key: Any, text: Any, sequencer: Any, etag: Any, size: Any,
                       version: Any) -> ObjectEvent:
    """The `ObjectEvent` of an EventBridge `Object Created` event's fields, as JSON decoded them
    (`detail.bucket.name`, `detail.object.key`, `time`, and the object's `sequencer`, `etag`,
    `size` and `version-id`, None where absent): one set of rules for every reader."""
    if type(key) is not str or not key or type(bucket) is not str or not bucket:
        raise S3EventError("EventBridge S3 event with an empty or non-string bucket name or object key")
    when = _time_cache.get(text) if type(text) is str else None
    if when is None:
        when = parse_time(text)
    sequencer = sequencer or etag or ""
    return ObjectEvent(bucket, key, sequencer if type(sequencer) is str else str(sequencer),
                       when, size if type(size) is int else None,
                       etag if type(etag) is str else None, version if type(version) is str else None)


def _classic(record: dict[str, Any]) -> list[ObjectEvent]:
    name = record.get("eventName")
    if type(name) is not str:
        raise S3EventError("S3 notification record without a string 'eventName'")
    if not name.startswith("ObjectCreated:"):
        return []
    try:
        s3 = record["s3"]
        obj = s3["object"]
        key = obj["key"]
        bucket = s3["bucket"]["name"]
        when = record["eventTime"]
    except KeyError as e:
        raise S3EventError(f"S3 notification record without {e}") from None
    except TypeError:  # a string or list where an object belongs
        raise S3EventError("S3 notification record whose s3, bucket or object is not an object") from None
    for what, value in (("object key", key), ("bucket name", bucket)):
        if type(value) is not str:
            raise S3EventError(f"S3 notification record whose {what} is not a string "
                               f"({type(value).__name__})")
    key = unquote_plus(key)
    if not key or not bucket:
        raise S3EventError("S3 notification record with an empty bucket or key")
    size = obj.get("size")
    etag, version = obj.get("eTag"), obj.get("versionId")
    return [ObjectEvent(bucket, key, str(obj.get("sequencer") or obj.get("eTag") or ""),
                        parse_time(when), size if type(size) is int else None,
                        etag if type(etag) is str else None, version if type(version) is str else None)]
