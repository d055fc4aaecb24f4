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
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.omics.config import (
    ALLOWED_CALLBACK_ORIGINS,
    API_SERVER,
    DATA_LAKE_BUCKET,
    DEFAULT_S3_PREFIX,
    S3_PREFIX,
    url_origin,
)
from omics_edp_cli.ops.deployment import (
    ProcessorStack,
    api_token,
    env_token,
    load_typed,
    no_token_error,
    resolve,
    token_configured,
)
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
    if options.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if options.rate is not None and options.rate < 0:
        raise ConfigError("--rate must be 0 (no limit) or more events per second")
    bucket = resolve(options.bucket, env.get(DATA_LAKE_BUCKET))
    api_server = resolve(options.api_server, env.get(API_SERVER))
    if not (bucket or options.stack):
        raise ConfigError("--bucket or --stack required (or DATA_LAKE_BUCKET)")
    if options.fix and not (api_server or options.stack):
        raise ConfigError("--fix needs --api-server or --stack (or API_SERVER)")
    if options.fix and not (options.stack or token_configured(env)):
        raise no_token_error()
    if options.fix:
        env_token(env)  # the one token policy: a bad token exits 2 before any AWS call
    stack = load_typed(clients, options.stack, ProcessorStack) if options.stack else None
    if stack is not None:
        bucket = resolve(bucket, None, lambda: stack.data_lake_bucket)
        api_server = resolve(api_server, None, lambda: stack.api_server)
    token = None
    if options.fix:
        token = api_token(clients, env, stack=stack)
        if not token:
            raise no_token_error(stack)
    prefix = resolve(options.prefix, env.get(S3_PREFIX), lambda: stack.bucket_prefix if stack else None,
                     DEFAULT_S3_PREFIX)
    origins_text = resolve(env.get(ALLOWED_CALLBACK_ORIGINS), None,
                           lambda: stack.info.parameters.get("AllowedCallbackOrigins") if stack else None)
    origins = frozenset(url_origin(o) for o in str(origins_text or "").split(",") if o.strip())
    if api_server and not origins:
        origins = frozenset({url_origin(api_server)})
    return ReconcilePlan(
        window=window, bucket=str(bucket), prefix=str(prefix).strip("/"),
        api_server=api_server.rstrip("/") if api_server else None, token=token, fix=options.fix,
        concurrency=options.concurrency, rate=options.rate or None,
        kms_key_id=stack.archive_kms_key_arn if stack else None, allowed_origins=origins,
    )
