"""AWS Lambda entry points of the EDP batcher (docs/CONTRACTS.md).

- `ingest_handler`: an SQS batch (ReportBatchItemFailures) of S3 events → batch state; only
  the records that failed (malformed, or their prefix could not be written) are returned as
  `batchItemFailures`, so SQS retries just those. Count-triggered batches are emitted at once.
- `flush_handler`: the every-minute schedule → emits batches whose quiet deadline or maximum
  age has passed and publishes again what `PutEvents` refused before. Fails the invocation
  (after doing all it can) if something is still unpublished, so the errors alarm sees it.

Clients and settings are built lazily at module scope and reused across warm invocations;
`reset()` lets tests (and the local demo) hand in their own clients and clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import EdpSettings
from omics_edp_cli.edp.dynamodb_store import DynamoDBStore
from omics_edp_cli.edp.emit import EventBridgePublisher
from omics_edp_cli.edp.engine import Engine
from omics_edp_cli.edp.manifests import S3Manifests
from omics_edp_cli.edp.s3events import ObjectEvent, S3EventError, parse_message
from omics_edp_cli.edp.store import Key
from omics_edp_cli.errors import OperationError

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: EdpSettings
    batcher: Batcher
    clock: Callable[[], float]


_runtime: Runtime | None = None
_clients: ClientFactory | None = None
_clock: Callable[[], float] = time.time


def build_batcher(settings: EdpSettings, clients: ClientFactory) -> Batcher:
    store = DynamoDBStore(clients.client("dynamodb"), settings.table)
    publisher = EventBridgePublisher(clients.client("events"), settings.event_bus, settings.source)
    manifests = (S3Manifests(clients.client("s3"), settings.manifest_location)
                 if settings.manifest_location else None)
    # Without a manifest location nothing could take the object lists out of the item: none kept.
    engine = Engine(settings.rules, keep_objects=manifests is not None)
    return Batcher(engine, store, publisher, manifests=manifests)


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        settings = EdpSettings.from_env()
        _configure_logging(settings.verbose)
        _runtime = Runtime(settings, build_batcher(settings, _clients or ClientFactory()), _clock)
    return _runtime


def reset(clients: ClientFactory | None = None, clock: Callable[[], float] | None = None) -> None:
    """Forget the warm-start state; the next invocation reads the environment again."""
    global _runtime, _clients, _clock
    _runtime, _clients, _clock = None, clients, clock or time.time


def ingest_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()
    return ingest_sqs_batch(event, rt.batcher, rt.clock(), buckets=rt.settings.buckets)


def flush_handler(event: Any, context: Any) -> dict[str, Any]:
    rt = runtime()
    report = rt.batcher.flush(rt.clock())
    summary = {
        "emitted": len(report.emitted),
        "triggers": _triggers(report.emitted),
        "retried": report.retried,
        "published": report.published,
        "unpublished": report.unpublished,
        "failed_prefixes": len(report.failed_keys),
    }
    log.info("flush: %s", summary)
    log_per_bucket({}, report.emitted)
    if report.unpublished or report.failed_keys:
        raise OperationError(
            f"{report.unpublished} batch(es) not published and {len(report.failed_keys)} prefix(es) "
            "not flushed; the next run retries them")
    return summary


def ingest_sqs_batch(
    event: dict[str, Any], batcher: Batcher, now: float, *, buckets: Collection[str] = ()
) -> dict[str, Any]:
    """Count the events of an SQS batch; return the SQS partial-batch response.

    Events of buckets not in `buckets` (when given) are skipped: the rule lets only those in.
    """
    failed: list[str] = []
    origins: dict[Key, list[str]] = {}
    events: list[ObjectEvent] = []
    other_bucket = 0
    records = event.get("Records") or []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            parsed = parse_message(record.get("body"))
        except S3EventError as e:
            log.warning("record %s is not a usable S3 event, left for the dead-letter queue: %s",
                        message_id, e)
            failed.append(message_id)
            continue
        for item in parsed:
            if buckets and item.bucket not in buckets:
                other_bucket += 1
                continue
            events.append(item)
            key = batcher.key_of(item)
            if key is not None:
                origins.setdefault(key, []).append(message_id)
    report = batcher.ingest(events, now)
    already = set(failed)
    for key in report.failed_keys:
        for message_id in origins.get(key, []):
            if message_id not in already:
                already.add(message_id)
                failed.append(message_id)
    log.info(
        "ingest: %d record(s), %d counted, %d duplicate(s), %d ignored, %d shallow, %d other bucket, "
        "%d emitted %s, %d unpublished, %d failed record(s)",
        len(records), report.counted, report.duplicates, report.ignored, report.shallow, other_bucket,
        len(report.emitted), _triggers(report.emitted), report.unpublished, len(failed))
    received: dict[str, int] = {}
    for item in events:
        received[item.bucket] = received.get(item.bucket, 0) + 1
    log_per_bucket(received, report.emitted)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def log_per_bucket(received: dict[str, int], emitted: list[Any]) -> None:
    """One line per bucket, which the stack's dashboard sums into per-bucket rows (Logs Insights:
    `parse @message "edp-bucket * objects=* batches=*"`)."""
    batches: dict[str, int] = {}
    for e in emitted:
        batches[e.bucket] = batches.get(e.bucket, 0) + 1
    for bucket in sorted(set(received) | set(batches)):
        log.info("edp-bucket %s objects=%d batches=%d", bucket, received.get(bucket, 0),
                 batches.get(bucket, 0))


def _triggers(emitted: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in emitted:
        out[e.trigger] = out.get(e.trigger, 0) + 1
    return out


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:  # outside Lambda (Lambda installs its own handler)
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("omics_edp_cli").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
