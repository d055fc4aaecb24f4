"""`omics-edp tail` on a moto server: it sees events put on the bus and leaves no queue or rule behind."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.ops.tail import NAME_PREFIX, EventTail, TailTarget

runner = CliRunner()
READY = {"Source": "com.quiltdata.edp", "DetailType": "package-objects-ready",
         "Detail": json.dumps({"version": "0.1", "bucket": "lab-a", "prefix": "nova/run-1/", "count": 3,
                               "batch_id": "b-1", "trigger": "quiet",
                               "manifest": "s3://m/manifests/b-1.jsonl"})}


@pytest.fixture
def bus(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    name = f"bus-{uuid.uuid4().hex[:8]}"
    boto3.client("events").create_event_bus(Name=name)
    return name


def leftovers(bus: str) -> tuple[list[str], list[str]]:
    queues = boto3.client("sqs").list_queues(QueueNamePrefix=NAME_PREFIX).get("QueueUrls", [])
    rules = boto3.client("events").list_rules(EventBusName=bus, NamePrefix=NAME_PREFIX)["Rules"]
    return queues, [r["Name"] for r in rules]


def put_when_ready(bus: str, entries: list[dict[str, Any]]) -> threading.Thread:
    """Put events on the bus once the tail's rule and its target exist (bounded wait, no fixed sleep)."""
    def run() -> None:
        events = boto3.client("events")
        for _ in range(400):
            rules = events.list_rules(EventBusName=bus, NamePrefix=NAME_PREFIX)["Rules"]
            # The rule exists before its target does: an event put in between goes nowhere.
            if rules and events.list_targets_by_rule(Rule=rules[0]["Name"], EventBusName=bus)["Targets"]:
                events.put_events(Entries=[{**e, "EventBusName": bus} for e in entries])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.e2e
def test_tail_prints_each_event_as_one_json_line_and_removes_its_queue_and_rule(bus):
    thread = put_when_ready(bus, [READY, {**READY, "DetailType": "something-else"}])
    result = runner.invoke(app, ["-o", "json", "tail", "--bus", bus, "--max-events", "2", "--timeout", "60"])
    thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    events = sorted((json.loads(line) for line in lines), key=lambda e: e["detail-type"])
    assert events[0]["detail-type"] == "package-objects-ready"
    assert events[0]["detail"]["manifest"] == "s3://m/manifests/b-1.jsonl"
    assert "2 event(s); removed omics-edp-tail-" in result.stderr
    assert leftovers(bus) == ([], [])


@pytest.mark.e2e
def test_tail_as_a_table_stops_at_its_timeout(bus):
    thread = put_when_ready(bus, [READY])
    result = runner.invoke(app, ["tail", "--bus", bus, "--max-events", "1", "--timeout", "60"])
    thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert "s3://lab-a/nova/run-1/  count=3  trigger=quiet  batch_id=b-1" in result.stdout
    quiet = runner.invoke(app, ["tail", "--bus", bus, "--timeout", "0"])
    assert quiet.exit_code == 0 and quiet.stdout == "" and "0 event(s)" in quiet.stderr
    assert leftovers(bus) == ([], [])


@pytest.mark.e2e
def test_ctrl_c_while_following_still_removes_the_queue_and_rule(bus):
    clients = ClientFactory(region="us-east-1")
    target = TailTarget(bus, {"source": ["x"]}, "test")
    with pytest.raises(KeyboardInterrupt), EventTail(clients, target) as t:
        assert leftovers(bus)[1] == [t.name]  # the rule is really there while following
        raise KeyboardInterrupt
    assert leftovers(bus) == ([], [])


def test_tail_needs_exactly_one_source_and_an_existing_bus(moto_server, monkeypatch):
    assert runner.invoke(app, ["tail"]).exit_code == 2
    result = runner.invoke(app, ["tail", "--stack", "a", "--bus", "b"])
    assert result.exit_code == 2
    assert "give one of --stack NAME (an EDP or processor stack) or --bus NAME" in result.stderr
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    result = runner.invoke(app, ["tail", "--bus", "no-such-bus", "--timeout", "0"])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "Error: event bus no-such-bus not found in this account/region")


@pytest.mark.e2e
def test_tail_of_a_processor_stack_shows_run_events_and_its_alarms_then_cleans_up(bus):
    """A processor stack: HealthOmics run status events on the default bus, and the refusal /
    dead-letter side through the alarm topic; no queue, rule or subscription is left."""
    sns, cfn = boto3.client("sns"), boto3.client("cloudformation")
    topic = sns.create_topic(Name=f"alarms-{uuid.uuid4().hex[:8]}")["TopicArn"]
    stack = f"proc-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({
        "Parameters": {"ApiServer": {"Type": "String", "Default": "https://wes.example.org"}},
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"AlarmTopicArn": {"Value": topic}},
    }))
    run_event = {"Source": "aws.omics", "DetailType": "Run Status Change",
                 "Detail": json.dumps({"runId": "8567247", "status": "COMPLETED"})}

    def publish_when_subscribed() -> None:
        for _ in range(400):  # bounded wait for the tail's subscription, no fixed sleep
            if sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
                sns.publish(TopicArn=topic, Subject="ALARM: refusals", Message="{}")
                boto3.client("events").put_events(Entries=[{**run_event, "EventBusName": "default"}])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=publish_when_subscribed)
    thread.start()
    result = runner.invoke(app, ["tail", "--stack", stack, "--max-events", "2", "--timeout", "60"])
    thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert "refusal / dead-letter alarms" in result.stderr
    assert "alarm  ALARM: refusals" in result.stdout
    assert "aws.omics  Run Status Change" in result.stdout and "8567247" in result.stdout
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert leftovers("default") == ([], [])
