"""The one ISO 8601 time parser and the one duration parser. Standard library only.

Both Lambda functions ship this module (event times, S3 event times) and the operator
workflows use it too (`--since 6h`, `--quiet 5m`, dead-letter timestamps), so every place
reads a time or a duration by the same rules. Both raise `ValueError` with a short reason;
callers turn it into their own error (`InvalidEvent`, `S3EventError`, `ConfigError`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

# Seconds per unit. A bare number is seconds.
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_time(text: str) -> datetime:
    """`2026-01-22T22:25:45Z`, with or without a fraction or an offset → an aware UTC datetime.

    A time without an offset is taken as UTC (EventBridge and S3 always write UTC).
    """
    if not isinstance(text, str):
        raise ValueError(f"not a string: {type(text).__name__}")
    raw = text.strip()
    if raw[-1:] in ("z", "Z"):  # Python 3.11 reads `Z`, but not a lower-case `z`
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_duration(text: str | float, *, unit_required: bool = False) -> float:
    """`90`, `90s`, `5m`, `1.5h`, `2d`, `1w` → seconds (finite, not negative).

    `unit_required` is for places where a bare number would be ambiguous (`--since 2026`).
    """
    if isinstance(text, bool):
        raise ValueError("not a duration")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match or (unit_required and not match.group(2)):
            raise ValueError(f"not a duration: {text} (use a number with s, m, h, d or w)")
        value = float(match.group(1)) * DURATION_UNITS[(match.group(2) or "s").lower()]
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a duration: {text}")
    return value


def iso_z(moment: datetime) -> str:
    """An aware datetime → `2026-03-02T10:15:00Z` (milliseconds only when there are some)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
