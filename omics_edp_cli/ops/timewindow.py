"""`--since` / `--until` values: ISO 8601 moments or ages relative to the command's start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from omics_edp_cli.errors import ConfigError
from omics_edp_cli.timefmt import parse_duration, parse_time


def parse_when(value: str, now: datetime, option: str = "--since") -> datetime:
    """An aware UTC datetime from `2026-11-23T00:55Z` (naive means UTC) or an age (`90m`, `6h`, `3d`)."""
    try:
        return now - timedelta(seconds=parse_duration(value, unit_required=True))
    except ValueError:
        pass
    try:
        return parse_time(value)
    except ValueError:
        raise ConfigError(
            f"{option} {value}: expected ISO 8601 (2026-11-23T00:55Z) or an age like 90m, 6h, 3d"
        ) from None


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
