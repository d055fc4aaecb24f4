"""Reconcile's plan: the flags checked (before any AWS call) and resolved against the stack,
with replay's precedence (flag > environment > stack > default) and token lookup.

Report-only needs neither the API server nor the token; `--fix` needs both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.omics.config import (
    ALLOWED_CALLBACK_ORIGINS,
    url_origin,
)
from omics_edp_cli.ops.deployment import archive_flags, archive_target, resolve
from omics_edp_cli.ops.ratelimit import check_pace
from omics_edp_cli.ops.replay.plan import DEFAULT_CONCURRENCY
from omics_edp_cli.ops.timewindow import TimeWindow, time_window


@dataclass(frozen=True)
class ReconcileOptions:
    since: str
    until: str | None = None
    fix: bool = False
    stack: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    api_server: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None


@dataclass(frozen=True)
class ReconcilePlan:
    window: TimeWindow
    bucket: str
    prefix: str
    api_server: str | None
    token: str | None = field(repr=False)
    fix: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    kms_key_id: str | None = None
    allowed_origins: frozenset[str] = frozenset()


def plan_reconcile(
    options: ReconcileOptions,
    clients: ClientFactory,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ReconcilePlan:
    """Check the flags (before any AWS call), then read the stack and, for `--fix`, the token."""
    env = os.environ if env is None else env
    window = time_window(options.since, options.until, now or datetime.now(UTC))
    check_pace(options.concurrency, options.rate)
    flags = archive_flags(env, stack=options.stack, bucket=options.bucket, api_server=options.api_server,
                          send=options.fix, api_missing="--fix needs --api-server or --stack (or API_SERVER)")
    target = archive_target(clients, env, flags, options.prefix, send=options.fix)
    stack, api_server = target.stack, target.api_server
    origins_text = resolve(env.get(ALLOWED_CALLBACK_ORIGINS), None,
                           lambda: stack.info.parameters.get("AllowedCallbackOrigins") if stack else None)
    origins = frozenset(url_origin(o) for o in str(origins_text or "").split(",") if o.strip())
    if api_server and not origins:
        origins = frozenset({url_origin(api_server)})
    return ReconcilePlan(
        window=window, bucket=target.bucket, prefix=target.prefix,
        api_server=api_server.rstrip("/") if api_server else None, token=target.token, fix=options.fix,
        concurrency=options.concurrency, rate=options.rate or None,
        kms_key_id=stack.archive_kms_key_arn if stack else None, allowed_origins=origins,
    )
