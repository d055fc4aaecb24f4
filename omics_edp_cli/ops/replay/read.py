"""Reading the archive for `replay`: one object → `ArchivedEvent`, and `ArchiveReader`, which
reads concurrently and releases events in batches that are safe to deliver while it reads on."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from omics_edp_cli.errors import ArchiveError
from omics_edp_cli.omics.archive import KEY_RE, ArchiveStore, time_from_key
from omics_edp_cli.omics.event import parse_time
from omics_edp_cli.ops.replay.report import INVALID, EventOutcome
from omics_edp_cli.ops.replay.s3get import LeanArchiveStore

if TYPE_CHECKING:
    from omics_edp_cli.ops.replay.plan import ReplayPlan

# Readers when nothing says otherwise (`select_events`, `--dry-run`).
READ_THREADS = 10
# The S3 client's connection pool (omics_edp_cli/aws.py): more readers would only queue for a
# connection (and make urllib3 warn).
MAX_READ_THREADS = 32


def read_threads_for(concurrency: int) -> int:
    """Readers for `concurrency` runs delivered at once: two per delivery worker.

    Each event costs one GET and one POST; against real S3 a GET waits 10 to 30 ms on the network,
    as long as a callback does. Twice the delivery workers keeps the readers ahead even though
    events are released in key order (a slow GET holds back the ones after it), so delivery, not
    reading, sets the pace (bench/bench_replay.py --s3-latency 20 --latency 20).
    """
    return max(READ_THREADS, min(2 * concurrency, MAX_READ_THREADS))
UNREADABLE = "unreadable"
# Tie-break for events of one run stamped in the same second (EventBridge times have 1 s resolution).
STATUS_RANK = {
    "PENDING": 0, "QUEUED": 0, "STARTING": 1, "RUNNING": 2, "STOPPING": 3, "TERMINATING": 3,
    "COMPLETED": 4, "FAILED": 4, "CANCELLED": 4, "CANCELLED_RUNNING": 4, "CANCELLED_STARTING": 4,
    "DELETED": 5,
}


@dataclass(frozen=True)
class ArchivedEvent:
    """One archive object: its payload, or why it has none (`problem`)."""

    key: str
    payload: dict[str, Any] | None
    problem: str | None = None
    problem_kind: str = INVALID

    @property
    def run(self) -> str | None:
        return _text(self.payload, "omics_run_id")

    @property
    def wes_run_id(self) -> str | None:
        return _text(self.payload, "wes_run_id")

    @property
    def status(self) -> str | None:
        return _text(self.payload, "status")

    @property
    def event_time(self) -> str | None:
        return _text(self.payload, "event_time")

    def order_key(self) -> tuple[datetime, int, str]:
        return self._order_key

    @cached_property
    def _order_key(self) -> tuple[datetime, int, str]:
        # Computed once: the reader's heap and the deliverer's sort both ask for it.
        return (parse_time(self.event_time or ""), STATUS_RANK.get(self.status or "", 9), self.key)

    def outcome(self, outcome: str, **kwargs: Any) -> EventOutcome:
        return EventOutcome(
            self.key, self.run, self.wes_run_id, self.status, self.event_time, outcome, **kwargs
        )


def _text(payload: dict[str, Any] | None, name: str) -> str | None:
    value = payload.get(name) if payload else None
    return None if value is None else str(value)


def payload_problem(document: Any) -> str | None:
    """Why an archived JSON document is not a callback payload (None when it is one)."""
    if not isinstance(document, dict):
        return f"not a callback payload: a JSON {type(document).__name__}, expected an object"
    missing = [n for n in ("omics_run_id", "status", "event_time") if not document.get(n)]
    if missing:
        return f"not a callback payload: no {', '.join(missing)}"
    try:
        parse_time(str(document["event_time"]))
    except ValueError:
        return f"not a callback payload: event_time {document['event_time']!r} is not ISO 8601"
    return None


def read_event(store: ArchiveStore, key: str) -> ArchivedEvent:
    """Read one object; a bad object becomes an `ArchivedEvent` with a problem, never an exception."""
    try:
        document = store.get_json(key)
    except ArchiveError as e:
        return ArchivedEvent(key, None, str(e), UNREADABLE)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        return ArchivedEvent(key, None, f"not JSON: {str(e)[:200]}")
    problem = payload_problem(document)
    if problem:
        return ArchivedEvent(key, None, problem)
    return ArchivedEvent(key, document)


def deterministic_key(key: str) -> bool:
    """Whether the key was written by this project's processor: a uuid5 of the event id, stamped
    with the event's own time (to the second). The seed Lambda's keys (uuid4) carry the time it
    ran, which can be any time after the event."""
    match = KEY_RE.search(key)
    return match is not None and uuid.UUID(match.group(2)).version == 5


class ArchiveReader:
    """Reads objects concurrently and hands them on in batches that are safe to deliver.

    An event may be delivered once no unread object can hold an earlier event of its run. Seed
    keys say nothing about event time, so they are read first; this project's keys are then read
    in key order, and an event is released once every key of its second and before has been
    read: any unread key is of a later second, so it holds a later event. Delivery starts while
    reading goes on, and every run still gets its events in event-time order.
    """

    def __init__(self, plan: ReplayPlan, s3: Any, keys: list[str], threads: int = READ_THREADS):
        self.plan = plan
        # Plain signed GETs on the client's own pool, botocore's get_object when they do not answer.
        self.store: ArchiveStore = LeanArchiveStore(s3, plan.bucket, plan.prefix)
        ours = [deterministic_key(k) for k in keys]
        seed = [k for k, o in zip(keys, ours, strict=True) if not o]
        self.seed_count = len(seed)
        self.keys = seed + [k for k, o in zip(keys, ours, strict=True) if o]
        self.threads = max(1, threads)
        self.read = 0
        self.filtered_out = 0

    def batches(self, on_read: Callable[[], None] | None = None) -> Iterator[list[ArchivedEvent]]:
        pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="read")
        futures = {pool.submit(read_event, self.store, key): i for i, key in enumerate(self.keys)}
        done: dict[int, ArchivedEvent] = {}
        waiting: list[tuple[tuple[datetime, int, str], ArchivedEvent]] = []  # a heap
        consumed = 0  # keys[:consumed] are read and sorted into `waiting` (or released)
        try:
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                self.read += 1
                if on_read:
                    on_read()
                ready: list[ArchivedEvent] = []
                while consumed in done:
                    event = done.pop(consumed)
                    consumed += 1
                    if event.payload is None:
                        ready.append(event)  # reported at once: nothing to order
                    elif self.plan.matches(event):
                        heapq.heappush(waiting, (event.order_key(), event))
                    else:
                        self.filtered_out += 1
                if consumed >= self.seed_count:
                    bound = time_from_key(self.keys[consumed]) if consumed < len(self.keys) else None
                    while waiting and (bound is None or waiting[0][0][0] < bound):
                        ready.append(heapq.heappop(waiting)[1])
                if ready:
                    yield ready
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
