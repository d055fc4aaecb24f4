"""Building archived payloads and putting them in S3 the way the processor (or the seed) does."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from omics_edp_cli.omics.archive import archive_key

PREFIX = "omics-run-events"
T0 = datetime(2026, 11, 23, 1, 0, 0, tzinfo=UTC)
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def payload(run: str, status: str, at: datetime, wes_run_id: str | None = "auto",
            event_id: str | None = None) -> dict[str, Any]:
    """A callback payload as the processor archives it (wes_run_id derived from the run by default)."""
    body: dict[str, Any] = {
        "omics_run_id": run,
        "status": status,
        "event_time": iso(at),
        "event_id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{status}/{iso(at)}")),
    }
    if wes_run_id == "auto":
        body["wes_run_id"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"wes-{run}"))
    elif wes_run_id:
        body["wes_run_id"] = wes_run_id
    return body


def put_payload(s3: Any, bucket: str, body: Any, key: str | None = None, prefix: str = PREFIX) -> str:
    """Archive `body` under this project's deterministic key (or `key`); returns the key."""
    if key is None:
        key = archive_key(prefix, datetime.fromisoformat(body["event_time"]), body["event_id"])
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="AES256")
    return key


def seed_key(moment: datetime, prefix: str = PREFIX) -> str:
    """A key as the seed Lambda wrote it: processing time and a random UUID."""
    return f"{prefix}/event_{moment.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4()}.json"


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
