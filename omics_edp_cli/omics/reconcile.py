"""Reconcile: HealthOmics is the truth; the archive (and its `refused/` records) shows what was sent.

EventBridge delivers `aws.omics` events on a best-effort basis, so a run's state can simply
never arrive. This lists the account's runs (`ListRuns`, paginated; it has no time filter and
its order is not documented, so every page is read and the window applied here: a run is in
it when its creation, start or stop time falls inside, or it is still active), reads what the
archive holds for them, and names per run: `in sync`, `missing <status>`, `refused (<code>)`,
`no WESRunId tag`, `not found in HealthOmics`.

With `fix`, what the receiver missed is sent through the same `Processor` as the Lambda, from
an event synthesised from `GetRun` with a deterministic id (`reconcile-{run}-{status}`): a
second pass finds those in the archive and sends nothing. A run that finished but never
reached RUNNING on the receiver gets RUNNING (at `startTime`) first, since the WES state
machine refuses QUEUED → COMPLETE. Each run's events go in order; runs go concurrently.

Lambda-side: standard library and boto3 only. The CLI's `reconcile` and the scheduled
reconcile Lambda both call `Reconciler`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.errors import ArchiveError, EnrichmentError, OperationError
from omics_edp_cli.omics.archive import REFUSED_DIR, ArchiveStore, key_prefix_for_time
from omics_edp_cli.omics.enrich import WES_RUN_ID_TAG, get_run
from omics_edp_cli.omics.event import DETAIL_TYPE, SOURCE
from omics_edp_cli.omics.processor import GAPS_FIELD, Processor
from omics_edp_cli.omics.progress import NoProgress, Progress
from omics_edp_cli.timefmt import iso_z, parse_time

log = logging.getLogger(__name__)

ACTIVE = frozenset({"PENDING", "STARTING", "RUNNING", "STOPPING"})
# The receiver refuses these from a run it never saw running (QUEUED → COMPLETE / EXECUTOR_ERROR).
NEEDS_RUNNING_FIRST = frozenset({"COMPLETED", "FAILED"})
REACHED_RUNNING = frozenset({"RUNNING", "STOPPING", "COMPLETED", "FAILED"})
# Nothing to send for these: the receiver has no state for them.
NOTHING_TO_SEND = frozenset({"DELETED"})

IN_SYNC = "in_sync"
MISSING = "missing"
REFUSED = "refused"
NO_TAG = "no_tag"
NOT_FOUND = "not_found"
FIX_FAILED = "fix_failed"
# States an operator has to look at (exit 1). A run without a WESRunId tag is not NGS360's.
ATTENTION = frozenset({MISSING, REFUSED, NOT_FOUND, FIX_FAILED})
LIST_PAGE = 100  # ListRuns' maximum
S3_PAGE = 1000
READ_THREADS = 10


def event_id_for(run_id: str, status: str) -> str:
    """The deterministic id of a reconcile event: the same run and status give the same id
    (and so the same archive key), which is what makes a second `--fix` send nothing."""
    return f"reconcile-{run_id}-{status}"


@dataclass(frozen=True)
class RunSummary:
    """One run as `ListRuns` (or `GetRun`) describes it."""

    run_id: str
    status: str
    arn: str = ""
    creation: datetime | None = None
    start: datetime | None = None
    stop: datetime | None = None

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> RunSummary:
        return cls(str(item["id"]), str(item.get("status", "")), str(item.get("arn", "")),
                   _time(item.get("creationTime")), _time(item.get("startTime")),
                   _time(item.get("stopTime")))

    def in_window(self, since: datetime, until: datetime) -> bool:
        if self.status in ACTIVE:
            return True
        return any(t is not None and since <= t <= until for t in (self.creation, self.start, self.stop))


@dataclass(frozen=True)
class ArchivedRecord:
    """What one archive object says was processed."""

    key: str
    run_id: str
    status: str
    event_id: str
    event_time: datetime
    wes_run_id: str | None
    gaps: tuple[str, ...] = ()


@dataclass
class RunReport:
    """One run's verdict, and what `fix` sent for it."""

    run_id: str
    status: str | None
    state: str
    detail: str
    wes_run_id: str | None = None
    sent: list[str] = field(default_factory=list)
    to_send: list[str] = field(default_factory=list)
    fixes: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return self.state in ATTENTION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReconcileResult:
    since: datetime
    until: datetime
    fix: bool
    runs: list[RunReport] = field(default_factory=list)
    list_calls: int = 0
    runs_listed: int = 0
    archive_list_calls: int = 0
    archive_reads: int = 0
    get_run_calls: int = 0
    posts: int = 0
    interrupted: bool = False
    elapsed: float = 0.0

    @property
    def attention(self) -> list[RunReport]:
        return [r for r in self.runs if r.needs_attention]

    @property
    def ok(self) -> bool:
        return not self.attention and not self.interrupted

    def counts(self) -> dict[str, int]:
        counts = {state: 0 for state in (IN_SYNC, MISSING, REFUSED, NO_TAG, NOT_FOUND, FIX_FAILED)}
        for report in self.runs:
            counts[report.state] += 1
        counts["fixed"] = sum(1 for r in self.runs if r.fixes and r.state == IN_SYNC)
        return counts

    def summary(self) -> dict[str, Any]:
        return {
            "window": f"{iso_z(self.since)} .. {iso_z(self.until)}",
            "fix": self.fix,
            "runs": len(self.runs),
            **self.counts(),
            "posts": self.posts,
            "list_runs_calls": self.list_calls,
            "runs_listed": self.runs_listed,
            "archive_list_calls": self.archive_list_calls,
            "archive_reads": self.archive_reads,
            "get_run_calls": self.get_run_calls,
            "interrupted": self.interrupted,
            "elapsed_seconds": round(self.elapsed, 3),
        }


