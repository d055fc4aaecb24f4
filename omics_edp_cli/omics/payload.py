"""The callback payload: the contract of NGS360 WES `POST /internal/callbacks/omics-state-change`."""

from __future__ import annotations

from typing import Any

from omics_edp_cli.omics.enrich import Enrichment
from omics_edp_cli.omics.event import RunStatusEvent, parse_time

# Field limits the receiver enforces (schemas/callback.py in the WES service).
STATUS_MESSAGE_MAX = 1000
FAILURE_REASON_MAX = 2000
WES_RUN_ID_LEN = 36
OMICS_RUN_ID_MAX = 50
EVENT_ID_MAX = 100
RECEIVER_STATUSES = frozenset(
    {
        "COMPLETED", "FAILED", "CANCELLED", "CANCELLED_RUNNING", "CANCELLED_STARTING",
        "RUNNING", "STARTING", "PENDING", "QUEUED", "STOPPING", "TERMINATING",
    }
)
_ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def build_payload(event: RunStatusEvent, enrichment: Enrichment) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "omics_run_id": event.run_id,
        "status": event.status,
        "event_time": event.time,
        "event_id": event.event_id,
    }
    if enrichment.wes_run_id:
        payload["wes_run_id"] = enrichment.wes_run_id
    if event.status == "FAILED":
        message = event.detail.get("statusMessage")
        reason = event.detail.get("failureReason")
        if message:
            payload["status_message"] = truncate(str(message), STATUS_MESSAGE_MAX)
        if reason:
            payload["failure_reason"] = truncate(str(reason), FAILURE_REASON_MAX)
    if enrichment.output_mapping is not None:
        payload["output_mapping"] = enrichment.output_mapping
    if enrichment.log_urls is not None:
        payload["log_urls"] = enrichment.log_urls
    return payload


def undeliverable_reason(payload: dict[str, Any]) -> str | None:
    """Why the receiver cannot take this payload at all (so it is archived, not sent)."""
    wes_run_id = payload.get("wes_run_id")
    if not wes_run_id:
        return "no WESRunId tag on the run"
    if not isinstance(wes_run_id, str) or len(wes_run_id) != WES_RUN_ID_LEN:
        return f"wes_run_id {wes_run_id!r} is not a {WES_RUN_ID_LEN}-character UUID"
    return None


def contract_errors(payload: Any) -> list[str]:
    """Every way `payload` breaks the receiver's schema (empty when it is valid).

    Used by the local receivers in tests and the demo to answer like the real service.
    """
    if not isinstance(payload, dict):
        return ["body is not a JSON object"]
    errors: list[str] = []
    reason = undeliverable_reason(payload)
    if reason:
        errors.append(reason)
    if payload.get("status") not in RECEIVER_STATUSES:
        status = payload.get("status")
        errors.append(f"status {status} is not a known HealthOmics status" if status
                      else "status is missing")
    try:
        parse_time(str(payload.get("event_time")))
    except ValueError:
        errors.append("event_time is missing or not ISO 8601")
    for name, low, high in (
        ("omics_run_id", 1, OMICS_RUN_ID_MAX),
        ("event_id", 1, EVENT_ID_MAX),
        ("status_message", 0, STATUS_MESSAGE_MAX),
        ("failure_reason", 0, FAILURE_REASON_MAX),
    ):
        value = payload.get(name)
        if value is not None and not (isinstance(value, str) and low <= len(value) <= high):
            errors.append(f"{name} must be a string of {low}-{high} characters")
    for name in ("output_mapping", "log_urls"):
        if name in payload and payload[name] is not None and not isinstance(payload[name], dict):
            errors.append(f"{name} must be an object")
    return errors
