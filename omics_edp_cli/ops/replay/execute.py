"""`omics-edp replay`: re-send archived callback payloads to the NGS360 API, every run in order.

List the window's keys (`archive_range`), then read the objects concurrently and deliver
them as soon as that is safe (`_Reader`). Events of one WES run go one at a time in event-time
order (the receiver rejects impossible state transitions, so a COMPLETED overtaking RUNNING
would be lost); different runs go concurrently under one shared rate limit. Delivery is the
Lambda's own `CallbackClient` (same retries, backoff, `Retry-After`, permanent 4xx not retried).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.omics.config import (
    DeliveryPolicy,
)
from omics_edp_cli.omics.payload import undeliverable_reason
from omics_edp_cli.ops.ratelimit import RateLimiter
from omics_edp_cli.ops.replay.archive_range import KeyRange
from omics_edp_cli.ops.replay.delivery import RunDeliverer
from omics_edp_cli.ops.replay.plan import (
    ReplayPlan,
    ReplayProgress,
    _NoProgress,
)
from omics_edp_cli.ops.replay.read import READ_THREADS, ArchivedEvent, ArchiveReader, read_threads_for
from omics_edp_cli.ops.replay.report import (
    ALREADY_PROCESSED,
    DELIVERED,
    FAILED,
    FAILURE_OUTCOMES,
    HELD,
    INVALID,
    REJECTED,
    SKIPPED,
    EventOutcome,
    ReportWriter,
)


@dataclass
class Selection:
    """What the window holds after `--resume` and the filters; `events` (key order) in dry runs."""

    listed: int
    list_calls: int
    to_read: int = 0
    resumed: int = 0
    filtered_out: int = 0
    events: list[ArchivedEvent] = field(default_factory=list)

    def deliverable(self) -> list[ArchivedEvent]:
        return [e for e in self.events if e.payload is not None and not undeliverable_reason(e.payload)]

    def dry_run_summary(self) -> dict[str, Any]:
        deliverable = self.deliverable()
        invalid = sum(1 for e in self.events if e.payload is None)
        return {
            "would_send": len(deliverable),
            "first_key": deliverable[0].key if deliverable else None,
            "last_key": deliverable[-1].key if deliverable else None,
            "by_status": dict(sorted(Counter(e.status for e in deliverable if e.status).items())),
            "would_skip": len(self.events) - len(deliverable) - invalid,
            "invalid": invalid,
            "already_delivered": self.resumed,
            "filtered_out": self.filtered_out,
            "listed": self.listed,
            "list_calls": self.list_calls,
        }


def list_window(
    plan: ReplayPlan, s3: Any, progress: ReplayProgress | None = None
) -> tuple[Selection, list[str]]:
    """The window's keys (key order) minus those `--resume` says were delivered."""
    progress = progress or _NoProgress()
    progress.phase("listing", None)
    key_range = KeyRange(s3, plan.bucket, plan.prefix, plan.window)
    keys: list[str] = []
    for key in key_range:
        keys.append(key)
        progress.advance()
    todo = [k for k in keys if k not in plan.already_delivered]
    return Selection(len(keys), key_range.list_calls, len(todo), len(keys) - len(todo)), todo

def select_events(
    plan: ReplayPlan, s3: Any, progress: ReplayProgress | None = None, read_threads: int = READ_THREADS
) -> Selection:
    """List and read the whole window (what `--dry-run` shows); `events` in key order."""
    progress = progress or _NoProgress()
    selection, todo = list_window(plan, s3, progress)
    progress.phase("reading", len(todo))
    reader = ArchiveReader(plan, s3, todo, read_threads)
    for batch in reader.batches(progress.advance):
        selection.events.extend(batch)
    selection.events.sort(key=lambda e: e.key)
    selection.filtered_out = reader.filtered_out
    return selection