class Reconciler:
    """Compares HealthOmics with the archive of one deployment; with a processor, fixes too.

    `processor_factory` builds one `Processor` per worker thread (a requests session is not
    shared between threads); `acquire` is called before every send (a rate limit); `stop`
    ends the fix early: runs not started are reported as they were found.
    """

    def __init__(
        self,
        omics: Any,
        archive: ArchiveStore,
        *,
        processor_factory: Callable[[], Processor] | None = None,
        concurrency: int = 8,
        acquire: Callable[[], object] | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        read_threads: int = READ_THREADS,
    ):
        self.omics = omics
        self.archive = archive
        self.processor_factory = processor_factory
        self.concurrency = max(1, concurrency)
        self.acquire = acquire or (lambda: None)
        self.progress = progress or NoProgress()
        self.stop = stop or threading.Event()
        self.read_threads = max(1, read_threads)
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- the whole pass -----------------------------------------------------------------------

    def run(self, since: datetime, until: datetime, fix: bool = False) -> ReconcileResult:
        started = time.monotonic()
        result = ReconcileResult(since, until, fix)
        if fix and self.processor_factory is None:
            raise ValueError("fix needs a processor_factory")
        listed = self.list_runs(result)
        in_window = {r.run_id: r for r in listed.values() if r.in_window(since, until)}
        read_from = min([since, *(r.creation for r in in_window.values() if r.creation)])
        records = self.read_records(read_from, until, result)
        refusals = self.read_refusals(read_from, until, result)
        # Runs the archive knows in the window that HealthOmics no longer lists.
        orphans = sorted(
            run_id for run_id, recs in records.items()
            if run_id not in listed and any(r.event_time >= since for r in recs)
        )
        for run_id in orphans:
            found = self._get_run(run_id, result)
            if found is None:
                result.runs.append(RunReport(run_id, None, NOT_FOUND, "not found in HealthOmics",
                                             _wes_run_id(records[run_id]),
                                             sent=sorted(_sent(records[run_id], refusals))))
            else:
                in_window[run_id] = RunSummary.from_api(found)
        for run in sorted(in_window.values(), key=lambda r: r.run_id):
            result.runs.append(self.compare(run, records.get(run.run_id, []), refusals, result))
        if fix:
            self.fix(result)
        result.elapsed = time.monotonic() - started
        return result

    # -- HealthOmics ----------------------------------------------------------------------------

    def list_runs(self, result: ReconcileResult) -> dict[str, RunSummary]:
        """Every run `ListRuns` returns (all pages: its order is not documented)."""
        self.progress.phase("listing runs", None)
        runs: dict[str, RunSummary] = {}
        kwargs: dict[str, Any] = {"maxResults": LIST_PAGE}
        while True:
            result.list_calls += 1
            try:
                page = self.omics.list_runs(**kwargs)
            except (BotoCoreError, ClientError) as e:
                raise EnrichmentError(f"ListRuns failed: {str(e)[:300]}") from None
            for item in page.get("items", []):
                run = RunSummary.from_api(item)
                runs[run.run_id] = run
            self.progress.advance(len(page.get("items", [])))
            token = page.get("nextToken")
            if not token:
                break
            kwargs["startingToken"] = token
        result.runs_listed = len(runs)
        return runs

    def _get_run(self, run_id: str, result: ReconcileResult) -> dict[str, Any] | None:
        with self._lock:
            result.get_run_calls += 1
        return get_run(self.omics, run_id)

    # -- the archive ----------------------------------------------------------------------------

    def read_records(self, since: datetime, until: datetime, result: ReconcileResult
                     ) -> dict[str, list[ArchivedRecord]]:
        """Every payload archived in the window, by run."""
        keys = list(self._keys(self.archive.prefix, since, until, result))
        by_run: dict[str, list[ArchivedRecord]] = defaultdict(list)
        for key, document in self._read_all(keys, "reading archive", result):
            record = _record(key, document)
            if record is not None:
                by_run[record.run_id].append(record)
        return by_run

    def read_refusals(self, since: datetime, until: datetime, result: ReconcileResult
                      ) -> dict[str, int | None]:
        """Refused event id → the HTTP status it was refused with (None: callback_url)."""
        prefix = f"{self.archive.prefix.strip('/')}/{REFUSED_DIR}"
        keys = list(self._keys(prefix, since, until, result))
        refused: dict[str, int | None] = {}
        for _key, document in self._read_all(keys, "reading refusals", result):
            if isinstance(document, dict) and document.get("event_id"):
                status = document.get("http_status")
                refused[str(document["event_id"])] = int(status) if isinstance(status, int) else None
        return refused

    def _keys(self, prefix: str, since: datetime, until: datetime, result: ReconcileResult
              ) -> Iterator[str]:
        """`event_*` keys of one folder between two times (keys sort by time: `StartAfter`)."""
        start_after = key_prefix_for_time(prefix, since.replace(microsecond=0))
        stop_at = key_prefix_for_time(prefix, until.replace(microsecond=0) + timedelta(seconds=1))
        list_prefix = start_after[: start_after.rindex("event_") + len("event_")]
        kwargs: dict[str, Any] = {"Bucket": self.archive.bucket, "Prefix": list_prefix,
                                  "StartAfter": start_after, "MaxKeys": S3_PAGE}
        while True:
            result.archive_list_calls += 1
            try:
                page = self.archive.s3.list_objects_v2(**kwargs)
            except (BotoCoreError, ClientError) as e:
                raise ArchiveError(f"listing s3://{self.archive.bucket}/{list_prefix} failed: {e}") from e
            for item in page.get("Contents", ()):
                if item["Key"] >= stop_at:
                    return
                yield item["Key"]
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _read_all(self, keys: list[str], phase: str, result: ReconcileResult
                  ) -> Iterator[tuple[str, Any]]:
        self.progress.phase(phase, len(keys))

        def read(key: str) -> tuple[str, Any]:
            try:
                return key, self.archive.get_json_if_exists(key)
            finally:
                self.progress.advance()

        with ThreadPoolExecutor(max_workers=self.read_threads, thread_name_prefix="read") as pool:
            yield from pool.map(read, keys)
        result.archive_reads += len(keys)

    # -- the verdict ----------------------------------------------------------------------------

    def compare(self, run: RunSummary, records: list[ArchivedRecord], refusals: dict[str, int | None],
                result: ReconcileResult) -> RunReport:
        sent = _sent(records, refusals)
        wes_run_id = _wes_run_id(records)
        current = run.status
        report = RunReport(run.run_id, current, IN_SYNC, "in sync", wes_run_id, sent=sorted(sent))
        gaps = {g for r in records if r.status == current for g in r.gaps}
        report.gaps = sorted(gaps)
        if current in NOTHING_TO_SEND or current in sent:
            return report
        of_current = [r for r in records if r.status == current]
        refused_codes = [refusals[r.event_id] for r in of_current
                         if r.wes_run_id and r.event_id in refusals]
        if refused_codes:
            code = refused_codes[-1]
            report.state, report.detail = REFUSED, f"refused ({code if code is not None else 'callback_url'})"
        elif of_current and not any(r.wes_run_id for r in of_current):
            report.state, report.detail = NO_TAG, "no WESRunId tag"
            return report
        else:
            if wes_run_id is None:
                found = self._get_run(run.run_id, result)
                if found is None:
                    report.state, report.detail = NOT_FOUND, "not found in HealthOmics"
                    return report
                wes_run_id = (found.get("tags") or {}).get(WES_RUN_ID_TAG)
                if not wes_run_id:
                    report.state, report.detail = NO_TAG, "no WESRunId tag"
                    return report
                report.wes_run_id = wes_run_id
            report.state, report.detail = MISSING, f"missing {current}"
        report.to_send = plan_sends(current, sent, run.start is not None)
        return report

    # -- the fix --------------------------------------------------------------------------------

    def fix(self, result: ReconcileResult) -> None:
        todo = [r for r in result.runs if r.to_send and r.state in {MISSING, REFUSED}]
        self.progress.phase("fixing", len(todo))
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="reconcile") as pool:
            list(pool.map(lambda report: self._fix_run(report, result), todo))
        result.interrupted = self.stop.is_set() and any(not r.fixes for r in todo)

    def _processor(self) -> Processor:
        processor = getattr(self._local, "processor", None)
        if processor is None:
            assert self.processor_factory is not None
            processor = self._local.processor = self.processor_factory()
        return processor

    def _fix_run(self, report: RunReport, result: ReconcileResult) -> None:
        if self.stop.is_set():
            return
        try:
            run = self._get_run(report.run_id, result)
            if run is None:
                report.state, report.detail = NOT_FOUND, "not found in HealthOmics"
                return
            for status in report.to_send:
                if self.stop.is_set():
                    return
                self.acquire()
                outcome = self._processor().process(synthesise_event(run, status))
                with self._lock:
                    result.posts += 1 if outcome.http_status is not None else 0
                report.fixes.append({"status": status, "outcome": outcome.outcome,
                                     "http_status": outcome.http_status, "reason": outcome.reason})
                if outcome.outcome not in {"delivered", "already_processed"}:
                    report.state = REFUSED if outcome.outcome == "refused" else FIX_FAILED
                    report.detail = (f"refused ({outcome.http_status or 'callback_url'})"
                                     if outcome.outcome == "refused" else
                                     f"fix {outcome.outcome}: {outcome.reason}")
                    return
        except OperationError as e:
            with self._lock:
                result.posts += 1 if getattr(e, "http_status", None) else 0
            report.fixes.append({"status": None, "outcome": "failed", "http_status":
                                 getattr(e, "http_status", None), "reason": str(e)[:500]})
            report.state, report.detail = FIX_FAILED, f"fix failed: {str(e)[:200]}"
            return
        finally:
            self.progress.advance()
        report.sent = sorted(set(report.sent) | set(report.to_send))
        report.state, report.detail = IN_SYNC, f"in sync (sent {', '.join(report.to_send)})"


