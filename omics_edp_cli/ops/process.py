"""`omics-edp process`: run one event through the very code the Lambda runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.omics.archive import ArchiveStore, Encryption
from omics_edp_cli.omics.config import DEFAULT_S3_PREFIX, DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.event import InvalidEvent, validate
from omics_edp_cli.omics.processor import Processor, ProcessResult
from omics_edp_cli.omics.secrets import token_from_secret

TOKEN_ENV = "OMICS_EDP_API_TOKEN"
PLACEHOLDER_BUCKET = "DATA_LAKE_BUCKET"


@dataclass(frozen=True)
class ProcessOptions:
    """Flags as given; `resolve` fills the gaps from the environment (flag > env > default)."""

    bucket: str | None = None
    prefix: str | None = None
    api_server: str | None = None
    secret_id: str | None = None
    kms_key_id: str | None = None
    dry_run: bool = False
    enrich: bool = True

    def resolve(self, env: Mapping[str, str] | None = None) -> ProcessOptions:
        env = os.environ if env is None else env
        return ProcessOptions(
            bucket=self.bucket or env.get("DATA_LAKE_BUCKET"),
            prefix=(self.prefix or env.get("S3_PREFIX") or DEFAULT_S3_PREFIX).strip("/"),
            api_server=self.api_server or env.get("API_SERVER"),
            secret_id=self.secret_id or env.get("ENV_SECRETS"),
            kms_key_id=self.kms_key_id,
            dry_run=self.dry_run,
            enrich=self.enrich,
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
) -> ProcessResult:
    """Validate the configuration (before any AWS call), then process the event."""
    env = os.environ if env is None else env
    opts = options.resolve(env)
    if not opts.dry_run:
        missing = [
            flag for flag, value in (("--bucket", opts.bucket), ("--api-server", opts.api_server))
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} required (or DATA_LAKE_BUCKET / API_SERVER), "
                "or use --dry-run"
            )
    bucket = opts.bucket or PLACEHOLDER_BUCKET
    s3 = clients.client("s3") if (opts.enrich or not opts.dry_run) else None
    omics = clients.client("omics") if opts.enrich else None
    callback = None
    if not opts.dry_run:
        token = env.get(TOKEN_ENV) or env.get("AUTH_TOKEN")
        if not token and opts.secret_id:
            token = token_from_secret(clients.client("secretsmanager"), opts.secret_id)
        callback = CallbackClient(
            str(opts.api_server), token, policy or DeliveryPolicy.from_env(env)
        )
    archive = ArchiveStore(s3, bucket, opts.prefix or DEFAULT_S3_PREFIX, Encryption(opts.kms_key_id))
    processor = Processor(archive, omics, callback)
    return processor.process(event, dry_run=opts.dry_run, enrich_run=opts.enrich)
