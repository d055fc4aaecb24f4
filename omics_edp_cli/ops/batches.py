"""`batches list|show|flush`: live batch state of a deployed stack, a table or a local SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import DEFAULT_SOURCE, BatchRules, rules_from_parameters
from omics_edp_cli.edp.dynamodb_store import DynamoDBStore
from omics_edp_cli.edp.emit import CollectingPublisher, EventBridgePublisher, Publisher, consumer_event
from omics_edp_cli.edp.engine import Emission, Engine, PrefixState
from omics_edp_cli.edp.manifests import (
    DirectoryManifests,
    ManifestStore,
    S3Manifests,
    decode_lines,
    manifest_bytes,
)
from omics_edp_cli.edp.s3events import iso_time
from omics_edp_cli.edp.sqlite_store import SqliteStore
from omics_edp_cli.edp.store import BatchStore, Key
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.ops.deployment import EdpStack, load_typed

SOURCES_HINT = "--stack NAME (a deployed EDP stack), --table NAME (its DynamoDB table) or --db PATH"


@dataclass
class Target:
    """Where the batch state lives, and what a forced flush publishes to."""

    store: BatchStore
    description: str
    rules: BatchRules
    bucket: str | None = None
    event_bus: str | None = None
    source: str = DEFAULT_SOURCE
    local: bool = False
    manifests: ManifestStore | None = None


def open_target(
    clients: ClientFactory,
    *,
    stack: str | None = None,
    table: str | None = None,
    db: str | Path | None = None,
    event_bus: str | None = None,
) -> Target:
    """Exactly one of `stack`, `table`, `db` (`ConfigError` for none, several, or one that is
    not there)."""
    given = [name for name, value in (("--stack", stack), ("--table", table), ("--db", db)) if value]
    if len(given) > 1:
        raise ConfigError(f"give one of {', '.join(given)}")
    if not given:
        raise ConfigError(f"where is the batch state? give {SOURCES_HINT}")
    if stack:
        edp = load_typed(clients, stack, EdpStack)
        name = edp.state_table_name
        buckets = edp.bucket_names
        return Target(
            DynamoDBStore(clients.client("dynamodb"), name), f"table {name} (stack {stack})",
            rules_from_parameters(edp.parameters, f"stack {stack}"),
            bucket=buckets[0] if len(buckets) == 1 else None,
            event_bus=event_bus or edp.event_bus_name,
            manifests=(S3Manifests(clients.client("s3"), edp.manifest_location)
                       if edp.manifest_location else None),
        )
    if table:
        _table_exists(clients, table)
        return Target(DynamoDBStore(clients.client("dynamodb"), table), f"table {table}", BatchRules(),
                      event_bus=event_bus)
    path = Path(str(db))
    if not path.is_file():
        raise ConfigError(f"--db {path}: no such file")
    return Target(SqliteStore(path, create=False), f"SQLite file {path}", BatchRules(),
                  event_bus=event_bus, local=True, manifests=DirectoryManifests(f"{path}.manifests"))


def _table_exists(clients: ClientFactory, table: str) -> None:
    try:
        clients.client("dynamodb").describe_table(TableName=table)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise ConfigError(f"--table {table}: no such DynamoDB table in this account/region") from None
        raise OperationError(f"reading table {table} failed: {e}") from None


def parse_prefix(text: str, bucket: str | None) -> tuple[str | None, str]:
    """`s3://bucket/run-42/`, or `run-42` with the bucket given separately; trailing `/` added."""
    if text.startswith("s3://"):
        found, _, prefix = text[5:].partition("/")
        if not found or not prefix:
            raise ConfigError(f"{text!r}: expected s3://BUCKET/PREFIX/")
        bucket = found
    else:
        prefix = text
    prefix = prefix.lstrip("/")
    if not prefix:
        raise ConfigError("give a prefix, e.g. novaseq-02/run-42/")
    return bucket, prefix if prefix.endswith("/") else prefix + "/"


def resolve_key(target: Target, text: str, bucket: str | None, *, any_state: bool = False) -> Key:
    """The batch key for a PREFIX argument; without a bucket, the one open batch that matches
    (with `any_state`, also prefixes with nothing open: that reads every prefix state)."""
    found, prefix = parse_prefix(text, bucket or target.bucket)
    if found:
        return (found, prefix)
    buckets = sorted({s.bucket for s in target.store.active() if s.prefix == prefix})
    if not buckets and any_state:
        buckets = sorted({s.bucket for s in target.store.everything() if s.prefix == prefix})
    if len(buckets) == 1:
        return (buckets[0], prefix)
    if not buckets:
        what = "batch state" if any_state else "open batch"
        raise ConfigError(f"no {what} for {prefix}; give the bucket (--bucket or s3://BUCKET/{prefix})")
    raise ConfigError(f"{prefix} is in several buckets ({', '.join(buckets)}): give --bucket")


def open_rows(store: BatchStore, now: float) -> list[dict[str, Any]]:
    """Open batches (and prefixes with unpublished emissions), soonest flush first."""
    rows = []
    for state in store.active():
        batch = state.open
        rows.append({
            "bucket": state.bucket,
            "prefix": state.prefix,
            "count": batch.count if batch else 0,
            "opened_at": iso_time(batch.opened_at) if batch else None,
            "age_seconds": round(now - batch.opened_at, 3) if batch else None,
            "idle_seconds": round(now - batch.touched_at, 3) if batch else None,
            "flush_at": iso_time(state.deadline) if state.deadline is not None else None,
            "flush_in_seconds": round(state.deadline - now, 3) if state.deadline is not None else None,
            "unpublished": len(state.outbox),
            "batch_id": batch.batch_id if batch else None,
        })
    rows.sort(key=lambda r: (r["flush_in_seconds"] is None, r["flush_in_seconds"] or 0.0))
    return rows


def emission_row(e: Emission, *, published: bool) -> dict[str, Any]:
    return {
        "emitted_at": iso_time(e.emitted_at),
        "bucket": e.bucket,
        "prefix": e.prefix,
        "count": e.count,
        "trigger": e.trigger,
        "first_event_at": iso_time(e.first_event_at),
        "last_event_at": iso_time(e.last_event_at),
        "status": "published" if published else "unpublished",
        "batch_id": e.batch_id,
    }


def _history_rows(state: PrefixState) -> list[dict[str, Any]]:
    pending = {e.batch_id for e in state.outbox}
    return [emission_row(e, published=e.batch_id not in pending) for e in state.history]


def recent_rows(store: BatchStore, limit: int) -> list[dict[str, Any]]:
    """The most recent emissions across prefixes, newest first (reads every prefix state)."""
    rows = [row for state in store.everything() for row in _history_rows(state)]
    rows.sort(key=lambda r: r["emitted_at"], reverse=True)
    return rows[:limit]


def show(
    store: BatchStore, key: Key, now: float, *, manifests: ManifestStore | None = None,
    batch_id: str | None = None, objects: int | None = 20,
) -> dict[str, Any]:
    """Everything about one prefix: its open batch, its recent emissions, and the objects of
    one batch (`batch_id`, else the open batch, else the latest emission): the first `objects`
    of them, or all with None."""
    state = store.get(key)
    if state is None:
        raise OperationError(
            f"no batch state for s3://{key[0]}/{key[1]}: no object event has been counted for this "
            "prefix (check the prefix depth, the ignore globs and that events reach the ingest queue)")
    batch = state.open
    record: dict[str, Any] = {"bucket": state.bucket, "prefix": state.prefix,
                              "state": "open" if batch else "no open batch"}
    if batch:
        record.update({
            "batch_id": batch.batch_id,
            "count": batch.count,
            "opened_at": iso_time(batch.opened_at),
            "age_seconds": round(now - batch.opened_at, 3),
            "first_event_at": iso_time(batch.first_event_at),
            "last_event_at": iso_time(batch.last_event_at),
            "last_object_seconds_ago": round(now - batch.touched_at, 3),
        })
    if state.deadline is not None:
        record["flush_at"] = iso_time(state.deadline)
        record["flush_in_seconds"] = round(state.deadline - now, 3)
    record["unpublished"] = len(state.outbox)
    record["recent"] = list(reversed(_history_rows(state)))
    record.update(batch_objects(state, manifests, batch_id, objects))
    return record


def batch_objects(
    state: PrefixState, manifests: ManifestStore | None, batch_id: str | None, limit: int | None
) -> dict[str, Any]:
    """`objects_of` (a batch id), `objects_total`, `objects` (manifest lines, the first `limit`)."""
    lines: list[dict[str, Any]]
    batch = state.open
    pending = {e.batch_id: e for e in state.outbox}
    nothing: dict[str, Any] = {"objects_of": None, "objects_total": 0, "objects": []}
    if batch_id is None and batch is None and state.history:
        if manifests is None:  # a table given by name: no manifest location known
            return nothing
        batch_id = state.history[-1].batch_id
    if batch_id is None or (batch is not None and batch.batch_id == batch_id):
        if batch is None:
            return nothing
        batch_id = batch.batch_id
        lines = decode_lines(manifest_bytes(manifests, state.bucket, batch.objects, batch.segments))
    elif batch_id in pending:  # emitted, its manifest maybe not written yet
        e = pending[batch_id]
        lines = decode_lines(manifest_bytes(manifests, state.bucket, e.objects, e.segments))
    else:
        if manifests is None:
            raise ConfigError("--batch: where are the manifests? give --stack (its ManifestLocation) or --db")
        lines = decode_lines(manifests.get_manifest(batch_id))
    return {"objects_of": batch_id, "objects_total": len(lines),
            "objects": lines if limit is None else lines[:limit]}


def force_flush(target: Target, clients: ClientFactory, key: Key, now: float) -> tuple[Emission | None, bool]:
    """Emit the open batch of `key` now. Returns (emission, whether it reached an event bus)."""
    publisher: Publisher
    if target.event_bus:
        publisher = EventBridgePublisher(clients.client("events"), target.event_bus, target.source)
    elif target.local:
        publisher = CollectingPublisher()  # a local file has no bus: the event is only printed
    else:
        raise ConfigError("flush needs the event bus: pass --event-bus NAME or --stack")
    batcher = Batcher(Engine(target.rules), target.store, publisher, manifests=target.manifests)
    emission = batcher.force(key, now)
    if emission is None:
        return None, False
    state = target.store.get(key)
    sent = state is not None and all(e.batch_id != emission.batch_id for e in state.outbox)
    return emission, sent and bool(target.event_bus)


def event_of(target: Target, emission: Emission) -> dict[str, Any]:
    return consumer_event(emission, target.source)
