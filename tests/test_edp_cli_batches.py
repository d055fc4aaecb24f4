"""`omics-edp batches list|show|flush` against a local SQLite file, a DynamoDB table and a stack (moto)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from edp.samples import eventbridge_event, sqs_record
from moto import mock_aws
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.edp import handlers
from omics_edp_cli.edp.batcher import Batcher
from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.dynamodb_store import DynamoDBStore, create_table
from omics_edp_cli.edp.emit import CollectingPublisher
from omics_edp_cli.edp.engine import Engine
from omics_edp_cli.edp.s3events import ObjectEvent, iso_time
from omics_edp_cli.edp.sqlite_store import SqliteStore
from omics_edp_cli.edp.store import BatchStore
from omics_edp_cli.ops.deploy.execute import DeployHooks, DeployRequest, deploy_stack

runner = CliRunner()
BUCKET = "instrument-bucket"


def fill(store: BatchStore, now: float) -> None:
    """run-42: 3 objects open; run-41: 12 objects, one batch of 10 emitted, 2 open; raw/ nothing."""
    batcher = Batcher(Engine(BatchRules(count=10, quiet_seconds=300)), store, CollectingPublisher())
    for run, files, ago in (("run-41", 12, 200), ("run-42", 3, 60)):
        batcher.ingest([ObjectEvent(BUCKET, f"novaseq-02/{run}/f{i}", "s", now - ago) for i in range(files)],
                       now - ago)


def invoke(*args: str):
    return runner.invoke(app, list(args))


def as_json(*args: str) -> dict:
    result = invoke("-o", "json", "batches", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path)
    fill(store, time.time())
    store.close()
    return str(path)


def test_list_open_batches_and_recent_emissions(db: str):
    data = as_json("list", "--db", db)
    assert data["source"] == f"SQLite file {db}"
    opened = {r["prefix"]: r for r in data["open"]}
    assert {p: r["count"] for p, r in opened.items()} == {"novaseq-02/run-41/": 2, "novaseq-02/run-42/": 3}
    assert 55 < opened["novaseq-02/run-42/"]["age_seconds"] < 120
    assert 170 < opened["novaseq-02/run-42/"]["flush_in_seconds"] <= 240
    [recent] = data["recent"]
    assert (recent["prefix"], recent["count"], recent["trigger"], recent["status"]) == (
        "novaseq-02/run-41/", 10, "count", "published")


def test_list_as_a_table(db: str):
    result = invoke("batches", "list", "--db", db)
    assert result.exit_code == 0, result.output
    assert f"Open batches in {BUCKET} (2)" in result.stdout
    assert f"Recent emissions in {BUCKET} (1)" in result.stdout
    assert "novaseq-02/run-42/" in result.stdout and f"batch state in SQLite file {db}" in result.stderr


def test_no_source_names_the_three_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("batches", "list")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "Error: where is the batch state? give --stack NAME (a deployed EDP stack), "
        "--table NAME (its DynamoDB table) or --db PATH")
    missing = invoke("batches", "list", "--db", "nothing.sqlite3")
    assert missing.exit_code == 2 and missing.stderr.strip() == "Error: --db nothing.sqlite3: no such file"


def test_show_one_prefix(db: str):
    data = as_json("show", "novaseq-02/run-42", "--db", db)
    assert (data["state"], data["count"], data["bucket"]) == ("open", 3, BUCKET)
    assert data["flush_in_seconds"] > 0 and data["recent"] == []
    assert as_json("show", f"s3://{BUCKET}/novaseq-02/run-41/", "--db", db)["recent"][0]["count"] == 10
    table = invoke("batches", "show", "novaseq-02/run-42/", "--db", db)
    assert table.exit_code == 0 and f"s3://{BUCKET}/novaseq-02/run-42/" in table.stdout
    assert "flush in" in table.stdout


def test_show_what_is_not_there(db: str):
    result = invoke("batches", "show", "novaseq-02/run-99/", "--db", db)
    assert result.exit_code == 2 and "no batch state for novaseq-02/run-99/; give the bucket" in result.stderr
    result = invoke("batches", "show", "novaseq-02/run-99/", "--bucket", BUCKET, "--db", db)
    assert result.exit_code == 1
    assert f"no batch state for s3://{BUCKET}/novaseq-02/run-99/: no object event" in result.stderr


def test_flush_a_local_batch_prints_the_event(db: str):
    result = invoke("-o", "json", "batches", "flush", "novaseq-02/run-42/", "--db", db)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["published"] is False
    assert (data["event"]["detail"]["count"], data["event"]["detail"]["trigger"]) == (3, "flush")
    assert "not sent to any bus" in result.stderr
    assert [r["prefix"] for r in as_json("list", "--db", db)["open"]] == ["novaseq-02/run-41/"]
    again = invoke("batches", "flush", f"s3://{BUCKET}/novaseq-02/run-42/", "--db", db)
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        f"Error: s3://{BUCKET}/novaseq-02/run-42/ has no open batch: nothing to flush")
    as_data = invoke("-o", "json", "batches", "flush", f"s3://{BUCKET}/novaseq-02/run-42/", "--db", db)
    assert as_data.exit_code == 1 and as_data.stderr.startswith("Error: ")
    assert json.loads(as_data.stdout) == {"published": False, "event": None, "bucket": BUCKET,
                                          "prefix": "novaseq-02/run-42/", "reason": "no open batch"}


def test_several_targets_exit_2(db: str):
    result = invoke("batches", "list", "--db", db, "--table", "t")
    assert result.exit_code == 2 and "give one of --table, --db" in result.stderr


# -- DynamoDB: a table, a stack ----------------------------------------------------------------


@pytest.fixture
def deployed() -> Iterator[dict]:
    """moto: a state table with batches, the EDP bus with a consumer queue, and a stack naming them."""
    with mock_aws():
        dynamodb, events, sqs = (boto3.client(s) for s in ("dynamodb", "events", "sqs"))
        create_table(dynamodb, "edp-state")
        fill(DynamoDBStore(dynamodb, "edp-state"), time.time())
        events.create_event_bus(Name="quilt-edp")
        queue = sqs.create_queue(QueueName="consumer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName="quilt-edp",
                        EventPattern=json.dumps({"source": ["com.quiltdata.edp"]}))
        events.put_targets(Rule="all", EventBusName="quilt-edp", Targets=[{"Id": "q", "Arn": arn}])
        template = {
            "Parameters": {"BucketName": {"Type": "String"}, "BucketThresholdEventCount": {"Type": "String"}},
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"StateTableName": {"Value": "edp-state"}, "EventBusName": {"Value": "quilt-edp"}},
        }
        boto3.client("cloudformation").create_stack(
            StackName="prod-edp", TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "BucketName", "ParameterValue": BUCKET},
                        {"ParameterKey": "BucketThresholdEventCount", "ParameterValue": "10"}])
        yield {"sqs": sqs, "queue": queue}


def test_list_and_show_a_table(deployed):
    data = as_json("list", "--table", "edp-state")
    assert sorted(r["count"] for r in data["open"]) == [2, 3] and len(data["recent"]) == 1
    assert as_json("show", "novaseq-02/run-42/", "--table", "edp-state")["count"] == 3


def test_a_missing_table_is_named(deployed):
    result = invoke("batches", "list", "--table", "missing")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == "Error: --table missing: no such DynamoDB table in this account/region"


def test_flush_through_a_stack_publishes_to_its_bus(deployed):
    result = invoke("-o", "json", "batches", "flush", "novaseq-02/run-42/", "--stack", "prod-edp")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["published"] is True
    assert "published to event bus quilt-edp" in result.stderr
    response = deployed["sqs"].receive_message(QueueUrl=deployed["queue"], MaxNumberOfMessages=10)
    [message] = response["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert (detail["prefix"], detail["count"], detail["trigger"]) == ("novaseq-02/run-42/", 3, "flush")
    data = as_json("show", "novaseq-02/run-42/", "--table", "edp-state")  # found with nothing open
    assert data["state"] == "no open batch" and data["recent"][0]["status"] == "published"


def test_flush_a_table_needs_an_event_bus(deployed):
    result = invoke("batches", "flush", "novaseq-02/run-42/", "--table", "edp-state")
    assert result.exit_code == 2
    assert "flush needs the event bus: pass --event-bus NAME or --stack" in result.stderr
    ok = invoke("batches", "flush", "novaseq-02/run-42/", "--table", "edp-state", "--event-bus", "quilt-edp")
    assert ok.exit_code == 0, ok.output


# -- a stack deployed into the moto server, its state written by the ingest Lambda -------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def edp_stack(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """`omics-edp deploy`'s EDP stack (count threshold 10, quiet 300 s); then the ingest handler,
    with the environment the stack gave its function, counts what `fill` does for the other targets:
    run-41: 12 objects 200 s ago (one batch of 10 emitted, 2 open); run-42: 3 objects 60 s ago."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    clients = ClientFactory(region="us-east-1")
    bucket, code, stack, bus = unique("instruments"), unique("code"), unique("edp"), unique("bus")
    s3 = clients.client("s3")
    s3.create_bucket(Bucket=code)
    s3.create_bucket(Bucket=bucket)
    result = deploy_stack(clients, DeployRequest("edp", {
        "BucketName": bucket, "EventBusName": bus, "BucketThresholdEventCount": "10",
    }, stack_name=stack, code_bucket=code, assume_yes=True), DeployHooks(poll_seconds=0.05))
    assert result.status == "CREATE_COMPLETE"
    # The stack's rule targets its SNS topic, which the local AWS cannot deliver to (PutEvents
    # fails, DESIGN §6): a queue stands in for the consumer, as in `omics-edp demo`.
    events, sqs, rule = clients.client("events"), clients.client("sqs"), f"{stack}-package-ready"
    queue = sqs.create_queue(QueueName=unique("consumer"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=[t["Id"] for t in targets])
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "consumer", "Arn": arn}])
    function = clients.client("lambda").get_function_configuration(
        FunctionName=result.outputs["IngestFunctionName"])
    for name, value in function["Environment"]["Variables"].items():
        # moto hands back numbers where the template gives a Number parameter; Lambda's are strings.
        monkeypatch.setenv(name, str(value))
    now = time.time()
    clock = {"now": now}
    handlers.reset(clients=clients, clock=lambda: clock["now"])
    try:
        for run, files, ago in (("run-41", 12, 200), ("run-42", 3, 60)):
            clock["now"] = now - ago
            records = [sqs_record(eventbridge_event(f"novaseq-02/{run}/f{i}.bcl", f"{run}-{i}", bucket=bucket,
                                                    time=iso_time(now - ago)), f"{run}-{i}")
                       for i in range(files)]
            assert handlers.ingest_handler({"Records": records}, None) == {"batchItemFailures": []}
        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        detail = json.loads(message["Body"])["detail"]
        assert (detail["bucket"], detail["prefix"], detail["count"]) == (bucket, "novaseq-02/run-41/", 10)
        yield {"stack": stack, "bucket": bucket, "table": result.outputs["StateTableName"], "detail": detail}
    finally:
        handlers.reset()


