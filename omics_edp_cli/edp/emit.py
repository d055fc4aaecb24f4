"""The `package-objects-ready` event (DESIGN §1.2) and publishing it with `PutEvents`."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from omics_edp_cli.edp.config import DEFAULT_SOURCE, DETAIL_TYPE
from omics_edp_cli.edp.engine import Emission
from omics_edp_cli.edp.s3events import iso_time

log = logging.getLogger(__name__)
PUT_EVENTS_MAX = 10


def detail(e: Emission) -> dict[str, Any]:
    """Quilt's payload (`version`, `bucket`, `prefix`) plus what consumers need beyond it
    (`manifest`: the batch's exact object list, when one was written)."""
    out = {
        "version": "0.1",
        "bucket": e.bucket,
        "prefix": e.prefix,
        "count": e.count,
        "batch_id": e.batch_id,
        "first_event_at": iso_time(e.first_event_at),
        "last_event_at": iso_time(e.last_event_at),
        "trigger": e.trigger,
    }
    if e.manifest:
        out["manifest"] = e.manifest
    return out


def consumer_event(e: Emission, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """The event as a rule target receives it (EventBridge adds `id`, `account` and `region`)."""
    return {
        "version": "0",
        "detail-type": DETAIL_TYPE,
        "source": source,
        "time": iso_time(e.emitted_at),
        "resources": [f"arn:aws:s3:::{e.bucket}"],
        "detail": detail(e),
    }


def put_events_entry(e: Emission, bus: str, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    return {
        "Source": source,
        "DetailType": DETAIL_TYPE,
        "Resources": [f"arn:aws:s3:::{e.bucket}"],
        "Detail": json.dumps(detail(e)),
        "EventBusName": bus,
        "Time": datetime.fromtimestamp(e.emitted_at, UTC),
    }


class Publisher(Protocol):
    def publish(self, emissions: Sequence[Emission]) -> dict[str, str | None]:
        """batch_id → None if accepted, else the reason it was not."""
        ...


class EventBridgePublisher:
    """`PutEvents` in chunks of ten; a failed entry or call is reported, never raised."""

    def __init__(self, events: Any, bus: str, source: str = DEFAULT_SOURCE):
        self.events = events
        self.bus = bus
        self.source = source

    def publish(self, emissions: Sequence[Emission]) -> dict[str, str | None]:
        # Imported here: `consumer_event` is this module's other user (`simulate-batch -o json`),
        # which needs no AWS library.
        from botocore.exceptions import BotoCoreError, ClientError

        results: dict[str, str | None] = {}
        for start in range(0, len(emissions), PUT_EVENTS_MAX):
            chunk = emissions[start:start + PUT_EVENTS_MAX]
            try:
                response = self.events.put_events(
                    Entries=[put_events_entry(e, self.bus, self.source) for e in chunk])
            except (ClientError, BotoCoreError) as err:
                log.error("PutEvents failed for %d batch(es): %s", len(chunk), err)
                results.update((e.batch_id, str(err)) for e in chunk)
                continue
            for e, entry in zip(chunk, response.get("Entries", []), strict=False):
                error = entry.get("ErrorCode")
                results[e.batch_id] = f"{error}: {entry.get('ErrorMessage', '')}" if error else None
            for e in chunk[len(response.get("Entries", [])):]:
                results[e.batch_id] = "no result from PutEvents"
        return results


class CollectingPublisher:
    """Accepts everything and keeps it (simulation, tests, local runs without a bus)."""

    def __init__(self) -> None:
        self.published: list[Emission] = []

    def publish(self, emissions: Sequence[Emission]) -> dict[str, str | None]:
        self.published.extend(emissions)
        return {e.batch_id: None for e in emissions}
