"""Batch state in DynamoDB (docs/CONTRACTS.md): the distributed store the Lambdas use.

One item per batch key: `pk` = `PREFIX#{bucket}/{prefix}`, `sk` = `HEAD`.
- `version` (N): every write is conditional on it (optimistic concurrency); a new item on
  `attribute_not_exists(pk)`.
- `state` (S): the open batch, its de-duplication digests and the recent history, as JSON.
- `outbox` (M, always present): batch_id → emission JSON, for emissions committed but not
  yet accepted by EventBridge. Committed in the same write that closed the batch.
- `open_shard` (S) + `flush_at` (N): only while a batch is open or an emission unpublished
  (sparse GSI `OpenBatchesByDeadline`): the flush finds due work with one query per shard.
- `expires_at` (N): TTL, set when the item holds emitted batches only.

Write calls: one conditional `PutItem` per prefix per ingest, plus one `UpdateItem` per
prefix whose emissions EventBridge accepted (removing them from the outbox).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from omics_edp_cli.edp.engine import PrefixState
from omics_edp_cli.edp.store import (
    Key,
    emission_from_doc,
    emission_to_doc,
    expires_at,
    remove_published,
    state_from_doc,
    state_to_doc,
)
from omics_edp_cli.errors import OperationError

INDEX = "OpenBatchesByDeadline"
HEAD = "HEAD"
# Open batches spread over a few GSI partitions so one hot key never limits the flush.
OPEN_SHARDS = 4


def create_table(dynamodb: Any, name: str) -> None:
    """Create the state table exactly as the CloudFormation template does (tests, local demo)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "open_shard", "AttributeType": "S"},
            {"AttributeName": "flush_at", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": INDEX,
            "KeySchema": [{"AttributeName": "open_shard", "KeyType": "HASH"},
                          {"AttributeName": "flush_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def pk_of(key: Key) -> str:
    return f"PREFIX#{key[0]}/{key[1]}"


def shard_of(pk: str) -> str:
    return str(zlib.crc32(pk.encode()) % OPEN_SHARDS)


def _n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _compact(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


class DynamoDBStore:
    def __init__(self, dynamodb: Any, table: str):
        self.client = dynamodb
        self.table = table

    # -- items ------------------------------------------------------------------------------

    def _item(self, state: PrefixState, version: int) -> dict[str, Any]:
        pk = pk_of(state.key)
        doc = state_to_doc(state, with_outbox=False)
        doc.pop("version", None)
        item: dict[str, Any] = {
            "pk": {"S": pk}, "sk": {"S": HEAD},
            "bucket": {"S": state.bucket}, "prefix": {"S": state.prefix},
            "version": _n(version),
            "state": {"S": _compact(doc)},
            "outbox": {"M": {e.batch_id: {"S": _compact(emission_to_doc(e, with_objects=True))}
                              for e in state.outbox}},
        }
        if state.open is not None:
            item["open_count"] = _n(state.open.count)
        flush_at = state.flush_at
        if flush_at is not None:
            item["open_shard"] = {"S": shard_of(pk)}
            item["flush_at"] = _n(float(flush_at))
        ttl = expires_at(state)
        if ttl is not None:
            item["expires_at"] = _n(ttl)
        return item

    @staticmethod
    def _state(item: dict[str, Any]) -> PrefixState:
        doc = json.loads(item["state"]["S"])
        doc["bucket"], doc["prefix"] = item["bucket"]["S"], item["prefix"]["S"]
        doc["version"] = int(item["version"]["N"])
        state = state_from_doc(doc)
        outbox = item.get("outbox", {}).get("M", {})
        state.outbox = sorted((emission_from_doc(json.loads(v["S"])) for v in outbox.values()),
                              key=lambda e: e.emitted_at)
        return state

    def _key(self, key: Key) -> dict[str, Any]:
        return {"pk": {"S": pk_of(key)}, "sk": {"S": HEAD}}

    # -- BatchStore ---------------------------------------------------------------------------

    def load(self, keys: Sequence[Key]) -> dict[Key, PrefixState]:
        out = {key: PrefixState(*key) for key in keys}
        by_pk = {pk_of(k): k for k in keys}
        pending = [self._key(k) for k in keys]
        for attempt in range(10):
            if not pending:
                break
            chunk, pending = pending[:100], pending[100:]
            response = self.client.batch_get_item(
                RequestItems={self.table: {"Keys": chunk, "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(self.table, []):
                state = self._state(item)
                out[by_pk[item["pk"]["S"]]] = state
            unprocessed = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
            if unprocessed:
                pending = unprocessed + pending
                time.sleep(min(0.05 * 2 ** attempt, 1.0))
        if pending:
            raise OperationError(f"DynamoDB {self.table}: could not read {len(pending)} batch state(s)")
        return out

    def commit(self, state: PrefixState, expected_version: int) -> bool:
        item = self._item(state, expected_version + 1)
        if expected_version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {"ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": {":v": _n(expected_version)}}
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        state.version = expected_version + 1
        return True

    def mark_published(self, state: PrefixState, batch_ids: Collection[str]) -> None:
        """One `UpdateItem`: drop the outbox entries and, if nobody wrote since, fix the schedule."""
        if not batch_ids:
            return
        names = {f"#o{i}": batch_id for i, batch_id in enumerate(batch_ids)}
        removes = [f"outbox.{n}" for n in names]
        after = PrefixState(state.bucket, state.prefix, state.version, state.open, state.deadline,
                            state.recent, list(state.outbox), state.history)
        remove_published(after, batch_ids)
        values: dict[str, Any] = {":v": _n(state.version), ":next": _n(state.version + 1)}
        sets = ["version = :next"]
        flush_at = after.flush_at
        if flush_at is None:
            removes += ["open_shard", "flush_at"]
        else:
            sets.append("flush_at = :f")
            values[":f"] = _n(float(flush_at))
        ttl = expires_at(after)
        if ttl is not None:
            sets.append("expires_at = :ttl")
            values[":ttl"] = _n(ttl)
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(state.key),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression="version = :v",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            return
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        # Someone committed since: their item still lists these emissions. Remove them and bump
        # the version so any write based on an older read fails; a stale `flush_at` only makes
        # the next flush look at this prefix once more.
        self.client.update_item(
            TableName=self.table, Key=self._key(state.key),
            UpdateExpression=f"SET version = version + :one REMOVE {', '.join(f'outbox.{n}' for n in names)}",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names, ExpressionAttributeValues={":one": {"N": "1"}})

    def due(self, now: float) -> list[Key]:
        keys = []
        for item in self._query_open(now, projection=True):
            keys.append((item["bucket"]["S"], item["prefix"]["S"]))
        return keys

    def active(self) -> list[PrefixState]:
        return sorted((self._state(i) for i in self._query_open(None)),
                      key=lambda s: s.flush_at or 0.0)

    def everything(self) -> Iterator[PrefixState]:
        """Every prefix state: a `Scan` (only `batches list` uses it, for recent emissions)."""
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table, FilterExpression="sk = :head",
            ExpressionAttributeValues={":head": {"S": HEAD}},
        ):
            for item in page.get("Items", []):
                yield self._state(item)

    def get(self, key: Key) -> PrefixState | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(key), ConsistentRead=True).get("Item")
        return self._state(item) if item else None

    def _query_open(self, now: float | None, projection: bool = False) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("query")
        for shard in range(OPEN_SHARDS):
            kwargs: dict[str, Any] = {"TableName": self.table, "IndexName": INDEX}
            values: dict[str, Any] = {":s": {"S": str(shard)}}
            if now is None:
                kwargs["KeyConditionExpression"] = "open_shard = :s"
            else:
                kwargs["KeyConditionExpression"] = "open_shard = :s AND flush_at <= :now"
                values[":now"] = _n(float(now))
            if projection:  # `bucket` is a DynamoDB reserved word
                kwargs["ProjectionExpression"] = "#b, #p"
                kwargs["ExpressionAttributeNames"] = {"#b": "bucket", "#p": "prefix"}
            for page in paginator.paginate(ExpressionAttributeValues=values, **kwargs):
                yield from page.get("Items", [])