def test_list_through_a_deployed_stack(edp_stack):
    data = as_json("list", "--stack", edp_stack["stack"])
    assert data["source"] == f"table {edp_stack['table']} (stack {edp_stack['stack']})"
    opened = {r["prefix"]: r for r in data["open"]}
    assert {p: (r["bucket"], r["count"]) for p, r in opened.items()} == {
        "novaseq-02/run-41/": (edp_stack["bucket"], 2), "novaseq-02/run-42/": (edp_stack["bucket"], 3)}
    assert 55 < opened["novaseq-02/run-42/"]["age_seconds"] < 120
    assert 180 < opened["novaseq-02/run-42/"]["flush_in_seconds"] <= 240  # quiet 300 s from the stack
    [recent] = data["recent"]
    assert (recent["prefix"], recent["count"], recent["trigger"], recent["status"]) == (
        "novaseq-02/run-41/", 10, "count", "published")
    table = invoke("batches", "list", "--stack", edp_stack["stack"])
    assert table.exit_code == 0, table.output
    assert f"Open batches in {edp_stack['bucket']} (2)" in table.stdout
    assert f"Recent emissions in {edp_stack['bucket']} (1)" in table.stdout
    assert f"batch state in table {edp_stack['table']} (stack {edp_stack['stack']})" in table.stderr


