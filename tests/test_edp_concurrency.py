"""Concurrent ingest against DynamoDB on a moto server over HTTP: exact counts, one emission per batch."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import boto3
import pytest

from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.dynamodb_store import DynamoDBStore, create_table
from omics_edp_cli.edp.emit import CollectingPublisher
from omics_edp_cli.edp.engine import Emission, Engine
from omics_edp_cli.edp.s3events import ObjectEvent

T0 = 1_767_600_000.0
THREADS, PER_THREAD, PREFIXES = 8, 2_500, 10
SQS_BATCH = 250
RULES = BatchRules(count=50, quiet_seconds=300)


class CountingStore(DynamoDBStore):
    """Counts lost races, to show the test really makes writers collide."""

    conflicts = 0

    def commit(self, state, expected_version):
        ok = super().commit(state, expected_version)
        if not ok:
            CountingStore.conflicts += 1
        return ok


class LockedPublisher(CollectingPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def publish(self, emissions):
        with self.lock:
            return super().publish(emissions)


@pytest.mark.e2e
def test_eight_writers_count_every_event_once_and_emit_every_batch_once(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    table = f"edp-state-{uuid.uuid4().hex[:8]}"
    create_table(boto3.client("dynamodb"), table)
    publisher = LockedPublisher()
    # Every thread's events interleave over the same 10 prefixes; each thread also re-delivers
    # 10 % of the previous thread's events, as S3 (at least once) and SQS retries do.
    own = [[ObjectEvent("instrument-bucket", f"run/p{(t + i) % PREFIXES}/t{t}-{i:05d}.bcl", f"S{t}{i:05d}",
                        T0 + i * 0.01) for i in range(PER_THREAD)] for t in range(THREADS)]
    streams = [own[t] + own[t - 1][::10] for t in range(THREADS)]
    emitted: list[list[Emission]] = [[] for _ in range(THREADS)]
    counted, errors = [0] * THREADS, []

    def writer(t: int) -> None:
        try:
            store = CountingStore(boto3.session.Session().client("dynamodb"), table)
            batcher = Batcher(Engine(RULES), store, publisher)
            for start in range(0, len(streams[t]), SQS_BATCH):
                report = batcher.ingest(streams[t][start:start + SQS_BATCH], T0 + 10 + start * 0.01)
                assert not report.failed_keys, report.failed_keys
                counted[t] += report.counted
                emitted[t].extend(report.emitted)
        except BaseException as e:  # surfaced below, with the thread that failed
            errors.append((t, e))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert CountingStore.conflicts > 0

    # Flush everything still open, as the schedule would after the quiet time.
    store = DynamoDBStore(boto3.client("dynamodb"), table)
    final = Batcher(Engine(RULES), store, publisher).flush(T0 + 10_000)
    batches = [e for per_thread in emitted for e in per_thread] + final.emitted

    total = THREADS * PER_THREAD
    assert sum(counted) == total  # re-deliveries counted zero times
    ids = Counter(e.batch_id for e in batches)
    assert max(ids.values()) == 1  # no batch emitted twice
    assert sum(e.count for e in batches) == total
    members = [d for e in batches for d in e.members]
    assert len(members) == len(set(members)) == total  # every event in exactly one batch
    assert all(e.count <= RULES.count for e in batches)
    # 2,000 objects per prefix: 40 full batches each, all emitted by count during ingest.
    assert [(e.trigger, e.count) for e in batches] == [("count", RULES.count)] * (total // RULES.count)
    assert sorted(e.batch_id for e in publisher.published) == sorted(ids)  # each published once
    assert store.active() == []
