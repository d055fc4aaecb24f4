"""`omics-edp process`: run one event through the very code the Lambda runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, DeliveryError
from omics_edp_cli.omics.archive import ArchiveStore, Encryption, archive_key
from omics_edp_cli.omics.config import (
    API_SERVER,
    DATA_LAKE_BUCKET,
    DEFAULT_S3_PREFIX,
    S3_PREFIX,
    DeliveryPolicy,
)
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.event import InvalidEvent, RunStatusEvent, validate
from omics_edp_cli.omics.processor import Processor, ProcessResult
from omics_edp_cli.ops.deployment import ProcessorStack, api_token, env_token, load_typed, resolve

PLACEHOLDER_BUCKET = "DATA_LAKE_BUCKET"


class DeliveryProgress(Protocol):
    """What the CLI shows while the callback is retried."""

    def retrying(self, failed_attempt: int, attempts: int, reason: str) -> None: ...


@dataclass(frozen=True)
class ProcessOptions:
    """Flags as given; `plan_process` fills the gaps (flag > environment > stack > default)."""

    bucket: str | None = None
    prefix: str | None = None
    api_server: str | None = None
    secret_id: str | None = None
    kms_key_id: str | None = None
    stack: str | None = None
    dry_run: bool = False
    enrich: bool = True


@dataclass(frozen=True)
class ProcessPlan:
    """Where the archive goes and where the payload is sent; `token` only when sending."""

    bucket: str
    prefix: str
    api_server: str | None
    kms_key_id: str | None
    token: str | None = field(repr=False)
    dry_run: bool
    enrich: bool


def plan_process(options: ProcessOptions, clients: ClientFactory,
                 env: Mapping[str, str] | None = None) -> ProcessPlan:
    """Check what needs no AWS call first, then read the stack and the token if needed."""
    env = os.environ if env is None else env
    bucket = resolve(options.bucket, env.get(DATA_LAKE_BUCKET))
    api_server = resolve(options.api_server, env.get(API_SERVER))
    if not (options.dry_run or options.stack):
        missing = [f"{flag} (or {var})" for flag, var, value in (
            ("--bucket", DATA_LAKE_BUCKET, bucket), ("--api-server", API_SERVER, api_server)) if not value]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} required, or --stack NAME, or use --dry-run")
    if not options.dry_run:
        env_token(env)  # a bad token in the environment is refused before any AWS call
    stack = load_typed(clients, options.stack, ProcessorStack) if options.stack else None
    if stack is not None:
        bucket = resolve(bucket, None, lambda: stack.data_lake_bucket)
        api_server = resolve(api_server, None, lambda: stack.api_server)
    token = None
    if not options.dry_run:
        token = api_token(clients, env, secret_id=options.secret_id, stack=stack)
    prefix = resolve(options.prefix, env.get(S3_PREFIX), lambda: stack.bucket_prefix if stack else None,
                     DEFAULT_S3_PREFIX)
    kms_key_id = resolve(options.kms_key_id, None, lambda: stack.archive_kms_key_arn if stack else None)
    return ProcessPlan(
        bucket=bucket or PLACEHOLDER_BUCKET, prefix=str(prefix).strip("/"), api_server=api_server,
        kms_key_id=kms_key_id, token=token, dry_run=options.dry_run, enrich=options.enrich,
    )


def check_event(event: Any, source: str) -> None:
    """Bad input is a usage error for the CLI (the Lambda would archive it as rejected)."""
    try:
        validate(event)
    except InvalidEvent as e:
        raise ConfigError(f"{source}: not a HealthOmics run status event: {e}") from None


def process_event(
    event: Any,
    options: ProcessOptions,
    clients: ClientFactory,
    env: Mapping[str, str] | None = None,
    policy: DeliveryPolicy | None = None,
    progress: DeliveryProgress | None = None,
) -> ProcessResult:
    """Plan (configuration checked before any AWS call), then process the event.

    When the receiver stays unreachable, the `DeliveryError` says where the event is archived
    and the `omics-edp replay` command that sends it once the receiver is back.
    """
    env = os.environ if env is None else env
    plan = plan_process(options, clients, env)
    s3 = clients.client("s3") if (plan.enrich or not plan.dry_run) else None
    omics = clients.client("omics") if plan.enrich else None
    callback = None
    if not plan.dry_run:
        policy = policy or DeliveryPolicy.from_env(env)
        attempts = policy.max_retries + 1
        on_retry = None
        if progress is not None:
            def on_retry(failed: int, reason: str) -> None:
                progress.retrying(failed, attempts, reason)
        callback = CallbackClient(str(plan.api_server), plan.token, policy, on_retry=on_retry)
    archive = ArchiveStore(s3, plan.bucket, plan.prefix, Encryption(plan.kms_key_id))
    processor = Processor(archive, omics, callback)
    try:
        return processor.process(event, dry_run=plan.dry_run, enrich_run=plan.enrich)
    except DeliveryError as e:
        run_event = validate(event)  # it was valid: delivery is only tried after validation
        where = archive.uri(archive_key(plan.prefix, run_event.event_time, run_event.event_id))
        raise DeliveryError(f"{e}; the event is archived at {where}: send it again once the receiver "
                            f"answers with: {replay_command(run_event, plan, options)}",
                            attempts=e.attempts, http_status=e.http_status) from None


def replay_command(event: RunStatusEvent, plan: ProcessPlan, options: ProcessOptions) -> str:
    """The `omics-edp replay` line that re-sends exactly this archived event."""
    moment = event.event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    where = (f"--stack {options.stack}" if options.stack
             else f"--bucket {plan.bucket} --api-server {plan.api_server}")
    if not options.stack and plan.prefix != DEFAULT_S3_PREFIX:
        where += f" --prefix {plan.prefix}"
    return f"omics-edp replay {where} --since {moment} --until {moment} --run-id {event.run_id}"
