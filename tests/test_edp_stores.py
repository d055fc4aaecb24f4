"""State stores behind one interface: same batches through memory, SQLite and DynamoDB; the
store contract (conditional commits, due index, outbox); the DynamoDB table as CONTRACTS.md fixes it."""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.dynamodb_store import INDEX, DynamoDBStore, create_table, pk_of
from omics_edp_cli.edp.emit import CollectingPublisher
from omics_edp_cli.edp.engine import MIN_DEDUPE_WINDOW, Engine, PrefixState
from omics_edp_cli.edp.memory_store import MemoryStore
from omics_edp_cli.edp.s3events import ObjectEvent
from omics_edp_cli.edp.sqlite_store import SqliteStore
from omics_edp_cli.edp.store import RETENTION_SECONDS, BatchStore
from omics_edp_cli.ops.simulate.execute import simulate

T0 = 1_767_600_000.0
BUCKET = "instrument-bucket"
RULES = BatchRules(count=8, quiet_seconds=120, max_age_seconds=600, ignore=("scratch/*",))
TRICKLE = "miseq-01/trickle/"  # one object every 100 s: never quiet for 120 s, 6 objects per 600 s
TICK = 60.0


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request, tmp_path: Path) -> Iterator[BatchStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "state" / "batches.sqlite3")
        yield s
        s.close()
    else:
        with mock_aws():
            client = boto3.client("dynamodb")
            create_table(client, "edp-state")
            yield DynamoDBStore(client, "edp-state")


