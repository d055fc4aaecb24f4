"""What a package will hold, computed with boto3 alone (the dry run shows exactly this)."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.errors import OperationError
from omics_edp_cli.packager.config import PackagerSettings
from omics_edp_cli.packager.event import Batch, InvalidEvent, package_name

README = "README.md"
QUILTIGNORE = ".quiltignore"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    logical_key: str
    bucket: str
    key: str
    size: int | None = None
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f"?versionId={self.version_id}" if self.version_id else "")


@dataclass(frozen=True)
class PackagePlan:
    """The package to push: name, entries, added files, metadata, message and destinations."""

    name: str
    batch: Batch
    entries: list[Entry]
    metadata: dict[str, Any]
    message: str
    registry: str
    quarantine: str | None
    workflow: str | None
    added: dict[str, str] = field(default_factory=dict)  # logical key → text (README, .quiltignore)

    def as_dict(self) -> dict[str, Any]:
        return {
            "package": self.name, "registry": f"s3://{self.registry}",
            "quarantine": f"s3://{self.quarantine}" if self.quarantine else None,
            "workflow": self.workflow, "batch_id": self.batch.batch_id, "source": self.batch.source_uri,
            "manifest": self.batch.manifest, "message": self.message, "metadata": self.metadata,
            "entries": [{"logical_key": e.logical_key, "source": e.uri, "size": e.size} for e in self.entries]
            + [{"logical_key": k, "source": "added", "size": len(v.encode())}
               for k, v in sorted(self.added.items())],
        }


def _aws(what: str, call: Any) -> Any:
    try:
        return call()
    except (ClientError, BotoCoreError) as e:
        raise OperationError(f"{what} failed: {e}") from e


def list_prefix(s3: Any, bucket: str, prefix: str) -> list[Entry]:
    """Every object under the prefix (folder markers left out), in key order."""
    entries = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in _aws(f"listing s3://{bucket}/{prefix}", lambda: list(pages)):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith("/"):
                entries.append(Entry(key[len(prefix):], bucket, key, int(item.get("Size", 0))))
    return entries


def read_manifest(s3: Any, batch: Batch) -> list[Entry]:
    """The batch's objects from its JSON Lines manifest; each must lie under the prefix."""
    assert batch.manifest is not None
    bucket, _, key = batch.manifest[5:].partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_MANIFEST_BYTES + 1)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise InvalidEvent(f"the manifest {batch.manifest} does not exist") from None
        raise OperationError(f"reading the manifest {batch.manifest} failed: {e}") from e
    except BotoCoreError as e:
        raise OperationError(f"reading the manifest {batch.manifest} failed: {e}") from e
    if len(body) > MAX_MANIFEST_BYTES:
        raise InvalidEvent(f"the manifest {batch.manifest} is larger than {MAX_MANIFEST_BYTES} bytes")
    entries: dict[str, Entry] = {}
    for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidEvent(f"{batch.manifest} line {number}: not JSON") from None
        object_key = item.get("key") if isinstance(item, dict) else None
        if (not isinstance(object_key, str) or not object_key.startswith(batch.prefix)
                or object_key.endswith("/")):
            raise InvalidEvent(f"{batch.manifest} line {number}: no object key under {batch.prefix}")
        size = item.get("size")
        version = item.get("version_id") or item.get("versionId")
        entries[object_key] = Entry(object_key[len(batch.prefix):], batch.bucket, object_key,
                                    size if isinstance(size, int) else None,
                                    version if isinstance(version, str) else None)
    if not entries:
        raise InvalidEvent(f"the manifest {batch.manifest} lists no object")
    return [entries[k] for k in sorted(entries)]


def fill(template: Any, facts: dict[str, Any]) -> Any:
    """Fill `${name}` placeholders in every string; a string that is one placeholder keeps its type."""
    if isinstance(template, dict):
        return {k: fill(v, facts) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, facts) for v in template]
    if isinstance(template, str):
        bare = template.strip()
        if bare.startswith("${") and bare.endswith("}") and bare[2:-1] in facts:
            return facts[bare[2:-1]]
        text_facts = {k: "" if v is None else v for k, v in facts.items()}
        return string.Template(template).safe_substitute(text_facts)
    return template


def plan_package(batch: Batch, settings: PackagerSettings, s3: Any) -> PackagePlan:
    """Name, entries, README/.quiltignore when the prefix has none, metadata filled with the batch's facts."""
    name = package_name(batch.prefix, settings.name_depth, settings.namespace)
    folder = list_prefix(s3, batch.bucket, batch.prefix)
    if batch.manifest:
        entries = read_manifest(s3, batch)
        if batch.manifest.startswith(f"s3://{batch.bucket}/{batch.prefix}"):
            manifest_key = batch.manifest[len(f"s3://{batch.bucket}/"):]
            entries = [e for e in entries if e.key != manifest_key]
        # The folder's own README and .quiltignore document every batch of it.
        listed = {e.logical_key for e in entries}
        entries += [e for e in folder if e.logical_key in (README, QUILTIGNORE)
                    and e.logical_key not in listed]
        entries.sort(key=lambda e: e.logical_key)
    else:
        entries = folder
    if not entries:
        raise InvalidEvent(f"nothing to package: no object under {batch.source_uri}")
    facts = batch.facts(name)
    if facts["count"] is None:
        facts["count"] = len(entries)
    present = {e.logical_key for e in entries}
    added = {}
    if README not in present:
        added[README] = fill(settings.readme_template, facts)
    if QUILTIGNORE not in present:
        added[QUILTIGNORE] = fill(settings.quiltignore, facts)
    metadata = fill(settings.metadata_template, facts)
    metadata.setdefault("edp", {})["batch_id"] = batch.batch_id  # the idempotency key (CONTRACTS.md)
    message = f"EDP batch {batch.batch_id}: {len(entries)} object(s) from {batch.source_uri}"
    return PackagePlan(name, batch, entries, metadata, message, settings.registry, settings.quarantine,
                       settings.workflow, added)
