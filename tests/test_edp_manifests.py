"""Batch manifests: every emitted batch's exact object list in S3, `detail.manifest` in its event."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from edp.samples import eventbridge_event, sqs_record
from moto import mock_aws

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.edp import handlers
from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.dynamodb_store import DynamoDBStore, create_table
from omics_edp_cli.edp.emit import CollectingPublisher
from omics_edp_cli.edp.engine import Emission, Engine
from omics_edp_cli.edp.manifests import DirectoryManifests, S3Manifests, decode_lines
from omics_edp_cli.edp.s3events import ObjectEvent, iso_time
from omics_edp_cli.edp.sqlite_store import SqliteStore

T0 = 1_767_600_000.0
BUCKET, MANIFESTS, TABLE, BUS = "instrument-bucket", "edp-manifests", "edp-state", "quilt-edp"
LOCATION = f"s3://{MANIFESTS}/manifests/"


def obj(key: str, i: int, *, t: float = T0, version: str | None = None) -> ObjectEvent:
    return ObjectEvent(BUCKET, key, f"0065E8{i:010X}", t + i * 0.001, 1000 + i, f"etag-{i:08x}", version)


def expected_line(e: ObjectEvent) -> dict[str, Any]:
    return {"bucket": e.bucket, "key": e.key, "size": e.size, "etag": e.etag, "sequencer": e.sequencer,
            "event_time": iso_time(e.time), "version_id": e.version_id}


def s3_keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=MANIFESTS, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def read_manifest(s3: Any, uri: str) -> list[dict[str, Any]]:
    assert uri.startswith(f"s3://{MANIFESTS}/")
    key = uri[len(f"s3://{MANIFESTS}/"):]
    return decode_lines(s3.get_object(Bucket=MANIFESTS, Key=key)["Body"].read())


@pytest.fixture
def moto() -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        create_table(dynamodb, TABLE)
        s3.create_bucket(Bucket=MANIFESTS)
        yield {"dynamodb": dynamodb, "s3": s3, "store": DynamoDBStore(dynamodb, TABLE),
               "manifests": S3Manifests(s3, LOCATION)}


def batcher(moto: dict[str, Any], rules: BatchRules, publisher: CollectingPublisher, **kw: Any) -> Batcher:
    return Batcher(Engine(rules), moto["store"], publisher, manifests=moto["manifests"], **kw)


def test_each_manifest_lists_exactly_the_objects_its_batch_counted_under_duplicates_and_splits(moto):
    """5 prefixes, count 7: count splits mid-SQS-batch, redeliveries in and across SQS batches."""
    published = CollectingPublisher()
    b = batcher(moto, BatchRules(count=7, quiet_seconds=300), published)
    events = [obj(f"run/p{i % 5}/f{i:03d}.bcl", i) for i in range(100)]
    sqs_batches = [events[:40] + events[:5], events[40:] + events[30:45]]  # duplicates in and across
    for n, batch in enumerate(sqs_batches):
        report = b.ingest(batch, T0 + n)
        assert not report.failed_keys and report.unpublished == 0
    b.flush(T0 + 400)
    emitted = published.published
    assert sum(e.count for e in emitted) == 100
    lines_by_batch = {e.batch_id: read_manifest(moto["s3"], e.manifest) for e in emitted}
    for e in emitted:
        lines = lines_by_batch[e.batch_id]
        assert len(lines) == e.count and {line["bucket"] for line in lines} == {BUCKET}
        assert {line["key"].rsplit("/", 1)[0] + "/" for line in lines} == {e.prefix}
    every = [line for lines in lines_by_batch.values() for line in lines]
    by_key = {e.key: expected_line(e) for e in events}
    assert sorted(line["key"] for line in every) == sorted(by_key)  # each object in exactly one manifest
    assert all(line == by_key[line["key"]] for line in every)  # key, size, ETag, sequencer, time
    assert s3_keys(moto["s3"], "manifests/segments/") == []


def test_the_event_detail_carries_the_manifest_uri_and_keeps_every_quilt_field(moto, monkeypatch):
    for name, value in {"STATE_TABLE": TABLE, "EVENT_BUS_NAME": BUS, "BUCKET_THRESHOLD_EVENT_COUNT": "3",
                        "BUCKET_NAME": BUCKET, "MANIFEST_LOCATION": LOCATION}.items():
        monkeypatch.setenv(name, value)
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    queue = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ready", EventBusName=BUS,
                    EventPattern=json.dumps({"source": ["com.quiltdata.edp"]}))
    events.put_targets(Rule="ready", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    handlers.reset(clients=ClientFactory(overrides={"dynamodb": moto["dynamodb"], "events": events,
                                                    "s3": moto["s3"]}), clock=lambda: T0)
    try:
        body = {"Records": [sqs_record(eventbridge_event(f"nova/run-1/f{i}.bcl", f"S{i}"), f"m{i}")
                            for i in range(3)]}
        assert handlers.ingest_handler(body, None) == {"batchItemFailures": []}
    finally:
        handlers.reset()
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert set(detail) == {"version", "bucket", "prefix", "count", "batch_id", "first_event_at",
                           "last_event_at", "trigger", "manifest"}
    assert detail["manifest"] == f"{LOCATION}{detail['batch_id']}.jsonl"
    lines = read_manifest(moto["s3"], detail["manifest"])
    assert [(line["key"], line["sequencer"], line["size"], line["etag"]) for line in lines] == [
        (f"nova/run-1/f{i}.bcl", f"S{i}", 1024, "d41d8cd98f00b204e9800998ecf8427e") for i in range(3)]


def test_large_object_lists_move_to_segments_that_are_removed_once_the_batch_is_published(moto):
    published = CollectingPublisher()
    b = batcher(moto, BatchRules(count=1000, quiet_seconds=60), published, spill_bytes=2048)
    events = [obj(f"run/p0/{'x' * 40}-{i:04d}.bcl", i) for i in range(300)]
    for start in range(0, 300, 25):
        assert not b.ingest(events[start:start + 25], T0 + start).failed_keys
    state = moto["store"].get((BUCKET, "run/p0/"))
    assert state.open is not None and len(state.open.segments) >= 5
    assert state.open.object_bytes <= 2048
    assert len(s3_keys(moto["s3"], "manifests/segments/")) == len(state.open.segments)
    b.flush(T0 + 400)
    [e] = published.published
    assert [line["key"] for line in read_manifest(moto["s3"], e.manifest)] == [x.key for x in events]
    assert s3_keys(moto["s3"], "manifests/segments/") == []


class RacingStore(DynamoDBStore):
    """Before its first commit, another batcher writes the same prefix: a real lost race."""

    def __init__(self, dynamodb: Any, table: str, rival: Batcher, rival_events: list[ObjectEvent]):
        super().__init__(dynamodb, table)
        self.rival, self.rival_events, self.lost = rival, rival_events, 0

    def commit(self, state, expected_version):
        if self.rival_events:
            events, self.rival_events = self.rival_events, []
            self.rival.ingest(events, T0)
        ok = super().commit(state, expected_version)
        self.lost += not ok
        return ok


def test_a_write_that_loses_the_race_deletes_its_segments_and_the_winner_keeps_its_own(moto):
    published = CollectingPublisher()
    rules = BatchRules(count=1000, quiet_seconds=60)
    rival = batcher(moto, rules, published, spill_bytes=1024)
    mine = [obj(f"run/p0/mine-{'m' * 30}-{i:03d}", i) for i in range(40)]
    theirs = [obj(f"run/p0/theirs-{'t' * 30}-{i:03d}", 100 + i) for i in range(40)]
    store = RacingStore(moto["dynamodb"], TABLE, rival, theirs)
    b = Batcher(Engine(rules), store, published, manifests=moto["manifests"], spill_bytes=1024,
                sleep=lambda _: None)
    assert not b.ingest(mine, T0 + 1).failed_keys
    assert store.lost == 1
    state = moto["store"].get((BUCKET, "run/p0/"))
    assert sorted(s3_keys(moto["s3"], "manifests/segments/")) == sorted(p for p, _ in state.open.segments)
    b.flush(T0 + 100)
    [e] = published.published
    assert [line["key"] for line in read_manifest(moto["s3"], e.manifest)] == [x.key for x in theirs + mine]


def test_a_quiet_batch_of_10000_objects_fits_its_item_and_keeps_one_write_per_sqs_batch(moto, monkeypatch):
    for name, value in {"STATE_TABLE": TABLE, "EVENT_BUS_NAME": BUS, "BUCKET_THRESHOLD_EVENT_COUNT": "15000",
                        "BUCKET_THRESHOLD_DURATION": "300", "MANIFEST_LOCATION": LOCATION}.items():
        monkeypatch.setenv(name, value)
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)
    dynamodb = moto["dynamodb"]
    writes: list[str] = []
    largest = [0]

    def on_call(model, params, **_):
        if model.name in ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems", "DeleteItem"):
            writes.append(model.name)
        if model.name == "PutItem":
            largest[0] = max(largest[0], len(params["body"]))

    dynamodb.meta.events.register("before-call.dynamodb.*", on_call)
    clock = [T0]
    clients = ClientFactory(overrides={"dynamodb": dynamodb, "events": events, "s3": moto["s3"]})
    handlers.reset(clients=clients, clock=lambda: clock[0])
    keys = [f"novaseq-02/run-42/Data/L00{i % 4 + 1}/s_{i:05d}.bcl.gz" for i in range(10_000)]
    try:
        for n in range(100):
            body = {"Records": [sqs_record(eventbridge_event(k, f"0065E8{n:03d}{i:04d}"), f"m{n}-{i}")
                                for i, k in enumerate(keys[n * 100:(n + 1) * 100])]}
            before = len(writes)
            assert handlers.ingest_handler(body, None) == {"batchItemFailures": []}
            assert len(writes) - before == 1  # one conditional write for the one prefix
            clock[0] += 1
        clock[0] += 300
        summary = handlers.flush_handler({}, None)
    finally:
        handlers.reset()
    assert (summary["emitted"], summary["triggers"], summary["published"]) == (1, {"quiet": 1}, 1)
    assert largest[0] < 400 * 1024
    [state] = list(moto["store"].everything())
    [emission] = state.history
    lines = read_manifest(moto["s3"], moto["manifests"].uri(emission.batch_id))
    assert emission.count == 10_000 and [line["key"] for line in lines] == keys
    assert s3_keys(moto["s3"], "manifests/segments/") == []


def test_a_local_state_file_keeps_manifests_in_a_directory(tmp_path):
    published = CollectingPublisher()
    store = SqliteStore(tmp_path / "state.db")
    b = Batcher(Engine(BatchRules(count=4)), store, published,
                manifests=DirectoryManifests(tmp_path / "state.db.manifests"), spill_bytes=200)
    events = [obj(f"run/p0/f{i}", i) for i in range(10)]
    b.ingest(events[:3], T0)
    b.ingest(events[3:], T0 + 1)
    assert [e.count for e in published.published] == [4, 4]
    for e, part in zip(published.published, (events[:4], events[4:8]), strict=True):
        assert e.manifest.startswith("file://")
        lines = decode_lines((tmp_path / "state.db.manifests" / f"{e.batch_id}.jsonl").read_bytes())
        assert lines == [expected_line(x) for x in part]


@pytest.mark.e2e
def test_eight_concurrent_writers_with_duplicates_on_one_prefix_get_exact_manifests(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    table, bucket = f"edp-state-{uuid.uuid4().hex[:8]}", f"edp-manifests-{uuid.uuid4().hex[:8]}"
    create_table(boto3.client("dynamodb"), table)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    location = f"s3://{bucket}/m/"
    rules = BatchRules(count=40, quiet_seconds=300)
    publisher = CollectingPublisher()
    lock = threading.Lock()
    threads_n, per_thread = 8, 150
    own = [[obj(f"run/one/t{t}-{i:04d}-{'k' * 20}", t * 1000 + i) for i in range(per_thread)]
           for t in range(threads_n)]
    streams = [own[t] + own[t - 1][::5] for t in range(threads_n)]  # 20 % redelivered by a neighbour
    errors: list[BaseException] = []
    emitted: list[Emission] = []

    def writer(t: int) -> None:
        try:
            session = boto3.session.Session()
            b = Batcher(Engine(rules), DynamoDBStore(session.client("dynamodb"), table), None,
                        manifests=S3Manifests(session.client("s3"), location), spill_bytes=1500)
            for start in range(0, len(streams[t]), 30):
                report = b.ingest(streams[t][start:start + 30], T0 + start)
                assert not report.failed_keys, report.failed_keys
                with lock:
                    emitted.extend(report.emitted)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    # Publish everything (unpublished count batches, then the last open one) as the flush does.
    final = Batcher(Engine(rules), DynamoDBStore(boto3.client("dynamodb"), table), publisher,
                    manifests=S3Manifests(s3, location))
    final.flush(T0 + 10_000)
    assert Counter(e.batch_id for e in publisher.published).most_common(1)[0][1] == 1
    total = threads_n * per_thread
    assert sum(e.count for e in publisher.published) == total
    seen: list[str] = []
    for e in publisher.published:
        key = e.manifest[len(f"s3://{bucket}/"):]
        lines = decode_lines(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert len(lines) == e.count
        seen.extend(line["key"] for line in lines)
    assert sorted(seen) == sorted(x.key for stream in own for x in stream)
    leftover = s3.list_objects_v2(Bucket=bucket, Prefix="m/segments/").get("KeyCount", 0)
    assert leftover == 0
