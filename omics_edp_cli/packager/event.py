"""The `package-objects-ready` event as the packager reads it (docs/CONTRACTS.md)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from omics_edp_cli import timefmt

DETAIL_TYPE = "package-objects-ready"
# What quilt3 accepts (quilt3.util.PACKAGE_NAME_FORMAT), checked here so a dry run needs no quilt3.
PACKAGE_NAME = re.compile(r"^[\w-]+/[\w-]+$")


class InvalidEvent(ValueError):
    """The event cannot be packaged whatever happens (retrying cannot fix it)."""


@dataclass(frozen=True)
class Batch:
    bucket: str
    prefix: str
    count: int | None
    batch_id: str
    first_event_at: str | None
    last_event_at: str | None
    manifest: str | None
    event_time: str | None

    @property
    def source_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def facts(self, package: str) -> dict[str, Any]:
        """What the README and metadata templates may name."""
        when = self.last_event_at or self.event_time or ""
        return {
            "package": package, "bucket": self.bucket, "prefix": self.prefix, "count": self.count,
            "batch_id": self.batch_id, "first_event_at": self.first_event_at or "",
            "last_event_at": self.last_event_at or "", "date": when[:10],
        }


def parse(event: Any) -> Batch:
    """Check the event and read the batch from it; `InvalidEvent` with the reason otherwise.

    Events from Quilt's own EDP carry only `bucket` and `prefix`: their batch id is derived from
    the event id (or, without one, from bucket, prefix and time) so redelivery is still recognised.
    """
    if not isinstance(event, dict):
        raise InvalidEvent("the event is not a JSON object")
    if event.get("detail-type") != DETAIL_TYPE:
        raise InvalidEvent(f"detail-type is {event.get('detail-type')!r}, not {DETAIL_TYPE!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("the event has no detail object")
    bucket, prefix = detail.get("bucket"), detail.get("prefix")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidEvent("detail.bucket is missing")
    if not isinstance(prefix, str) or not prefix.strip("/"):
        raise InvalidEvent("detail.prefix is missing or empty (the whole bucket is never packaged)")
    prefix = prefix.lstrip("/")
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    count = detail.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise InvalidEvent(f"detail.count is not a count: {count!r}")
    manifest = detail.get("manifest")
    if manifest is not None and (not isinstance(manifest, str) or not manifest.startswith("s3://")
                                 or "/" not in manifest[5:]):
        raise InvalidEvent(f"detail.manifest is not an s3:// object URI: {manifest!r}")
    times = {}
    for key in ("first_event_at", "last_event_at"):
        value = detail.get(key)
        if value is not None:
            try:
                times[key] = timefmt.iso_z(timefmt.parse_time(value))
            except ValueError as e:
                raise InvalidEvent(f"detail.{key}: {e}") from None
    batch_id = detail.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id.strip()):
        raise InvalidEvent(f"detail.batch_id is not a string: {batch_id!r}")
    if not batch_id:
        seed = str(event.get("id") or f"{bucket}/{prefix}@{event.get('time')}")
        batch_id = "event-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    event_time = event.get("time") if isinstance(event.get("time"), str) else None
    return Batch(bucket, prefix, count, str(batch_id), times.get("first_event_at"),
                 times.get("last_event_at"), manifest, event_time)


def package_name(prefix: str, depth: int, namespace: str | None = None) -> str:
    """`instrument/experiment/` → `instrument/experiment`.

    The first `depth` segments name the package: with a namespace they all form the second part
    (`ns/instrument-experiment`); without one the first segment is the first part and the others
    are joined by `-` (`instrument/run-lane1` at depth 3). `InvalidEvent` when the name is one
    quilt3 refuses, or the prefix is shallower than `depth`.
    """
    segments = [s for s in prefix.split("/") if s]
    if len(segments) < depth:
        raise InvalidEvent(f"prefix {prefix!r} has {len(segments)} segment(s); the package name needs "
                           f"{depth} (PackageNameDepth)")
    used = segments[:depth]
    name = f"{namespace}/{'-'.join(used)}" if namespace else (
        f"{used[0]}/{'-'.join(used[1:])}" if len(used) > 1 else used[0])
    if not PACKAGE_NAME.fullmatch(name):
        raise InvalidEvent(f"{name!r} is not a name Quilt accepts (two parts of letters, digits, _ or -, "
                           "joined by /): set PackageNamespace or PackageNameDepth")
    return name
