"""The ingest and flush Lambdas on moto (DynamoDB + EventBridge → an SQS queue standing in for a consumer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from edp.samples import classic_records, eventbridge_event, sqs_lambda_event, sqs_record
from moto import mock_aws

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.edp import handlers
from omics_edp_cli.edp.dynamodb_store import DynamoDBStore, create_table
from omics_edp_cli.edp.s3events import iso_time
from omics_edp_cli.errors import ConfigError, OperationError

T0 = 1_767_600_000.0
TABLE, BUS = "edp-state", "quilt-edp"
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto with the state table, the EDP bus and a rule delivering its events to an SQS queue."""
    for name, value in {"STATE_TABLE": TABLE, "EVENT_BUS_NAME": BUS, "BUCKET_THRESHOLD_EVENT_COUNT": "20",
                        "BUCKET_THRESHOLD_DURATION": "300", "BUCKET_PREFIX_DEPTH": "2",
                        "BUCKET_IGNORE_PREFIXES": "raw/*", "BUCKET_NAME": "instrument-bucket"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb, events, sqs = (boto3.client(s) for s in ("dynamodb", "events", "sqs"))
        create_table(dynamodb, TABLE)
        events.create_event_bus(Name=BUS)
        queue = sqs.create_queue(QueueName="consumer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="ready", EventBusName=BUS,
                        EventPattern=json.dumps({"detail-type": ["package-objects-ready"]}))
        events.put_targets(Rule="ready", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
        clock = Clock()
        clients = ClientFactory(overrides={"dynamodb": dynamodb, "events": events})
        handlers.reset(clients=clients, clock=clock)
        yield {"dynamodb": dynamodb, "events": events, "sqs": sqs, "queue": queue, "clock": clock,
               "store": DynamoDBStore(dynamodb, TABLE)}
        handlers.reset()


def received(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """What a consumer of the bus got (all of it, draining the queue)."""
    out = []
    while True:
        response = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
        messages = response.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            aws["sqs"].delete_message(QueueUrl=aws["queue"], ReceiptHandle=m["ReceiptHandle"])


def sqs_batch(keys: list[str], *, prefix_seq: str = "S") -> dict[str, Any]:
    return {"Records": [sqs_record(eventbridge_event(k, f"{prefix_seq}{i}"), f"m-{i}")
                        for i, k in enumerate(keys)]}


def forbid_scan(client: Any) -> None:
    """The flush must find due batches through the index: a `Scan` fails the test."""
    def scan(**_):
        raise AssertionError("the batch-state table was scanned")

    client.meta.events.register("before-call.dynamodb.Scan", scan)


def count_writes(client: Any) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*",
                                lambda model, **_: calls.append(model.name) if model.name in WRITES else None)
    return calls


# -- ingest ------------------------------------------------------------------------------------


def test_only_the_malformed_record_fails_and_the_others_are_counted(aws):
    event = sqs_batch([f"novaseq-01/run-1/f{i}.bcl" for i in range(4)])
    event["Records"].insert(2, sqs_record("{this is not json", "m-bad"))
    omics = {"source": "aws.omics", "detail-type": "Run Status Change"}
    event["Records"].append(sqs_record(omics, "m-omics"))
    result = handlers.ingest_handler(event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-bad"}, {"itemIdentifier": "m-omics"}]}
    state = aws["store"].get(("instrument-bucket", "novaseq-01/run-1/"))
    assert state.open.count == 4 and state.deadline == T0 + 300


INT_KEY_RECORD = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T10:15:00Z",
                               "s3": {"bucket": {"name": "instrument-bucket"}, "object": {"key": 5}}}]}