@dataclass
class ReplayResult:
    plan: ReplayPlan
    selection: Selection
    outcomes: list[EventOutcome] = field(default_factory=list)
    interrupted: bool = False
    key_refused: bool = False  # stopped at the first 401/403: the rest was not sent
    elapsed: float = 0.0

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.outcome for o in self.outcomes))

    @property
    def not_sent(self) -> int:
        """Events an interruption left unsent, unread ones included (`--resume` sends them)."""
        return self.selection.to_read - self.selection.filtered_out - len(self.outcomes)

    @property
    def failures(self) -> list[EventOutcome]:
        return [o for o in self.outcomes if o.outcome in FAILURE_OUTCOMES]

    @property
    def problems(self) -> list[EventOutcome]:
        """Failures and invalid objects: what the operator has to look at."""
        return [o for o in self.outcomes if o.outcome in FAILURE_OUTCOMES or o.outcome == INVALID]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted and not self.key_refused

    def summary(self) -> dict[str, int]:
        """What was sent, skipped, refused (4xx), held back (an earlier event failed) and failed
        (retries exhausted), plus what was left out and why."""
        c = self.counts()
        rows = {
            "delivered": c.get(DELIVERED, 0),
            "already_processed": c.get(ALREADY_PROCESSED, 0),
            "skipped": c.get(SKIPPED, 0) + c.get(INVALID, 0),
            "refused": c.get(REJECTED, 0),
            "held": c.get(HELD, 0),
            "failed": c.get(FAILED, 0),
        }
        if self.interrupted or self.key_refused:
            rows["not_sent"] = self.not_sent
        if self.selection.resumed:
            rows["already_delivered_before"] = self.selection.resumed
        if self.selection.filtered_out:
            rows["filtered_out"] = self.selection.filtered_out
        return rows


def replay(
    plan: ReplayPlan,
    clients: ClientFactory,
    progress: ReplayProgress | None = None,
    stop: threading.Event | None = None,
    policy: DeliveryPolicy | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] | None = None,
) -> ReplayResult:
    """Run a plan: list, then read and deliver at the same time (with `dry_run`, only read).

    Setting `stop` (or Ctrl-C) stops cleanly: no new request starts, in-flight ones finish and
    are reported; `ReplayResult.interrupted` is then True. `clock` and `sleep` drive the
    `plan.rate` limiter (default: the monotonic clock, and waits that `stop` interrupts).
    """
    progress = progress or _NoProgress()
    stop = stop or threading.Event()
    started = time.monotonic()
    s3 = clients.client("s3")
    if plan.dry_run:
        result = ReplayResult(plan, select_events(plan, s3, progress, read_threads_for(plan.concurrency)))
        result.elapsed = time.monotonic() - started
        return result
    selection, todo = list_window(plan, s3, progress)
    result = ReplayResult(plan, selection)
    policy = policy or DeliveryPolicy.from_env(os.environ if env is None else env)
    writer = ReportWriter(plan.report, append=plan.append_report) if plan.report else None
    limiter = RateLimiter(plan.rate, clock=clock, sleep=sleep or stop.wait)
    deliverer = RunDeliverer(plan, policy, writer, progress, stop, limiter)
    reader = ArchiveReader(plan, s3, todo, read_threads_for(plan.concurrency))
    progress.phase("replaying", len(todo))
    filtered = 0

    def count_filtered() -> None:  # filtered-out events count as done on the bar
        nonlocal filtered
        if reader.filtered_out > filtered:
            progress.advance(reader.filtered_out - filtered)
            filtered = reader.filtered_out

    try:
        try:
            for batch in reader.batches():
                count_filtered()
                if stop.is_set():
                    break
                deliverer.offer(batch)
            count_filtered()
            deliverer.wait()
        except KeyboardInterrupt:
            # Let in-flight requests finish so every sent event has its report line.
            stop.set()
            deliverer.wait()
    finally:
        deliverer.close()
        if writer:
            writer.close()
        selection.filtered_out = reader.filtered_out
        result.outcomes = deliverer.outcomes
        result.elapsed = time.monotonic() - started
    result.key_refused = deliverer.key_refused
    result.interrupted = stop.is_set() and not result.key_refused and result.not_sent > 0
    return result
