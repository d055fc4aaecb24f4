"""The one interface every batch-state store implements, and the state's JSON form.

Contract (memory, SQLite and DynamoDB all keep it):
- `load` returns a private copy of each state; a key never seen gives a new state (version 0).
- `commit(state, expected_version)` writes the whole state only if the stored version is still
  `expected_version` (0 = must not exist yet), then sets `state.version` to the new one.
  `False` means someone else changed it first: load again and re-apply.
- Emissions are committed inside the state (its `outbox`) in the same write as the change that
  closed the batch, so a batch is emitted exactly once; `mark_published` removes them from
  the outbox once EventBridge accepted them.
- `due(now)` finds the prefixes whose open batch deadline or outbox retry time has passed,
  through an index, never by reading every state.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Protocol

from omics_edp_cli.edp.engine import (
    RECORD_OVERHEAD,
    Emission,
    ObjectRecord,
    OpenBatch,
    PrefixState,
    Recent,
    Segment,
)

Key = tuple[str, str]
DIGEST_CHARS = 16
# Emitted-only (idle) state is kept this long after its last activity (DynamoDB TTL).
RETENTION_SECONDS = 7 * 86400


class BatchStore(Protocol):
    def load(self, keys: Sequence[Key]) -> dict[Key, PrefixState]: ...

    def commit(self, state: PrefixState, expected_version: int) -> bool: ...

    def mark_published(self, state: PrefixState, batch_ids: Collection[str]) -> None: ...

    def due(self, now: float) -> list[Key]: ...

    def active(self) -> list[PrefixState]:
        """States with an open batch or an unpublished emission."""
        ...

    def everything(self) -> Iterator[PrefixState]:
        """Every state (for recent emissions); may read the whole store."""
        ...

    def get(self, key: Key) -> PrefixState | None: ...


def join_digests(members: Collection[int]) -> str:
    """Digests packed as base64 of their 8 big-endian bytes each (11 characters per digest)."""
    packed = array("Q", members)
    if sys.byteorder == "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def split_digests(text: str) -> array[int]:
    packed = array("Q")
    packed.frombytes(base64.b64decode(text))
    if sys.byteorder == "little":
        packed.byteswap()
    return packed


def _digests_from_doc(doc: dict[str, Any]) -> array[int]:
    """`packed` (base64), or `members` (hex) as states written before batch manifests hold them."""
    if "packed" in doc:
        return split_digests(doc["packed"])
    text = doc.get("members", "")
    return array("Q", (int(text[i:i + DIGEST_CHARS], 16) for i in range(0, len(text), DIGEST_CHARS)))


def objects_to_doc(objects: list[ObjectRecord], segments: list[Segment]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if objects:
        doc["objects"] = [list(o) for o in objects]
    if segments:
        doc["segments"] = [list(s) for s in segments]
    return doc


def objects_from_doc(doc: dict[str, Any]) -> tuple[list[ObjectRecord], list[Segment], int]:
    """(objects, segments, their byte budget) from a state or outbox document."""
    objects: list[ObjectRecord] = [
        (o[0], o[1], o[2], o[3], float(o[4]), o[5]) for o in doc.get("objects", ())]
    segments: list[Segment] = [(str(s[0]), int(s[1])) for s in doc.get("segments", ())]
    size = sum(len(o[0]) + len(o[3]) + RECORD_OVERHEAD for o in objects)
    return objects, segments, size


def emission_to_doc(e: Emission, *, with_objects: bool = False) -> dict[str, Any]:
    """`with_objects`: its object list too (outbox entries, until the manifest is written)."""
    doc: dict[str, Any] = {
        "batch_id": e.batch_id, "bucket": e.bucket, "prefix": e.prefix, "count": e.count,
        "first_event_at": e.first_event_at, "last_event_at": e.last_event_at,
        "opened_at": e.opened_at, "emitted_at": e.emitted_at, "trigger": e.trigger,
    }
    if e.retry_at is not None:
        doc["retry_at"] = e.retry_at
    if with_objects:
        doc.update(objects_to_doc(e.objects, e.segments))
    return doc


def emission_from_doc(doc: dict[str, Any]) -> Emission:
    objects, segments, size = objects_from_doc(doc)
    return Emission(
        batch_id=doc["batch_id"], bucket=doc["bucket"], prefix=doc["prefix"],
        count=int(doc["count"]), first_event_at=float(doc["first_event_at"]),
        last_event_at=float(doc["last_event_at"]), opened_at=float(doc["opened_at"]),
        emitted_at=float(doc["emitted_at"]), trigger=doc["trigger"],
        retry_at=float(doc["retry_at"]) if doc.get("retry_at") is not None else None,
        objects=objects, segments=segments, object_bytes=size,
    )


def state_to_doc(state: PrefixState, *, with_outbox: bool = True) -> dict[str, Any]:
    """JSON-able form (floats kept exact: JSON and DynamoDB round-trip `repr(float)`)."""
    doc: dict[str, Any] = {"bucket": state.bucket, "prefix": state.prefix, "version": state.version}
    batch = state.open
    if batch is not None:
        doc["open"] = {
            "batch_id": batch.batch_id, "opened_at": batch.opened_at, "touched_at": batch.touched_at,
            "first_event_at": batch.first_event_at, "last_event_at": batch.last_event_at,
            "packed": join_digests(batch.members), **objects_to_doc(batch.objects, batch.segments),
        }
    if state.deadline is not None:
        doc["deadline"] = state.deadline
    if state.recent:
        doc["recent"] = [{"until": r.until, "packed": join_digests(r.members)} for r in state.recent]
    if with_outbox and state.outbox:
        doc["outbox"] = [emission_to_doc(e, with_objects=True) for e in state.outbox]
    if state.history:
        doc["history"] = [emission_to_doc(e) for e in state.history]
    return doc


def state_from_doc(doc: dict[str, Any]) -> PrefixState:
    state = PrefixState(doc["bucket"], doc["prefix"], int(doc.get("version", 0)))
    batch = doc.get("open")
    if batch:
        objects, segments, size = objects_from_doc(batch)
        state.open = OpenBatch(
            batch["batch_id"], float(batch["opened_at"]), float(batch["touched_at"]),
            float(batch["first_event_at"]), float(batch["last_event_at"]),
            set(_digests_from_doc(batch)), objects, segments, size,
        )
    if doc.get("deadline") is not None:
        state.deadline = float(doc["deadline"])
    state.recent = [Recent(float(r["until"]), _digests_from_doc(r)) for r in doc.get("recent", [])]
    state.outbox = [emission_from_doc(e) for e in doc.get("outbox", [])]
    state.history = [emission_from_doc(e) for e in doc.get("history", [])]
    return state


def clone(state: PrefixState) -> PrefixState:
    """A private copy (what `load` hands out)."""
    return state_from_doc(state_to_doc(state))


def remove_published(state: PrefixState, batch_ids: Collection[str]) -> None:
    state.outbox = [e for e in state.outbox if e.batch_id not in batch_ids]


def expires_at(state: PrefixState) -> int | None:
    """TTL for a state holding only emitted batches; None while anything is open or unpublished."""
    if not state.idle:
        return None
    times = [e.emitted_at for e in state.history] + [r.until for r in state.recent]
    return int(max(times) + RETENTION_SECONDS) if times else None
