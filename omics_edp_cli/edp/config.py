"""The batcher's thresholds and settings, and the environment variable names, read in one place.

Thresholds come from several places (Lambda environment, a CloudFormation parameters file,
a deployed stack's parameters, CLI flags); every one of them is validated by the same
functions here, so a bad value gives the same one-line `ConfigError` wherever it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from omics_edp_cli.errors import ConfigError
from omics_edp_cli.timefmt import parse_duration

# Names the CloudFormation template sets on both EDP functions (docs/CONTRACTS.md).
STATE_TABLE = "STATE_TABLE"
EVENT_BUS_NAME = "EVENT_BUS_NAME"
EVENT_SOURCE = "EVENT_SOURCE"
BUCKET_NAME = "BUCKET_NAME"
BUCKET_IGNORE_PREFIXES = "BUCKET_IGNORE_PREFIXES"
BUCKET_PREFIX_DEPTH = "BUCKET_PREFIX_DEPTH"
BUCKET_THRESHOLD_DURATION = "BUCKET_THRESHOLD_DURATION"
BUCKET_THRESHOLD_EVENT_COUNT = "BUCKET_THRESHOLD_EVENT_COUNT"
BUCKET_MAX_AGE = "BUCKET_MAX_AGE"
VERBOSE_LOGGING = "VERBOSE_LOGGING"
MANIFEST_LOCATION = "MANIFEST_LOCATION"

# CloudFormation parameter names (kept from Quilt EDP so existing parameter files carry over).
P_BUCKET = "BucketName"
P_IGNORE = "BucketIgnorePrefixes"
P_DEPTH = "BucketPrefixDepth"
P_QUIET = "BucketThresholdDuration"
P_COUNT = "BucketThresholdEventCount"
P_MAX_AGE = "BucketMaxAge"
P_BUS = "EventBusName"
P_MANIFESTS = "ManifestLocation"

# Environment variable → parameter name, for reading either with one function.
ENV_TO_PARAMETER = {
    BUCKET_NAME: P_BUCKET,
    BUCKET_IGNORE_PREFIXES: P_IGNORE,
    BUCKET_PREFIX_DEPTH: P_DEPTH,
    BUCKET_THRESHOLD_DURATION: P_QUIET,
    BUCKET_THRESHOLD_EVENT_COUNT: P_COUNT,
    BUCKET_MAX_AGE: P_MAX_AGE,
    EVENT_BUS_NAME: P_BUS,
}

DEFAULT_SOURCE = "com.quiltdata.edp"
DETAIL_TYPE = "package-objects-ready"
DEFAULT_DEPTH = 2
DEFAULT_QUIET = 300.0
DEFAULT_COUNT = 20
# An open batch's members are stored in one DynamoDB item (400 KB); 15,000 digests packed as
# 11 base64 characters, twice (open batch + recently emitted), take ~320 KB, and the objects
# not yet moved to a manifest segment at most 32 KB more (edp/manifests.py).
MAX_COUNT = 15_000
MAX_DEPTH = 50


@dataclass(frozen=True)
class BatchRules:
    """The thresholds of DESIGN §1.2. `max_age_seconds` 0 means no maximum age."""

    prefix_depth: int = DEFAULT_DEPTH
    quiet_seconds: float = DEFAULT_QUIET
    count: int = DEFAULT_COUNT
    max_age_seconds: float = 0.0
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_depth(self.prefix_depth, "prefix depth")
        check_count(self.count, "count threshold")
        check_seconds(self.quiet_seconds, "quiet duration")
        check_seconds(self.max_age_seconds, "maximum age", zero_ok=True)

    def as_dict(self) -> dict[str, object]:
        return {
            "prefix_depth": self.prefix_depth,
            "count": self.count,
            "quiet_seconds": self.quiet_seconds,
            "max_age_seconds": self.max_age_seconds or None,
            "ignore": list(self.ignore),
        }


@dataclass(frozen=True)
class EdpSettings:
    """What both EDP Lambdas read from their environment."""

    table: str
    event_bus: str
    rules: BatchRules = field(default_factory=BatchRules)
    source: str = DEFAULT_SOURCE
    buckets: tuple[str, ...] = ()
    verbose: bool = False
    manifest_location: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdpSettings:
        env = os.environ if env is None else env
        table = env.get(STATE_TABLE, "").strip()
        bus = env.get(EVENT_BUS_NAME, "").strip()
        missing = [n for n, v in ((STATE_TABLE, table), (EVENT_BUS_NAME, bus)) if not v]
        if missing:
            raise ConfigError(f"environment variable(s) not set: {', '.join(missing)}")
        values = {ENV_TO_PARAMETER[k]: v for k, v in env.items() if k in ENV_TO_PARAMETER}
        return cls(
            table=table,
            event_bus=bus,
            rules=rules_from_parameters(values, "environment"),
            source=env.get(EVENT_SOURCE, "").strip() or DEFAULT_SOURCE,
            buckets=parse_buckets(env.get(BUCKET_NAME, "")),
            verbose=env.get(VERBOSE_LOGGING, "false").strip().lower() in {"true", "1", "yes"},
            manifest_location=env.get(MANIFEST_LOCATION, "").strip() or None,
        )


def rules_from_parameters(
    values: Mapping[str, str | None], where: str, base: BatchRules | None = None
) -> BatchRules:
    """Rules from CloudFormation-named values (`BucketPrefixDepth` ...) over `base`; blanks skipped."""
    base = base or BatchRules()
    given = {k: v.strip() for k, v in values.items() if isinstance(v, str) and v.strip()}

    def named(key: str) -> str:
        return f"{key} in {where}"

    return BatchRules(
        prefix_depth=(parse_depth(given[P_DEPTH], named(P_DEPTH)) if P_DEPTH in given
                      else base.prefix_depth),
        quiet_seconds=(parse_seconds(given[P_QUIET], named(P_QUIET)) if P_QUIET in given
                       else base.quiet_seconds),
        count=parse_count(given[P_COUNT], named(P_COUNT)) if P_COUNT in given else base.count,
        max_age_seconds=(parse_seconds(given[P_MAX_AGE], named(P_MAX_AGE), zero_ok=True)
                         if P_MAX_AGE in given else base.max_age_seconds),
        ignore=parse_globs(given[P_IGNORE]) if P_IGNORE in given else base.ignore,
    )


def parse_buckets(text: str) -> tuple[str, ...]:
    """`BucketName`: one bucket, or several comma-separated (`a,b, c` → ("a", "b", "c"))."""
    return tuple(dict.fromkeys(b.strip() for b in text.split(",") if b.strip()))


def parse_globs(text: str) -> tuple[str, ...]:
    """`raw/*, scratch/*` → ("raw/*", "scratch/*")."""
    return tuple(g.strip() for g in text.split(",") if g.strip())


def parse_seconds(text: str, what: str, *, zero_ok: bool = False) -> float:
    """A duration in seconds; `90`, `90s`, `5m`, `1.5h` and `2d` are all accepted.

    A plain number is read as seconds first, so `-60` and `nan` get the range message
    (`check_seconds`) rather than "not a duration".
    """
    raw = str(text).strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            value = parse_duration(raw)
        except ValueError:
            raise ConfigError(f"{what}: {raw!r} is not a number of seconds "
                              "or a duration (90, 90s, 5m, 1.5h, 2d)") from None
    check_seconds(value, what, zero_ok=zero_ok)
    return value


def parse_count(text: str, what: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a whole number") from None
    check_count(value, what)
    return value


def parse_depth(text: str, what: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a whole number") from None
    check_depth(value, what)
    return value


def check_seconds(value: float, what: str, *, zero_ok: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        need = "0 (off) or more" if zero_ok else "more than 0"
        raise ConfigError(f"{what}: {value:g} seconds is not allowed, use {need}")


def check_count(value: int, what: str) -> None:
    if not 1 <= value <= MAX_COUNT:
        raise ConfigError(f"{what}: {value} is not allowed, use 1 to {MAX_COUNT}")


def check_depth(value: int, what: str) -> None:
    if not 1 <= value <= MAX_DEPTH:
        raise ConfigError(f"{what}: {value} is not allowed, use 1 to {MAX_DEPTH}")
