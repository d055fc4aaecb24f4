"""The six steps of DESIGN §1.1 for one event: validate, flatten, enrich, build, archive, deliver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from omics_edp_cli.omics import archive as archive_keys
from omics_edp_cli.omics.archive import ArchiveStore
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.enrich import Enrichment, enrich
from omics_edp_cli.omics.event import InvalidEvent, flatten, validate
from omics_edp_cli.omics.payload import build_payload, undeliverable_reason

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

    @property
    def ok(self) -> bool:
        return self.outcome not in {"refused", "invalid"}

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


class Processor:
    """Runs one event through the pipeline. Clients are passed in; nothing here reads the env."""

    def __init__(
        self,
        archive: ArchiveStore,
        omics: Any,
        callback: CallbackClient | None,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.archive = archive
        self.omics = omics
        self.callback = callback
        self.clock = clock

    def process(self, event: Any, *, dry_run: bool = False, enrich_run: bool = True) -> ProcessResult:
        try:
            run_event = validate(event)
        except InvalidEvent as e:
            return self._reject(event, str(e), dry_run)

        flat = flatten(run_event.raw)
        log.debug("flattened event: %s", flat)
        enrichment = enrich(run_event, self.omics, self.archive.s3) if enrich_run else Enrichment()
        payload = build_payload(run_event, enrichment)
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
        self.archive.put_json(key, payload)
        if skip_reason:
            log.info("run %s %s: archived, not delivered (%s)", run_event.run_id,
                     run_event.status, skip_reason)
            result.outcome, result.reason = "skipped", skip_reason
            return result
        if self.callback is None:
            raise ValueError("a CallbackClient is required unless dry_run is set")
        delivered = self.callback.deliver(payload)  # DeliveryError propagates: Lambda retries
        result.http_status, result.attempts = delivered.http_status, delivered.attempts
        if delivered.ok:
            result.outcome = delivered.outcome
        else:
            result.outcome = "refused"
            result.reason = f"HTTP {delivered.http_status}: {delivered.body}"
        log.info("run %s %s: %s (HTTP %s, %d attempt(s)) archived at %s", run_event.run_id,
                 run_event.status, result.outcome, delivered.http_status, delivered.attempts,
                 result.archive_uri)
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