def scenario(seed: int = 7, n: int = 400) -> list[ObjectEvent]:
    """Bursts over a few prefixes, pauses longer than the quiet time, re-deliveries, noise."""
    rng = random.Random(seed)
    prefixes = [f"novaseq-0{i}/run-{j}" for i in range(2) for j in range(3)]
    events, t = [], T0
    for i in range(n):
        t += rng.choice([0.5, 2, 5, 10, 30, 100]) if rng.random() < 0.97 else 700
        prefix = prefixes[(i // 20) % len(prefixes)] if rng.random() < 0.7 else rng.choice(prefixes)
        key = rng.choice([f"{prefix}/f{i}.bcl", f"scratch/x/{i}", f"top{i}.txt"]) if rng.random() < 0.1 \
            else f"{prefix}/f{i}.bcl"
        events.append(ObjectEvent(BUCKET, key, f"S{i:06d}", t))
        if rng.random() < 0.1:  # S3 delivers this one again a little later
            events.append(ObjectEvent(BUCKET, key, f"S{i:06d}", t + rng.uniform(0, 60)))
    # Steady traffic on one prefix: only the maximum age emits it before the trickle stops.
    events += [ObjectEvent(BUCKET, f"{TRICKLE}f{k}", f"T{k:06d}", T0 + 30 + 100 * k) for k in range(40)]
    return sorted(events, key=lambda e: e.time)


def drive(batcher: Batcher, events: list[ObjectEvent], *, group: int = 1) -> None:
    """Ingest in time order, running the flush at every minute boundary like the schedule."""
    next_tick = (events[0].time // TICK + 1) * TICK
    for start in range(0, len(events), group):
        chunk = events[start:start + group]
        now = chunk[-1].time
        while next_tick <= now:
            batcher.flush(next_tick)
            next_tick += TICK
        batcher.ingest(chunk, now)
    while batcher.store.active():
        batcher.flush(next_tick)
        next_tick += TICK


def rows(batches) -> list[tuple]:
    """Comparable emissions, in time order (ties, emitted by one flush run, by batch id)."""
    return sorted((e.emitted_at, e.batch_id, e.prefix, e.count, e.trigger, e.first_event_at,
                   e.last_event_at) for e in batches)


def emissions(publisher: CollectingPublisher) -> list[tuple]:
    return rows(publisher.published)


def test_the_same_scenario_gives_the_same_batches_through_every_store(store: BatchStore):
    events = scenario()
    publisher = CollectingPublisher()
    drive(Batcher(Engine(RULES), store, publisher), events)
    expected = list(simulate(events, [RULES], tick=TICK)[0].emissions())
    got = emissions(publisher)
    assert got == rows(expected)
    assert {g[4] for g in got} >= {"count", "quiet", "max-age"}
    trickle = [(g[3], g[4]) for g in got if g[2] == TRICKLE]
    assert trickle == [(6, "max-age")] * 6 + [(4, "quiet")]
    assert sum(g[3] for g in got) == len({(e.key, e.sequencer) for e in events
                                          if not e.key.startswith(("scratch/", "top"))})
    assert store.active() == []


def test_sqs_sized_groups_give_the_same_batches_in_every_store(store: BatchStore, tmp_path: Path):
    events = scenario(seed=3)
    publisher = CollectingPublisher()
    drive(Batcher(Engine(RULES), store, publisher), events, group=10)
    reference = CollectingPublisher()
    drive(Batcher(Engine(RULES), MemoryStore(), reference), events, group=10)
    assert emissions(publisher) == emissions(reference)


# -- the store contract ------------------------------------------------------------------------


def test_commit_is_conditional_on_the_version(store: BatchStore):
    key = (BUCKET, "a/b/")
    first, second = store.load([key])[key], store.load([key])[key]
    first.deadline = second.deadline = T0
    assert store.commit(first, 0) and first.version == 1
    assert not store.commit(second, 0)  # both created it: the second loses
    third = store.load([key])[key]
    assert third.version == 1 and third.deadline == T0
    stale = store.load([key])[key]
    assert store.commit(third, 1)
    assert not store.commit(stale, 1)
    assert store.get(key).version == 2


def test_due_finds_open_batches_by_deadline_and_unpublished_emissions(store: BatchStore):
    batcher = Batcher(Engine(BatchRules(count=2, quiet_seconds=100)), store, publisher=None)
    batcher.ingest([ObjectEvent(BUCKET, "a/b/1", "s", T0)], T0)  # open, due at T0 + 100
    batcher.ingest([ObjectEvent(BUCKET, "a/c/1", "s", T0), ObjectEvent(BUCKET, "a/c/2", "s", T0)], T0)
    assert store.due(T0 + 10) == []
    assert store.due(T0 + 30) == [(BUCKET, "a/c/")]  # emitted by count, unpublished: retry after 30 s
    assert sorted(store.due(T0 + 100)) == [(BUCKET, "a/b/"), (BUCKET, "a/c/")]
    assert {s.prefix for s in store.active()} == {"a/b/", "a/c/"}


def test_mark_published_empties_the_outbox(store: BatchStore):
    batcher = Batcher(Engine(BatchRules(count=2)), store, publisher=None)
    report = batcher.ingest([ObjectEvent(BUCKET, f"a/c/{i}", "s", T0) for i in (1, 2)], T0)
    key = (BUCKET, "a/c/")
    state = store.get(key)
    assert [e.batch_id for e in state.outbox] == [report.emitted[0].batch_id]
    store.mark_published(state, [report.emitted[0].batch_id])
    after = store.get(key)
    assert after.outbox == [] and after.version == state.version + 1
    assert store.due(T0 + 10**6) == [] and store.active() == []
    assert [e.batch_id for e in after.history] == [report.emitted[0].batch_id]


def test_mark_published_after_someone_else_committed(store: BatchStore):
    batcher = Batcher(Engine(BatchRules(count=2)), store, publisher=None)
    report = batcher.ingest([ObjectEvent(BUCKET, f"a/c/{i}", "s", T0) for i in (1, 2)], T0)
    key = (BUCKET, "a/c/")
    committed = store.get(key)
    batcher.ingest([ObjectEvent(BUCKET, "a/c/3", "s", T0 + 1)], T0 + 1)  # another writer
    store.mark_published(committed, [report.emitted[0].batch_id])
    after = store.get(key)
    assert after.outbox == [] and after.open is not None and after.open.count == 1
    stale = store.load([key])[key]
    stale.version = committed.version + 1  # a write based on the read before the mark
    assert not store.commit(stale, committed.version + 1)


def test_a_store_round_trips_every_field(store: BatchStore):
    batcher = Batcher(Engine(BatchRules(count=3, max_age_seconds=50)), store, publisher=None)
    batcher.ingest([ObjectEvent(BUCKET, f"a/b/{i}", "s", T0 + i) for i in range(4)], T0 + 4.25)
    state = store.get((BUCKET, "a/b/"))
    assert isinstance(state, PrefixState)
    assert state.open is not None and state.open.count == 1 and state.open.opened_at == T0 + 4.25
    assert state.deadline == T0 + 4.25 + 50
    assert len(state.recent) == 1 and len(state.recent[0].members) == 3
    [pending] = state.outbox
    assert (pending.count, pending.trigger, pending.first_event_at, pending.last_event_at) == (
        3, "count", T0, T0 + 2)
    assert [e.batch_id for e in state.history] == [pending.batch_id]


# -- SQLite across processes -------------------------------------------------------------------


def _sqlite_worker(path: str, worker: int, n: int) -> int:
    store = SqliteStore(path)
    batcher = Batcher(Engine(BatchRules(count=7)), store, CollectingPublisher())
    counted = 0
    for i in range(0, n, 5):
        events = [ObjectEvent(BUCKET, f"p/{(worker + j) % 4}/w{worker}-{i + j}", "s", T0) for j in range(5)]
        counted += batcher.ingest(events, T0 + i).counted
    store.close()
    return counted


def test_sqlite_is_safe_for_several_processes(tmp_path: Path):
    path = str(tmp_path / "batches.sqlite3")
    SqliteStore(path).close()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        counted = pool.starmap(_sqlite_worker, [(path, w, 200) for w in range(3)])
    assert counted == [200, 200, 200]
    store = SqliteStore(path)
    open_count = sum(s.open.count for s in store.active() if s.open)
    emitted = [e for s in store.everything() for e in s.history]
    # history keeps the last 10 per prefix; count from the recent digests instead
    recent = sum(len(r.members) for s in store.everything() for r in s.recent)
    assert open_count + recent == 600
    assert all(e.count == 7 for e in emitted)


# -- the DynamoDB table ------------------------------------------------------------------------


@mock_aws
def test_create_table_matches_the_contract():
    client = boto3.client("dynamodb")
    create_table(client, "edp-state")
    table = client.describe_table(TableName="edp-state")["Table"]
    keys = {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]}
    assert keys == {("pk", "HASH"), ("sk", "RANGE")}
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == INDEX == "OpenBatchesByDeadline"
    assert [(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]] == [
        ("open_shard", "HASH"), ("flush_at", "RANGE")]
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName="edp-state")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
    backups = client.describe_continuous_backups(TableName="edp-state")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


@mock_aws
def test_dynamodb_items_are_sparse_in_the_index_and_expire_once_emitted():
    client = boto3.client("dynamodb")
    create_table(client, "edp-state")
    store = DynamoDBStore(client, "edp-state")
    batcher = Batcher(Engine(BatchRules(count=2, quiet_seconds=60)), store, CollectingPublisher())
    batcher.ingest([ObjectEvent(BUCKET, "a/open/1", "s", T0)], T0)
    batcher.ingest([ObjectEvent(BUCKET, "a/done/1", "s", T0), ObjectEvent(BUCKET, "a/done/2", "s", T0)], T0)
    items = {i["prefix"]["S"]: i for i in client.scan(TableName="edp-state")["Items"]}
    assert "open_shard" in items["a/open/"] and float(items["a/open/"]["flush_at"]["N"]) == T0 + 60
    assert "expires_at" not in items["a/open/"]
    assert "open_shard" not in items["a/done/"] and "flush_at" not in items["a/done/"]
    # Emitted only: kept RETENTION_SECONDS after its last activity, which is the end of the
    # emitted batch's de-duplication window (emitted at T0 by count, window max(quiet, 15 min)).
    window = max(60.0, MIN_DEDUPE_WINDOW)
    assert int(items["a/done/"]["expires_at"]["N"]) == int(T0 + window + RETENTION_SECONDS)
    indexed = client.scan(TableName="edp-state", IndexName=INDEX)["Items"]
    assert [i["prefix"]["S"] for i in indexed] == ["a/open/"]

    # A new open batch for the key: the item must not expire while it is open.
    batcher.ingest([ObjectEvent(BUCKET, "a/done/3", "s", T0 + 10)], T0 + 10)
    item = client.get_item(TableName="edp-state", Key={"pk": {"S": pk_of((BUCKET, "a/done/"))},
                                                       "sk": {"S": "HEAD"}})["Item"]
    assert "expires_at" not in item and float(item["flush_at"]["N"]) == T0 + 70
    # Emitted again (quiet, at T0 + 70): the TTL comes back, counted from the new emission.
    assert [e.trigger for e in batcher.flush(T0 + 70).emitted] == ["quiet", "quiet"]
    item = client.get_item(TableName="edp-state", Key={"pk": {"S": pk_of((BUCKET, "a/done/"))},
                                                       "sk": {"S": "HEAD"}})["Item"]
    assert int(item["expires_at"]["N"]) == int(T0 + 70 + window + RETENTION_SECONDS)
    assert "open_shard" not in item and "flush_at" not in item


def forbid_scan(client) -> list[dict]:
    """Make any `Scan` through `client` fail the test; return the `Query` calls' parameters."""
    queries: list[dict] = []

    def scan(**_):
        raise AssertionError("the batch-state table was scanned")

    client.meta.events.register("before-call.dynamodb.Scan", scan)
    client.meta.events.register("provide-client-params.dynamodb.Query",
                                lambda params, **_: queries.append(dict(params)))
    return queries


@mock_aws
def test_dynamodb_finds_due_and_open_batches_without_a_scan():
    client = boto3.client("dynamodb")
    create_table(client, "edp-state")
    store = DynamoDBStore(client, "edp-state")
    rules = BatchRules(count=2, quiet_seconds=100)
    unpublishing = Batcher(Engine(rules), store, publisher=None)  # PutEvents never happened
    publisher = CollectingPublisher()
    publishing = Batcher(Engine(rules), store, publisher)
    for i in range(30):  # emitted and published: idle items a scan would have to read through
        publishing.ingest([ObjectEvent(BUCKET, f"old/{i}/{j}", "s", T0 - 3600) for j in (1, 2)], T0 - 3600)
    assert len(publisher.published) == 30
    publisher.published.clear()
    unpublishing.ingest([ObjectEvent(BUCKET, "a/b/1", "s", T0)], T0)  # open, quiet deadline T0 + 100
    unpublishing.ingest([ObjectEvent(BUCKET, "a/c/1", "s", T0), ObjectEvent(BUCKET, "a/c/2", "s", T0)], T0)
    queries = forbid_scan(client)

    assert store.due(T0 + 10) == []
    assert store.due(T0 + 30) == [(BUCKET, "a/c/")]  # unpublished: retried after the grace
    assert sorted(store.due(T0 + 100)) == [(BUCKET, "a/b/"), (BUCKET, "a/c/")]
    assert {s.prefix for s in store.active()} == {"a/b/", "a/c/"}
    report = publishing.flush(T0 + 100)  # the flush Lambda's path
    assert ([e.trigger for e in report.emitted], report.retried, report.published) == (["quiet"], 1, 2)
    assert sorted(e.prefix for e in publisher.published) == ["a/b/", "a/c/"]
    assert store.due(T0 + 10**6) == [] and store.active() == []
    assert queries and all(q["IndexName"] == INDEX for q in queries)