def test_a_record_with_a_non_string_key_fails_alone_and_the_others_are_counted(aws):
    event = sqs_batch([f"novaseq-01/run-1/f{i}.bcl" for i in range(3)])
    event["Records"].insert(1, sqs_record(INT_KEY_RECORD, "m-int-key"))
    event["Records"].append(sqs_record(classic_records(["novaseq-01/run-1/g.bcl"], "C1"), "m-classic"))
    result = handlers.ingest_handler(event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-int-key"}]}
    state = aws["store"].get(("instrument-bucket", "novaseq-01/run-1/"))
    assert state.open.count == 4  # the three EventBridge records and the good classic one


def test_every_input_shape_is_accepted_in_one_batch(aws):
    bodies = [eventbridge_event("a/b/1", "S1"), classic_records(["a/b/2 with space"], "S2"),
              {"Type": "Notification", "Message": json.dumps(eventbridge_event("a/b/3", "S3"))}]
    assert handlers.ingest_handler(sqs_lambda_event(bodies), None) == {"batchItemFailures": []}
    assert aws["store"].get(("instrument-bucket", "a/b/")).open.count == 3


def test_ignored_shallow_duplicate_and_other_bucket_events_are_not_counted_nor_failed(aws):
    bodies = [eventbridge_event("raw/x/1", "S1"), eventbridge_event("top.txt", "S2"),
              eventbridge_event("a/b/1", "S3"), eventbridge_event("a/b/1", "S3"),
              eventbridge_event("a/b/2", "S4", bucket="someone-else")]
    assert handlers.ingest_handler(sqs_lambda_event(bodies), None) == {"batchItemFailures": []}
    [state] = aws["store"].active()
    assert (state.prefix, state.open.count) == ("a/b/", 1)


def test_a_count_triggered_batch_is_emitted_at_once(aws):
    keys = [f"novaseq-01/run-1/f{i}.bcl" for i in range(25)]
    assert handlers.ingest_handler(sqs_batch(keys), None) == {"batchItemFailures": []}
    [event] = received(aws)
    assert event["source"] == "com.quiltdata.edp" and event["detail-type"] == "package-objects-ready"
    assert event["resources"] == ["arn:aws:s3:::instrument-bucket"]
    detail = event["detail"]
    assert (detail["version"], detail["bucket"], detail["prefix"], detail["count"], detail["trigger"]) == (
        "0.1", "instrument-bucket", "novaseq-01/run-1/", 20, "count")
    assert detail["first_event_at"] == detail["last_event_at"] == "2026-03-02T10:15:00Z"
    state = aws["store"].get(("instrument-bucket", "novaseq-01/run-1/"))
    assert state.open.count == 5 and state.outbox == []  # published, out of the outbox


def test_ingest_writes_once_per_prefix_plus_once_per_emission(aws):
    calls = count_writes(aws["dynamodb"])
    keys = [f"novaseq-01/run-{i % 5}/f{i}.bcl" for i in range(100)]  # 20 per prefix: one emission each
    handlers.ingest_handler(sqs_batch(keys), None)
    assert calls.count("PutItem") == 5 and calls.count("UpdateItem") == 5 and len(calls) == 10
    calls.clear()
    more = [f"novaseq-01/run-{i % 5}/g{i}.bcl" for i in range(50)]
    handlers.ingest_handler(sqs_batch(more, prefix_seq="T"), None)
    assert calls == ["PutItem"] * 5  # nothing full: one conditional write per prefix


def test_a_prefix_that_cannot_be_written_fails_only_its_records(aws):
    def refuse(params, **_):
        if b"run-2" in params["body"]:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "slow down"}}, "PutItem")

    aws["dynamodb"].meta.events.register("before-call.dynamodb.PutItem", refuse)
    event = {"Records": [sqs_record(eventbridge_event(k, f"S{i}"), f"m-{i}") for i, k in
                         enumerate(["a/run-1/x", "a/run-2/x", "a/run-1/y", "a/run-2/y"])]}
    result = handlers.ingest_handler(event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]}
    assert aws["store"].get(("instrument-bucket", "a/run-1/")).open.count == 2


# -- flush -------------------------------------------------------------------------------------


def test_flush_emits_a_batch_once_its_quiet_time_has_passed(aws):
    handlers.ingest_handler(sqs_batch(["novaseq-01/run-1/a", "novaseq-01/run-1/b"]), None)
    forbid_scan(aws["dynamodb"])
    aws["clock"].now = T0 + 299
    assert handlers.flush_handler({}, None)["emitted"] == 0
    aws["clock"].now = T0 + 300
    summary = handlers.flush_handler({}, None)
    assert (summary["emitted"], summary["triggers"], summary["published"]) == (1, {"quiet": 1}, 1)
    [event] = received(aws)
    assert (event["detail"]["count"], event["detail"]["trigger"]) == (2, "quiet")
    assert aws["store"].active() == []


