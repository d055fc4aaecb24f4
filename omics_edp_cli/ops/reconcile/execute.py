"""Carrying out a reconcile plan with the Lambda's own reconcile core and processor."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.omics.archive import ArchiveStore, Encryption
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.omics.reconcile import Progress, Reconciler, ReconcileResult
from omics_edp_cli.ops.ratelimit import RateLimiter
from omics_edp_cli.ops.reconcile.plan import ReconcilePlan


def reconcile(
    plan: ReconcilePlan,
    clients: ClientFactory,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    policy: DeliveryPolicy | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ReconcileResult:
    """Compare (and with `plan.fix`, send what is missing). Ctrl-C sets `stop`: no new run
    starts, runs in flight finish their current event."""
    stop = stop or threading.Event()
    policy = policy or DeliveryPolicy.from_env(os.environ if env is None else env)
    archive = ArchiveStore(clients.client("s3"), plan.bucket, plan.prefix, Encryption(plan.kms_key_id))
    omics = clients.client("omics")

    def processor() -> Processor:
        callback = CallbackClient(str(plan.api_server), plan.token, policy)
        return Processor(archive, omics, callback, allowed_origins=plan.allowed_origins or None)

    limiter = RateLimiter(plan.rate, clock=clock, sleep=stop.wait)
    reconciler = Reconciler(
        omics, archive, processor_factory=processor if plan.fix else None,
        concurrency=plan.concurrency, acquire=limiter.acquire, progress=progress, stop=stop,
    )
    try:
        return reconciler.run(plan.window.since, plan.window.until, fix=plan.fix)
    except KeyboardInterrupt:
        stop.set()
        raise
