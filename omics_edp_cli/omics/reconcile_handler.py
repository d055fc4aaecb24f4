"""AWS Lambda entry point of the scheduled reconcile: the last `RECONCILE_LOOKBACK_HOURS` hours,
fixed through the processor's own code.

The result goes three places: the return value, one log line plus EMF metrics (`ReconcileRuns`,
`ReconcileAttention`, `ReconcileFixed`, `ReconcilePosts`), and `{prefix}/reconcile/last.json`
in the archive bucket, which `omics-edp doctor` reads. A run whose fix failed for a reason that
may pass fails the invocation (so it shows in the function's Errors metric); the next
scheduled run tries again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.omics.archive import ArchiveStore, Encryption
from omics_edp_cli.omics.config import (
    DEFAULT_RECONCILE_LOOKBACK_HOURS,
    RECONCILE_LOOKBACK_HOURS,
    ProcessorSettings,
)
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.handler import configure_logging
from omics_edp_cli.omics.metrics import MetricsLogger
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.omics.reconcile import FIX_FAILED, Reconciler, ReconcileResult
from omics_edp_cli.omics.secrets import resolve_token
from omics_edp_cli.timefmt import iso_z

log = logging.getLogger(__name__)
LAST_RESULT = "reconcile/last.json"
MAX_NAMED_RUNS = 100


def last_result_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/{LAST_RESULT}" if prefix.strip("/") else LAST_RESULT


def lookback(env: Mapping[str, str]) -> timedelta:
    raw = env.get(RECONCILE_LOOKBACK_HOURS) or str(DEFAULT_RECONCILE_LOOKBACK_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        raise ConfigError(f"{RECONCILE_LOOKBACK_HOURS}={raw} is not a number of hours") from None
    if not 0 < hours <= 24 * 14:
        raise ConfigError(f"{RECONCILE_LOOKBACK_HOURS}={raw}: expected more than 0, at most 336")
    return timedelta(hours=hours)


def run_reconcile(settings: ProcessorSettings, window: timedelta, clients: ClientFactory,
                  now: datetime | None = None) -> ReconcileResult:
    configure_logging(settings.verbose)
    token = resolve_token(clients.client("secretsmanager"))  # remembered: masked from here on
    archive = ArchiveStore(clients.client("s3"), settings.bucket, settings.prefix,
                           Encryption(settings.kms_key_id))
    omics = clients.client("omics")

    def processor() -> Processor:
        callback = CallbackClient(settings.api_server, token, settings.delivery)
        return Processor(archive, omics, callback, allowed_origins=settings.callback_origins())

    until = now or datetime.now(UTC)
    reconciler = Reconciler(omics, archive, processor_factory=processor, concurrency=4)
    return reconciler.run(until - window, until, fix=True)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    env = os.environ
    settings = ProcessorSettings.from_env(env)
    clients = ClientFactory()
    result = run_reconcile(settings, lookback(env), clients)
    summary = result.summary()
    named = [r.as_dict() for r in result.attention[:MAX_NAMED_RUNS]]
    document = {"finished_at": iso_z(datetime.now(UTC)), "ok": result.ok, "summary": summary,
                "attention": named}
    ArchiveStore(clients.client("s3"), settings.bucket, settings.prefix,
                 Encryption(settings.kms_key_id)).put_json(last_result_key(settings.prefix), document)
    counts = result.counts()
    MetricsLogger(settings.stack_name).count({
        "ReconcileRuns": len(result.runs), "ReconcileAttention": len(result.attention),
        "ReconcileFixed": counts["fixed"], "ReconcilePosts": result.posts,
    })
    log.info("reconcile %s: %s", "in sync" if result.ok else "needs attention",
             json.dumps(summary, separators=(",", ":")))
    for report in result.attention[:MAX_NAMED_RUNS]:
        log.warning("run %s: %s", report.run_id, report.detail)
    if counts[FIX_FAILED]:
        raise OperationError(f"reconcile could not fix {counts[FIX_FAILED]} run(s); the next "
                             "scheduled run tries again")
    return document