def test_show_through_a_deployed_stack_takes_the_bucket_from_it(edp_stack):
    stack, bucket = edp_stack["stack"], edp_stack["bucket"]
    data = as_json("show", "novaseq-02/run-42", "--stack", stack)
    assert (data["bucket"], data["prefix"], data["state"], data["count"]) == (
        bucket, "novaseq-02/run-42/", "open", 3)
    assert 180 < data["flush_in_seconds"] <= 240 and data["recent"] == []
    [emitted] = as_json("show", "novaseq-02/run-41/", "--stack", stack)["recent"]
    assert (emitted["count"], emitted["trigger"], emitted["status"]) == (10, "count", "published")
    table = invoke("batches", "show", "novaseq-02/run-42/", "--stack", stack)
    assert table.exit_code == 0, table.output
    assert f"s3://{bucket}/novaseq-02/run-42/" in table.stdout and "flush in" in table.stdout
    missing = invoke("batches", "show", "novaseq-02/run-99/", "--stack", stack)
    assert missing.exit_code == 1
    assert f"no batch state for s3://{bucket}/novaseq-02/run-99/: no object event" in missing.stderr


def test_show_lists_the_first_objects_of_the_open_batch_or_all_of_them(db: str):
    data = as_json("show", "novaseq-02/run-42/", "--db", db, "--objects", "2")
    assert data["objects_total"] == 3 and data["objects_of"] == data["batch_id"]
    assert [o["key"] for o in data["objects"]] == ["novaseq-02/run-42/f0", "novaseq-02/run-42/f1"]
    assert set(data["objects"][0]) == {"bucket", "key", "size", "etag", "sequencer", "event_time",
                                       "version_id"}
    every = as_json("show", "novaseq-02/run-42/", "--db", db, "--objects", "2", "--all")
    assert [o["key"] for o in every["objects"]] == [f"novaseq-02/run-42/f{i}" for i in range(3)]
    table = invoke("batches", "show", "novaseq-02/run-42/", "--db", db, "--objects", "1")
    assert table.exit_code == 0, table.output
    assert f"Objects of batch {data['batch_id']} (first 1 of 3)" in table.stdout
    assert "novaseq-02/run-42/f0" in table.stdout and "2 more: --all lists every object" in table.stderr


