"""`simulate-batch --events`: a log of S3 events, one JSON value per line, read as `ObjectEvent`s.

Almost every line of such a log is one EventBridge `Object Created` event, of which the
simulator needs six fields. Those lines are decoded by msgspec straight into the few fields
needed (the rest of the line is checked, not built: a sixth of `json.loads`' time). Any line the
fast decoder does not take as such an event (any other shape, a JSON text msgspec declines,
bad JSON) goes the general way, `json.loads` and `parse_message`, which gives the same events or
the exact error. That is exact because msgspec accepts a subset of what `json.loads` accepts,
with the same values (tests/test_simulate_eventlog.py checks both on mutated lines), with one
difference kept on purpose: an integer of more than 4,300 digits in a field the simulator does
not read is skipped by msgspec, while `json.loads` refuses it (Python's guard against slow
int conversion); the event is taken, as the rest of the line is a valid event.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO

import msgspec

from omics_edp_cli.edp.s3events import (
    ObjectEvent,
    S3EventError,
    eventbridge_fields,
    eventbridge_object,
    parse_message,
)
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.simulate.sources import Source

# -- the fields of an EventBridge `Object Created` event, as msgspec decodes them ---------------
# Required where `eventbridge_object` requires them (a missing one fails the fast decoding, and
# the general way reports it); `Any` where it takes any JSON value; None where `dict.get` gives
# None. gc=False: they hold only strings and numbers (`Any` fields: scalars, or the line goes
# the general way), so the collector need not track them.


class _Object(msgspec.Struct, gc=False):
    key: Any
    sequencer: Any = None
    etag: Any = None
    size: Any = None
    version_id: Any = msgspec.field(default=None, name="version-id")


class _Bucket(msgspec.Struct, gc=False):
    name: Any


class _Detail(msgspec.Struct, gc=False):
    bucket: _Bucket
    object: _Object


class _Event(msgspec.Struct, gc=False):
    detail_type: Any = msgspec.field(default=None, name="detail-type")
    source: Any = None
    time: Any = None
    detail: _Detail | None = None


_DECODE = msgspec.json.Decoder(_Event).decode
# The C scanner `json.loads` ends in (the default decoder's: same hooks, same constants).
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in its __init__


def fast_object(line: str) -> ObjectEvent | None:
    """The event of a line that is one plain EventBridge `Object Created` event of S3 (or
    S3EventError, as `eventbridge_object` raises it); None: the line needs the general way."""
    try:
        event = _DECODE(line)
    # ValidationError is a DecodeError; UnicodeEncodeError: a lone surrogate in the text, as
    # stdin read with `surrogateescape` (a C locale) makes of a byte that is not UTF-8.
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
        return None
    detail = event.detail
    if detail is None or event.time is None or event.detail_type != "Object Created" \
            or event.source != "aws.s3":
        return None
    obj = detail.object
    return eventbridge_fields(detail.bucket.name, obj.key, event.time, obj.sequencer, obj.etag,
                              obj.size, obj.version_id)


def general_events(line: str) -> list[ObjectEvent]:
    """Every object-created event of one line, by `json.loads` and `parse_message` (raises
    ValueError for bad JSON, RecursionError for JSON nested too deeply, S3EventError)."""
    # `json.loads` is three Python calls and a regex around the C scanner; a line that is one
    # JSON value and a newline goes to the scanner directly, anything else (leading space,
    # trailing data, an error) to `json.loads`, which gives the same value or the exact error.
    try:
        message, end = _SCAN(line, 0)
    except StopIteration:
        message = json.loads(line)
    else:
        if line[end:] not in ("\n", "\r\n", ""):
            message = json.loads(line)
    if (type(message) is dict and message.get("detail-type") == "Object Created"
            and message.get("source") == "aws.s3"):
        return [eventbridge_object(message)]
    return parse_message(message)


class EventLogSource(Source):
    """JSON lines, one S3 event (any shape `parse_message` knows) per line; `-` is stdin.

    A line that is not an S3 event is reported through `on_bad(line_number, reason)` and skipped.
    """

    unit = "bytes"

    def __init__(self, path: str, on_bad: Callable[[int, str], None]):
        self.path, self.on_bad = path, on_bad
        self._handle: IO[str] | None = None
        self.malformed = 0
        self.other = 0  # S3 events that are not object creations (deletions, tests...)
        if path != "-":
            try:
                self.total = os.path.getsize(path)
            except FileNotFoundError:
                raise ConfigError(f"{path}: file not found") from None
            except OSError as e:
                raise ConfigError(f"{path}: cannot read: {e}") from None
            if os.path.isdir(path):
                raise ConfigError(f"{path}: is a directory, expected a JSON lines file")

    @property  # read from the file, not counted as the base's attribute is
    def position(self) -> int:  # type: ignore[override]
        """Bytes read so far (of a file: stdin has no position)."""
        handle = self._handle
        if handle is None or handle is sys.stdin:
            return 0
        if handle.closed:
            return self.total or 0
        buffer: BinaryIO = handle.buffer  # type: ignore[attr-defined]  # a TextIOWrapper's
        return buffer.tell()

    def __iter__(self) -> Iterator[ObjectEvent]:
        # Text mode (universal newlines, undecodable bytes replaced), as every reader of the log.
        handle: IO[str] = (sys.stdin if self.path == "-"
                           else open(self.path, encoding="utf-8", errors="replace"))  # noqa: SIM115
        self._handle = handle
        fast, general = fast_object, general_events
        try:
            for number, line in enumerate(handle, 1):
                try:
                    event = fast(line)
                    if event is not None:
                        yield event
                        continue
                    events = general(line)
                # ValueError: json.JSONDecodeError; RecursionError: JSON nested too deeply.
                except (ValueError, RecursionError, S3EventError) as e:
                    if not line.strip():
                        continue
                    self.malformed += 1
                    self.on_bad(number, _reason(e))
                    continue
                if events:
                    yield from events
                else:
                    self.other += 1
        finally:
            if handle is not sys.stdin:
                handle.close()


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON ({error.msg}, column {error.colno})"
    if isinstance(error, RecursionError):
        return "JSON nested too deeply to be an S3 event"
    return str(error)
