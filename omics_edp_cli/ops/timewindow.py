"""`--since` / `--until` values: ISO 8601 moments or ages relative to the command's start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from omics_edp_cli.errors import ConfigError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value: str, now: datetime, option: str = "--since") -> datetime:
    """An aware UTC datetime from `2026-11-23T00:55Z` (naive means UTC) or an age (`90m`, `6h`, `3d`)."""
    match = _RELATIVE.match(value)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: expected ISO 8601 (2026-11-23T00:55Z) or an age like 90m, 6h, 3d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class TimeWindow:
    """Inclusive at both ends, at the archive keys' one-second resolution."""

    since: datetime
    until: datetime

    @property
    def first_second(self) -> datetime:
        return self.since.replace(microsecond=0)

    @property
    def last_second(self) -> datetime:
        return self.until.replace(microsecond=0)

    def describe(self) -> str:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return f"{self.since.strftime(fmt)} .. {self.until.strftime(fmt)}"


def time_window(since: str, until: str | None, now: datetime) -> TimeWindow:
    """Parse both ends; `until` defaults to `now` (the command's start, so live writes can't stretch it)."""
    start = parse_when(since, now, "--since")
    end = parse_when(until, now, "--until") if until else now
    if start > end:
        raise ConfigError(f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) is after --until ({end:%Y-%m-%dT%H:%M:%SZ})")
    return TimeWindow(start, end)
