"""Delivering released events for `replay`: each WES run's events in order, runs concurrently."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from omics_edp_cli.errors import ApiKeyRefused, DeliveryError
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.payload import undeliverable_reason
from omics_edp_cli.ops.ratelimit import RateLimiter
from omics_edp_cli.ops.replay.read import UNREADABLE, ArchivedEvent
from omics_edp_cli.ops.replay.report import (
    FAILED,
    HELD,
    INVALID,
    REJECTED,
    SKIPPED,
    EventOutcome,
    ReportWriter,
)

if TYPE_CHECKING:
    from omics_edp_cli.ops.replay.plan import ReplayPlan, ReplayProgress

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY_REFUSED = "the receiver refused the API key: check OMICS_EDP_API_TOKEN / the stack's secret"


@dataclass
class _Run:
    """One WES run's released, not yet delivered events (in order) and its state."""

    pending: deque[ArchivedEvent] = field(default_factory=deque)
    active: bool = False  # a worker is delivering it
    failed_key: str | None = None  # set when an event failed: the rest are held back


class RunDeliverer:
    """Delivers each run's events in order on a thread pool, one worker per run at a time."""

    def __init__(
        self,
        plan: ReplayPlan,
        policy: DeliveryPolicy,
        writer: ReportWriter | None,
        progress: ReplayProgress,
        stop: threading.Event,
        limiter: RateLimiter | None = None,
    ):
        self.plan = plan
        self.policy = policy
        self.writer = writer
        self.progress = progress
        self.stop = stop
        # One limiter shared by every worker: `--rate` is for the whole replay, not per run.
        self.limiter = limiter or RateLimiter(plan.rate, sleep=stop.wait)
        self.outcomes: list[EventOutcome] = []
        # Set on the first 401/403: every later send would be refused the same way.
        self.key_refused = False
        self.pool = ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix="replay")
        self.futures: list[Future[None]] = []
        self._runs: dict[str, _Run] = defaultdict(_Run)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _client(self) -> CallbackClient:
        # One requests session per worker thread: requests does not promise thread safety.
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = CallbackClient(
                str(self.plan.api_server), self.plan.token, self.policy
            )
        return client

    def record(self, outcome: EventOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
            if self.writer:
                self.writer.write(outcome)
        self.progress.advance()

    def offer(self, events: list[ArchivedEvent]) -> None:
        """Queue released events (a batch never holds anything a later batch must precede)."""
        for event in sorted(events, key=lambda e: e.order_key() if e.payload else (_EPOCH, 0, e.key)):
            if event.payload is None:
                self.record(event.outcome(FAILED if event.problem_kind == UNREADABLE else INVALID,
                                          error=event.problem))
                continue
            if reason := undeliverable_reason(event.payload):
                self.record(event.outcome(SKIPPED, error=reason))
                continue
            with self._lock:
                run = self._runs[str(event.wes_run_id)]
                held_by = run.failed_key
                if held_by is None:
                    run.pending.append(event)
                    start = not run.active
                    run.active = True
            if held_by is not None:
                self.record(_held(event, held_by))
            elif start:
                self.futures.append(self.pool.submit(self._drain, run))

    def _drain(self, run: _Run) -> None:
        while True:
            with self._lock:
                if not run.pending or self.stop.is_set():
                    run.active = False
                    return
                event = run.pending.popleft()
            self.limiter.acquire()
            if self.stop.is_set():
                with self._lock:
                    run.active = False
                return
            outcome = self._deliver(event)
            self.record(outcome)
            if outcome.outcome == FAILED:
                with self._lock:
                    run.failed_key = event.key
                    held, run.active = list(run.pending), False
                    run.pending.clear()
                for later in held:
                    self.record(_held(later, event.key))
                return

    def _deliver(self, event: ArchivedEvent) -> EventOutcome:
        assert event.payload is not None
        try:
            result = self._client().deliver(event.payload)
        except ApiKeyRefused as e:
            self.key_refused = True
            self.stop.set()  # no new request starts; the rest is reported as not sent
            return event.outcome(REJECTED, http_status=e.http_status, attempts=e.attempts or 0,
                                 error=f"{KEY_REFUSED} (HTTP {e.http_status})")
        except DeliveryError as e:
            return event.outcome(FAILED, http_status=e.http_status, attempts=e.attempts or 0, error=str(e))
        error = None if result.ok else f"HTTP {result.http_status}: {result.body[:500]}"
        return event.outcome(result.outcome if result.ok else REJECTED, http_status=result.http_status,
                             attempts=result.attempts, error=error)

    def wait(self) -> None:
        """Wait for every queued run (new ones may be queued while waiting: loop until none)."""
        seen = 0
        while seen < len(self.futures):
            batch = self.futures[seen:]
            seen = len(self.futures)
            for future in batch:
                future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _held(event: ArchivedEvent, failed_key: str) -> EventOutcome:
    return event.outcome(HELD, error=f"not sent: the run's earlier event {failed_key} failed; "
                                     "sending this one first could break the run's state order")