def test_flush_emits_a_prefix_under_steady_traffic_at_its_maximum_age(aws, monkeypatch):
    """BUCKET_MAX_AGE as the template sets it on both functions; one object a minute never leaves
    five quiet minutes, so only the maximum age (10 minutes) emits the batch."""
    monkeypatch.setenv("BUCKET_MAX_AGE", "600")  # read at the first invocation (a cold start)
    forbid_scan(aws["dynamodb"])
    summaries = []
    for minute in range(16):  # the schedule runs, then the minute's object arrives
        aws["clock"].now = T0 + 60 * minute
        summaries.append(handlers.flush_handler({}, None))
        body = eventbridge_event(f"novaseq-01/run-1/f{minute:02d}.bcl", f"S{minute}",
                                 time=iso_time(T0 + 60 * minute))
        event = {"Records": [sqs_record(body, f"m-{minute}")]}
        assert handlers.ingest_handler(event, None) == {"batchItemFailures": []}
    assert [m for m, s in enumerate(summaries) if s["emitted"]] == [10]
    assert summaries[10]["triggers"] == {"max-age": 1} and summaries[10]["published"] == 1
    [ready] = received(aws)
    detail = ready["detail"]
    assert (detail["prefix"], detail["count"], detail["trigger"]) == ("novaseq-01/run-1/", 10, "max-age")
    assert (detail["first_event_at"], detail["last_event_at"]) == (iso_time(T0), iso_time(T0 + 540))
    state = aws["store"].get(("instrument-bucket", "novaseq-01/run-1/"))
    assert state.open.count == 6 and state.open.opened_at == T0 + 600  # the traffic goes on


def test_put_events_failing_once_is_emitted_on_the_next_run_once(aws):
    handlers.ingest_handler(sqs_batch(["novaseq-01/run-1/a"]), None)
    failures = {"left": 1}

    def fail_once(**_):
        if failures["left"]:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "InternalException", "Message": "try later"}}, "PutEvents")

    aws["events"].meta.events.register("before-call.eventbridge.PutEvents", fail_once)
    aws["clock"].now = T0 + 360
    with pytest.raises(OperationError, match="1 batch"):
        handlers.flush_handler({}, None)
    assert received(aws) == []
    [state] = aws["store"].active()
    assert state.open is None and len(state.outbox) == 1  # emitted (committed), not yet published
    aws["clock"].now = T0 + 420
    summary = handlers.flush_handler({}, None)
    assert (summary["emitted"], summary["retried"], summary["published"]) == (0, 1, 1)
    aws["clock"].now = T0 + 480
    assert handlers.flush_handler({}, None)["published"] == 0
    [event] = received(aws)
    assert event["detail"]["batch_id"] == state.outbox[0].batch_id and event["detail"]["trigger"] == "quiet"


def test_a_refused_entry_is_retried_too(aws):
    handlers.ingest_handler(sqs_batch([f"a/b/{i}" for i in range(20)]), None)  # emitted by count...
    refused = {"left": 1}

    def refuse_entry(**_):
        if refused["left"]:
            refused["left"] -= 1
            return (type("R", (), {"status_code": 200})(), {
                "FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]})
        return None

    aws["events"].meta.events.register("before-call.eventbridge.PutEvents", refuse_entry)
    handlers.ingest_handler(sqs_batch([f"a/c/{i}" for i in range(20)], prefix_seq="T"), None)  # ...refused
    assert [e["detail"]["prefix"] for e in received(aws)] == ["a/b/"]
    aws["clock"].now = T0 + 31  # past the retry grace
    assert handlers.flush_handler({}, None)["retried"] == 1
    assert [e["detail"]["prefix"] for e in received(aws)] == ["a/c/"]


# -- configuration -----------------------------------------------------------------------------


def test_missing_environment_is_a_config_error(monkeypatch):
    monkeypatch.delenv("STATE_TABLE", raising=False)
    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    handlers.reset()
    with pytest.raises(ConfigError, match="STATE_TABLE, EVENT_BUS_NAME"):
        handlers.flush_handler({}, None)


@pytest.mark.parametrize(("name", "value"), [("BUCKET_THRESHOLD_EVENT_COUNT", "0"),
                                             ("BUCKET_THRESHOLD_DURATION", "soon"),
                                             ("BUCKET_PREFIX_DEPTH", "-1")])
def test_bad_thresholds_in_the_environment_are_config_errors(monkeypatch, name, value):
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv(name, value)
    handlers.reset()
    with pytest.raises(ConfigError, match="in environment"):
        handlers.ingest_handler({"Records": []}, None)
