"""Archive keys and S3 I/O for processed payloads and rejected events.

Keys keep the seed's format, `{prefix}/event_{YYYYMMDD_HHMMSS}_{UUID}.json`, so old
archives stay readable and keys sort by time. They are deterministic: the timestamp is the
event time (UTC) and the UUID is derived from the EventBridge id, so re-processing the same
event overwrites the same object instead of adding one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.errors import ArchiveError

# A fixed namespace: changing it would change every key this project ever wrote.
ARCHIVE_NAMESPACE = uuid.UUID("0b6f5c1e-7a4d-5f0e-9c1b-6e2d4a8f3b71")
KEY_TIME_FORMAT = "%Y%m%d_%H%M%S"
KEY_RE = re.compile(r"(?:^|/)event_(\d{8}_\d{6})_([0-9a-fA-F-]{36})\.json$")
REJECTED_DIR = "rejected"
# Payloads the receiver will never accept as they are (and callback_url tags not allowed).
REFUSED_DIR = "refused"


def archive_key(prefix: str, event_time: datetime, event_id: str) -> str:
    stamp = event_time.astimezone(UTC).strftime(KEY_TIME_FORMAT)
    return f"{_prefix(prefix)}event_{stamp}_{uuid.uuid5(ARCHIVE_NAMESPACE, event_id)}.json"


def key_prefix_for_time(prefix: str, moment: datetime) -> str:
    """The key every archive object written at or after `moment` sorts after (for `StartAfter`)."""
    return f"{_prefix(prefix)}event_{moment.astimezone(UTC).strftime(KEY_TIME_FORMAT)}"


def time_from_key(key: str) -> datetime | None:
    """The timestamp embedded in an archive key (seed or this project's), or None."""
    match = KEY_RE.search(key)
    if not match:
        return None
    return _stamp_time(match.group(1))


@functools.lru_cache(maxsize=1024)
def _stamp_time(stamp: str) -> datetime:
    """`20261123_010000` → its UTC datetime (`strptime` is slow; keys share their seconds)."""
    return datetime.strptime(stamp, KEY_TIME_FORMAT).replace(tzinfo=UTC)


def rejected_key(prefix: str, raw: Any, now: datetime) -> str:
    """Deterministic per event content, so a retried rejection overwrites itself."""
    digest = hashlib.sha256(_canonical(raw).encode()).hexdigest()[:32]
    stamp = now.astimezone(UTC).strftime("%Y%m%d")
    return f"{_prefix(prefix)}{REJECTED_DIR}/{stamp}/rejected_{digest}.json"


def refused_key(prefix: str, event_time: datetime, event_id: str) -> str:
    """Like `archive_key`, under `refused/`: one record per event, sorted by event time."""
    return archive_key(f"{_prefix(prefix)}{REFUSED_DIR}", event_time, event_id)


def _prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption for every object written: AES256, or SSE-KMS with a key."""

    kms_key_id: str | None = None

    def put_args(self) -> dict[str, str]:
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}


class ArchiveStore:
    """The S3 archive of one processor deployment."""

    def __init__(self, s3: Any, bucket: str, prefix: str, encryption: Encryption | None = None):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.encryption = encryption or Encryption()

    def put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, indent=None, separators=(",", ":"), default=str).encode()
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                **self.encryption.put_args(),
            )
        except (BotoCoreError, ClientError) as e:
            raise ArchiveError(f"writing s3://{self.bucket}/{key} failed: {e}") from e

    def get_json(self, key: str) -> Any:
        """Read one object as JSON. Raises `ArchiveError` for S3 failures, `ValueError` for bad JSON."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as e:
            raise ArchiveError(f"reading s3://{self.bucket}/{key} failed: {e}") from e
        return json.loads(body)

    def get_json_if_exists(self, key: str) -> Any:
        """The object as JSON, None when there is none (or it is not JSON); `ArchiveError` else."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise ArchiveError(f"reading s3://{self.bucket}/{key} failed: {e}") from e
        except BotoCoreError as e:
            raise ArchiveError(f"reading s3://{self.bucket}/{key} failed: {e}") from e
        try:
            return json.loads(body)
        except ValueError:
            return None

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"
