"""Validation and seed-compatible flattening of HealthOmics run status events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omics_edp_cli.timefmt import parse_time

SOURCE = "aws.omics"
DETAIL_TYPE = "Run Status Change"


class InvalidEvent(ValueError):
    """The event is not a HealthOmics run status change; retrying cannot fix it."""


@dataclass(frozen=True)
class RunStatusEvent:
    """The few fields of a validated event the processor relies on."""

    event_id: str
    time: str
    region: str
    run_id: str
    status: str
    raw: dict[str, Any]

    @property
    def detail(self) -> dict[str, Any]:
        return self.raw["detail"]

    @property
    def event_time(self) -> datetime:
        return parse_time(self.time)


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"missing or empty {where}{key}")
    return value


def _shown(value: Any) -> str:
    """A field's value in plain words for a message: no Python repr (`None`, quotes)."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        return value[:100] if value.strip() else "empty"
    return json.dumps(value, default=str)[:100]


def validate(event: Any) -> RunStatusEvent:
    """Return the typed event, or raise `InvalidEvent` naming the first problem."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"event is a {type(event).__name__}, expected a JSON object")
    if event.get("source") != SOURCE:
        raise InvalidEvent(f"source is {_shown(event.get('source'))}, expected {SOURCE}")
    if event.get("detail-type") != DETAIL_TYPE:
        raise InvalidEvent(f"detail-type is {_shown(event.get('detail-type'))}, expected {DETAIL_TYPE}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("detail is missing or not an object")
    run_id = _required_str(detail, "runId", "detail.")
    status = _required_str(detail, "status", "detail.")
    event_id = _required_str(event, "id", "")
    time = _required_str(event, "time", "")
    try:
        parse_time(time)
    except ValueError as e:
        raise InvalidEvent(f"time {time} is not ISO 8601") from e
    region = event.get("region") if isinstance(event.get("region"), str) else "us-east-1"
    return RunStatusEvent(event_id, time, region or "us-east-1", run_id, status, event)


def flatten(event: dict[str, Any]) -> dict[str, Any]:
    """Flatten one level, exactly like the seed Lambda's `flatten()`.

    Nested object keys are lifted to the top (a later key wins); list items get an `_N`
    suffix (`resources_0`), object items in lists have their keys suffixed.
    """
    flat: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                flat[sub_key] = sub_value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    for sub_key, sub_value in item.items():
                        flat[f"{sub_key}_{i}"] = sub_value
                else:
                    flat[f"{key}_{i}"] = item
        else:
            flat[key] = value
    return flat
