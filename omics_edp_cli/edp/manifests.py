"""Batch manifests (docs/CONTRACTS.md): the exact objects of every emitted batch, as JSON Lines.

A batch's objects are recorded as the engine counts them, in its state item. An item must
stay under DynamoDB's 400 KB, so when the objects held in a state grow past `SPILL_BYTES`
they are moved, before the conditional write that stores the state, into a *segment*
(`{location}segments/{batch_id}/{uuid}.jsonl`, already in manifest form) and the state keeps
a pointer. A write that loses the race deletes the segments it wrote. When the batch is
published, its manifest is written: the segments, then the objects still in the state,
concatenated into `{location}{batch_id}.jsonl`; the segments are deleted once the emission
has left the outbox. The manifest is rewritten identically if publishing is retried.

Lambda-side: standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from omics_edp_cli.edp.engine import Emission, ObjectRecord
from omics_edp_cli.edp.s3events import iso_time
from omics_edp_cli.errors import ConfigError, OperationError

log = logging.getLogger(__name__)
# Objects kept in a state item before they move to a segment (the item also holds up to
# 2 x 15,000 packed digests, ~320 KB, and must stay under DynamoDB's 400 KB).
SPILL_BYTES = 32 * 1024
MANIFEST_SUFFIX = ".jsonl"
SEGMENTS = "segments/"


def object_line(bucket: str, record: ObjectRecord) -> dict[str, Any]:
    """One manifest line (docs/CONTRACTS.md, "Batch manifests")."""
    key, size, etag, sequencer, when, version_id = record
    return {"bucket": bucket, "key": key, "size": size, "etag": etag, "sequencer": sequencer,
            "event_time": iso_time(when), "version_id": version_id}


def encode_lines(bucket: str, records: Iterable[ObjectRecord]) -> bytes:
    return "".join(json.dumps(object_line(bucket, r), separators=(",", ":")) + "\n"
                   for r in records).encode("utf-8")


def decode_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def parse_location(text: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` → (bucket, `prefix/`); the prefix may be empty."""
    text = text.strip()
    if not text.startswith("s3://"):
        raise ConfigError(f"manifest location {text!r}: expected s3://BUCKET/PREFIX/")
    bucket, _, prefix = text[5:].partition("/")
    if not bucket:
        raise ConfigError(f"manifest location {text!r}: no bucket")
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


class ManifestStore(Protocol):
    """Where segments and manifests live (S3 in AWS, a directory for local state files)."""

    def put_segment(self, batch_id: str, data: bytes) -> str: ...

    def get_segment(self, pointer: str) -> bytes: ...

    def delete_segments(self, pointers: Sequence[str]) -> None: ...

    def put_manifest(self, batch_id: str, data: bytes) -> str:
        """Write the manifest; returns its URI."""
        ...

    def get_manifest(self, batch_id: str) -> bytes: ...

    def uri(self, batch_id: str) -> str: ...


class S3Manifests:
    """Segments and manifests under `s3://bucket/prefix` (SSE by the bucket's default encryption)."""

    def __init__(self, s3: Any, location: str):
        self.s3 = s3
        self.bucket, self.prefix = parse_location(location)
        self.location = f"s3://{self.bucket}/{self.prefix}"

    def uri(self, batch_id: str) -> str:
        return f"s3://{self.bucket}/{self._manifest_key(batch_id)}"

    def _manifest_key(self, batch_id: str) -> str:
        return f"{self.prefix}{batch_id}{MANIFEST_SUFFIX}"

    def put_segment(self, batch_id: str, data: bytes) -> str:
        key = f"{self.prefix}{SEGMENTS}{batch_id}/{uuid.uuid4().hex}{MANIFEST_SUFFIX}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/x-ndjson")
        return key

    def get_segment(self, pointer: str) -> bytes:
        return self._get(pointer)

    def delete_segments(self, pointers: Sequence[str]) -> None:
        for start in range(0, len(pointers), 1000):
            chunk = pointers[start:start + 1000]
            response = self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
            errors = response.get("Errors") or []
            if errors:
                raise OperationError(f"{len(errors)} manifest segment(s) not deleted, e.g. "
                                     f"{errors[0].get('Key')}: {errors[0].get('Code')}")

    def put_manifest(self, batch_id: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=self._manifest_key(batch_id), Body=data,
                           ContentType="application/x-ndjson")
        return self.uri(batch_id)

    def get_manifest(self, batch_id: str) -> bytes:
        return self._get(self._manifest_key(batch_id))

    def _get(self, key: str) -> bytes:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise OperationError(f"s3://{self.bucket}/{key}: no such manifest or segment") from None
            raise


class DirectoryManifests:
    """Segments and manifests as files (local SQLite state: `{db}.manifests/` beside it)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def uri(self, batch_id: str) -> str:
        return (self.directory / f"{batch_id}{MANIFEST_SUFFIX}").resolve().as_uri()

    def put_segment(self, batch_id: str, data: bytes) -> str:
        pointer = f"{SEGMENTS}{batch_id}/{uuid.uuid4().hex}{MANIFEST_SUFFIX}"
        path = self.directory / pointer
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return pointer

    def get_segment(self, pointer: str) -> bytes:
        return self._read(self.directory / pointer)

    def delete_segments(self, pointers: Sequence[str]) -> None:
        for pointer in pointers:
            (self.directory / pointer).unlink(missing_ok=True)

    def put_manifest(self, batch_id: str, data: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{batch_id}{MANIFEST_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return self.uri(batch_id)

    def get_manifest(self, batch_id: str) -> bytes:
        return self._read(self.directory / f"{batch_id}{MANIFEST_SUFFIX}")

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise OperationError(f"{path}: no such manifest or segment") from None


def spill(store: ManifestStore, bucket: str, batch_id: str, holder: Any) -> str | None:
    """Move `holder`'s (an OpenBatch or Emission) in-state objects to a new segment; its pointer."""
    if not holder.objects:
        return None
    pointer = store.put_segment(batch_id, encode_lines(bucket, holder.objects))
    holder.segments = [*holder.segments, (pointer, len(holder.objects))]
    holder.objects = []
    holder.object_bytes = 0
    return pointer


def manifest_bytes(store: ManifestStore | None, bucket: str, objects: list[ObjectRecord],
                   segments: Sequence[tuple[str, int]]) -> bytes:
    """The manifest of a batch (open or emitted): its segments, then its objects still in state."""
    parts = [store.get_segment(p) for p, _ in segments] if store is not None and segments else []
    if segments and store is None:
        raise OperationError("this batch's first objects are in manifest segments, "
                             "and no manifest location is known")
    parts.append(encode_lines(bucket, objects))
    return b"".join(parts)


def write_manifest(store: ManifestStore, e: Emission) -> str | None:
    """Write `e`'s manifest; its URI, or None for a batch opened before manifests were recorded."""
    if e.recorded != e.count:
        log.warning("batch %s (s3://%s/%s) lists %d of its %d objects (opened before batch manifests "
                    "were recorded): emitted without a manifest", e.batch_id, e.bucket, e.prefix,
                    e.recorded, e.count)
        return None
    return store.put_manifest(e.batch_id, manifest_bytes(store, e.bucket, e.objects, e.segments))
