"""The six steps of DESIGN §1.1 for one event: validate, flatten, enrich, build, archive, deliver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from omics_edp_cli.omics import archive as archive_keys
from omics_edp_cli.omics.archive import ArchiveStore
from omics_edp_cli.omics.config import url_origin
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.enrich import Enrichment, enrich
from omics_edp_cli.omics.event import InvalidEvent, RunStatusEvent, flatten, validate
from omics_edp_cli.omics.payload import build_payload, undeliverable_reason
from omics_edp_cli.timefmt import iso_z

GAPS_FIELD = "enrichment_gaps"

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "already_processed", "skipped", "refused", "invalid", "planned"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ProcessResult:
    """What happened to one event. `refused` = permanent 4xx; `invalid` = not a run event."""

    outcome: Outcome
    archive_uri: str | None = None
    payload: dict[str, Any] | None = None
    http_status: int | None = None
    attempts: int = 0
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    refusal_uri: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome not in {"refused", "invalid"}

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


class Processor:
    """Runs one event through the pipeline. Clients are passed in; nothing here reads the env.

    `allowed_origins` are the origins a run's `callback_url` tag may name (default: the
    callback client's own origin); any other is refused, so a tag never gets the API key.
    """

    def __init__(
        self,
        archive: ArchiveStore,
        omics: Any,
        callback: CallbackClient | None,
        clock: Callable[[], datetime] = utc_now,
        allowed_origins: frozenset[str] | None = None,
    ):
        self.archive = archive
        self.omics = omics
        self.callback = callback
        self.clock = clock
        if allowed_origins is None:
            allowed_origins = frozenset({url_origin(callback.url)}) if callback else frozenset()
        self.allowed_origins = allowed_origins

    def process(self, event: Any, *, dry_run: bool = False, enrich_run: bool = True) -> ProcessResult:
        try:
            run_event = validate(event)
        except InvalidEvent as e:
            return self._reject(event, str(e), dry_run)

        flat = flatten(run_event.raw)
        log.debug("flattened event: %s", flat)
        # EnrichmentError (GetRun throttled, 5xx, timeout) propagates: Lambda retries.
        enrichment = enrich(run_event, self.omics, self.archive.s3) if enrich_run else Enrichment()
        payload = build_payload(run_event, enrichment)
        if enrichment.gaps:
            payload[GAPS_FIELD] = sorted(set(enrichment.gaps))
        key = archive_keys.archive_key(self.archive.prefix, run_event.event_time, run_event.event_id)
        result = ProcessResult(
            "planned",
            archive_uri=self.archive.uri(key),
            payload=payload,
            warnings=list(enrichment.warnings),
        )
        skip_reason = undeliverable_reason(payload)
        if dry_run:
            result.reason = f"would be skipped: {skip_reason}" if skip_reason else None
            return result

        # Archive first: if delivery then fails, the payload is already safe for replay.
        payload = self._archive(key, payload)
        result.payload = payload
        skip_reason = undeliverable_reason(payload)
        if skip_reason:
            log.info("run %s %s: archived, not delivered (%s)", run_event.run_id,
                     run_event.status, skip_reason)
            result.outcome, result.reason = "skipped", skip_reason
            return result
        if self.callback is None:
            raise ValueError("a CallbackClient is required unless dry_run is set")
        url = enrichment.callback_url
        if url and url_origin(url) not in self.allowed_origins:
            reason = (f"callback_url tag origin {url_origin(url)} is not an allowed callback "
                      "origin (AllowedCallbackOrigins): not sent")
            return self._refuse(run_event, payload, result, None, reason, callback_url=url)
        # DeliveryError (and ApiKeyRefused on 401/403) propagates: Lambda retries, then the DLQ.
        delivered = self.callback.deliver(payload, url)
        result.http_status, result.attempts = delivered.http_status, delivered.attempts
        if not delivered.ok:
            return self._refuse(run_event, payload, result, delivered.http_status,
                                f"HTTP {delivered.http_status}: {delivered.body}",
                                answer=delivered.body, callback_url=url)
        result.outcome = "already_processed" if delivered.outcome == "already_processed" else "delivered"
        log.info("run %s %s: %s (HTTP %s, %d attempt(s)) archived at %s", run_event.run_id,
                 run_event.status, result.outcome, delivered.http_status, delivered.attempts,
                 result.archive_uri)
        return result

    def _archive(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Write `payload`, unless the object already there is better: then keep and return it.

        Better = it has a `wes_run_id` and this one has none, or it has no enrichment gaps and
        this one has some. Re-processing an event can then never make its archive worse.
        """
        if payload.get("wes_run_id") and not payload.get(GAPS_FIELD):
            self.archive.put_json(key, payload)
            return payload
        existing = self.archive.get_json_if_exists(key)
        if isinstance(existing, dict) and _better(existing, payload):
            log.warning("kept the better archive record at %s (it has %s)", self.archive.uri(key),
                        "a wes_run_id" if existing.get("wes_run_id") else "no enrichment gaps")
            return existing
        self.archive.put_json(key, payload)
        return payload

    def _refuse(self, event: RunStatusEvent, payload: dict[str, Any], result: ProcessResult,
                status: int | None, reason: str, answer: str | None = None,
                callback_url: str | None = None) -> ProcessResult:
        """Keep a refusal record under `refused/` (not retried: the answer would not change)."""
        key = archive_keys.refused_key(self.archive.prefix, event.event_time, event.event_id)
        record = {
            "refused_at": iso_z(self.clock()),
            "omics_run_id": event.run_id,
            "status": event.status,
            "event_id": event.event_id,
            "http_status": status,
            "reason": reason,
            "receiver_answer": answer,
            "callback_url": callback_url,
            "archive_key": result.archive_uri,
            "payload": payload,
        }
        self.archive.put_json(key, record)
        result.outcome, result.reason, result.http_status = "refused", reason, status
        result.refusal_uri = self.archive.uri(key)
        log.error("run %s %s: refused (%s), kept at %s", event.run_id, event.status, reason,
                  result.refusal_uri)
        return result

    def _reject(self, event: Any, reason: str, dry_run: bool) -> ProcessResult:
        key = archive_keys.rejected_key(self.archive.prefix, event, self.clock())
        result = ProcessResult("invalid", archive_uri=self.archive.uri(key), reason=reason)
        if not dry_run:
            # Kept where an operator can find it; a failure to write it is raised (not lost).
            self.archive.put_json(
                key, {"reason": reason, "received_at": self.clock().isoformat(), "event": event}
            )
            log.error("rejected event (%s), kept at %s", reason, result.archive_uri)
        return result


def _better(existing: dict[str, Any], new: dict[str, Any]) -> bool:
    if existing.get("wes_run_id") and not new.get("wes_run_id"):
        return True
    same_run = existing.get("wes_run_id") == new.get("wes_run_id")
    return same_run and not existing.get(GAPS_FIELD) and bool(new.get(GAPS_FIELD))