def plan_sends(current: str, sent: set[str], started: bool) -> list[str]:
    """What to send so the receiver ends at `current` by transitions it accepts."""
    if current in NEEDS_RUNNING_FIRST and started and not (sent & REACHED_RUNNING):
        return ["RUNNING", current]
    return [current]


def synthesise_event(run: dict[str, Any], status: str) -> dict[str, Any]:
    """An EventBridge `Run Status Change` event for `status`, built from `GetRun`.

    Its time is when the run entered that state (start for RUNNING, stop for a final state,
    creation before), so the archive key sorts with the run's real events.
    """
    run_id = str(run["id"])
    times = {"RUNNING": run.get("startTime"), "STOPPING": run.get("stopTime"),
             "PENDING": run.get("creationTime"), "STARTING": run.get("creationTime")}
    moment = _time(times.get(status, run.get("stopTime"))) or _time(run.get("creationTime")) \
        or datetime.now(UTC)
    arn = str(run.get("arn") or "")
    region = arn.split(":")[3] if arn.count(":") >= 5 else "us-east-1"
    detail: dict[str, Any] = {"omicsVersion": "1.0.0", "arn": arn, "runId": run_id, "status": status}
    if status == "COMPLETED" and run.get("runOutputUri"):
        detail["runOutputUri"] = run["runOutputUri"]
    if status == "FAILED":
        for name in ("statusMessage", "failureReason"):
            if run.get(name):
                detail[name] = run[name]
    return {
        "version": "0",
        "id": event_id_for(run_id, status),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": arn.split(":")[4] if arn.count(":") >= 5 else "",
        "time": iso_z(moment),
        "region": region,
        "resources": [arn] if arn else [],
        "detail": detail,
    }


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return parse_time(str(value))
    except ValueError:
        return None


def _record(key: str, document: Any) -> ArchivedRecord | None:
    if not isinstance(document, dict):
        return None
    run_id, status, event_id = (document.get(n) for n in ("omics_run_id", "status", "event_id"))
    moment = _time(document.get("event_time"))
    if not (run_id and status and event_id and moment):
        return None
    wes = document.get("wes_run_id")
    gaps = document.get(GAPS_FIELD) or ()
    return ArchivedRecord(key, str(run_id), str(status), str(event_id), moment,
                          str(wes) if wes else None, tuple(str(g) for g in gaps))


def _sent(records: list[ArchivedRecord], refusals: dict[str, int | None]) -> set[str]:
    """Statuses archived with a WES run id and not refused: what the receiver was given."""
    return {r.status for r in records if r.wes_run_id and r.event_id not in refusals}


def _wes_run_id(records: list[ArchivedRecord]) -> str | None:
    return next((r.wes_run_id for r in records if r.wes_run_id), None)
