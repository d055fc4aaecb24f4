"""Environment variable names and the processor's settings, read in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from omics_edp_cli.errors import ConfigError

# Names the CloudFormation template sets on the function (DESIGN §1.1).
API_SERVER = "API_SERVER"
DATA_LAKE_BUCKET = "DATA_LAKE_BUCKET"
S3_PREFIX = "S3_PREFIX"
VERBOSE_LOGGING = "VERBOSE_LOGGING"
AUTH_TOKEN = "AUTH_TOKEN"
# The CLI's own variable for the NGS360 API key (the Lambdas read AUTH_TOKEN or the secret).
CLI_TOKEN_ENV = "OMICS_EDP_API_TOKEN"
ENV_SECRETS = "ENV_SECRETS"
ARCHIVE_KMS_KEY_ID = "ARCHIVE_KMS_KEY_ID"
# Delivery tuning; defaults fit a 60 s function timeout.
CALLBACK_MAX_RETRIES = "CALLBACK_MAX_RETRIES"
CALLBACK_TIMEOUT = "CALLBACK_TIMEOUT"
CALLBACK_BACKOFF = "CALLBACK_BACKOFF"
# Origins a run's `callback_url` tag may point at (comma-separated; default: API_SERVER's).
ALLOWED_CALLBACK_ORIGINS = "ALLOWED_CALLBACK_ORIGINS"
# The stack name, the dimension of the processor's CloudWatch metrics.
STACK_NAME = "STACK_NAME"
# How far back the scheduled reconcile looks.
RECONCILE_LOOKBACK_HOURS = "RECONCILE_LOOKBACK_HOURS"

DEFAULT_S3_PREFIX = "omics-run-events"
CALLBACK_PATH = "/internal/callbacks/omics-state-change"
HEALTH_PATH = "/internal/callbacks/health"
METRICS_NAMESPACE = "OmicsEdp/Processor"
DEFAULT_RECONCILE_LOOKBACK_HOURS = 6.0


def url_origin(url: str) -> str:
    """`https://Host:443/x` → `https://host`: scheme and host lower-cased, default port dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in {("https", 443), ("http", 80)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard delivery tries before the invocation is failed (and Lambda retries it).

    Worst case wall time is about (max_retries + 1) * timeout + Σ backoff, bounded by backoff_max
    and retry_after_cap per wait: with the defaults, well under a minute.
    """

    max_retries: int = 4
    timeout: float = 8.0
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    backoff_jitter: float = 0.5
    retry_after_cap: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeliveryPolicy:
        """Defaults, tuned by `CALLBACK_MAX_RETRIES`, `CALLBACK_TIMEOUT`, `CALLBACK_BACKOFF`."""
        env = os.environ if env is None else env
        defaults = cls()
        try:
            return cls(
                max_retries=int(env.get(CALLBACK_MAX_RETRIES, defaults.max_retries)),
                timeout=float(env.get(CALLBACK_TIMEOUT, defaults.timeout)),
                backoff_factor=float(env.get(CALLBACK_BACKOFF, defaults.backoff_factor)),
            )
        except ValueError as e:
            raise ConfigError(f"bad callback tuning variable: {e}") from e


@dataclass(frozen=True)
class ProcessorSettings:
    api_server: str
    bucket: str
    prefix: str = DEFAULT_S3_PREFIX
    verbose: bool = False
    kms_key_id: str | None = None
    delivery: DeliveryPolicy = DeliveryPolicy()
    allowed_callback_origins: frozenset[str] = field(default_factory=frozenset)
    stack_name: str = ""

    def callback_origins(self) -> frozenset[str]:
        """The allow-list for `callback_url` tags; empty means only API_SERVER's origin."""
        return self.allowed_callback_origins or frozenset({url_origin(self.api_server)})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorSettings:
        env = os.environ if env is None else env
        api_server = env.get(API_SERVER, "").strip()
        bucket = env.get(DATA_LAKE_BUCKET, "").strip()
        missing = [n for n, v in ((API_SERVER, api_server), (DATA_LAKE_BUCKET, bucket)) if not v]
        if missing:
            raise ConfigError(f"environment variable(s) not set: {', '.join(missing)}")
        return cls(
            api_server=api_server.rstrip("/"),
            bucket=bucket,
            prefix=(env.get(S3_PREFIX) or DEFAULT_S3_PREFIX).strip("/"),
            verbose=env.get(VERBOSE_LOGGING, "false").strip().lower() in {"true", "1", "yes"},
            kms_key_id=env.get(ARCHIVE_KMS_KEY_ID) or None,
            delivery=DeliveryPolicy.from_env(env),
            allowed_callback_origins=frozenset(
                url_origin(o) for o in env.get(ALLOWED_CALLBACK_ORIGINS, "").split(",") if o.strip()
            ),
            stack_name=env.get(STACK_NAME, "").strip(),
        )