def test_show_lists_an_emitted_batchs_objects_from_its_manifest_in_the_stacks_location(edp_stack):
    stack = edp_stack["stack"]
    [emitted] = as_json("show", "novaseq-02/run-41/", "--stack", stack)["recent"]
    data = as_json("show", "novaseq-02/run-41/", "--stack", stack, "--batch", emitted["batch_id"], "--all")
    assert data["objects_of"] == emitted["batch_id"] and data["objects_total"] == 10
    assert [o["key"] for o in data["objects"]] == [f"novaseq-02/run-41/f{i}.bcl" for i in range(10)]
    assert {o["sequencer"] for o in data["objects"]} == {f"run-41-{i}" for i in range(10)}
    manifest = edp_stack["detail"]["manifest"]
    assert manifest.startswith("s3://") and manifest.endswith(f"/manifests/{emitted['batch_id']}.jsonl")


def test_a_forced_flush_through_the_stack_writes_the_batchs_manifest(edp_stack):
    data = as_json("flush", "novaseq-02/run-42/", "--stack", edp_stack["stack"])
    assert data["published"] is True
    detail = data["event"]["detail"]
    assert (detail["count"], detail["trigger"]) == (3, "flush")
    shown = as_json("show", "novaseq-02/run-42/", "--stack", edp_stack["stack"],
                    "--batch", detail["batch_id"])
    assert [o["key"] for o in shown["objects"]] == [f"novaseq-02/run-42/f{i}.bcl" for i in range(3)]
    assert detail["manifest"].endswith(f"/manifests/{detail['batch_id']}.jsonl")
