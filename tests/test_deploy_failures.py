"""`omics-edp deploy` when CloudFormation fails.

Moto cannot make a CloudFormation resource fail, so the `cloudformation` client here is a real
botocore client driven by a `Stubber` that plays back the exact calls `deploy_stack` makes
(describe_stacks, create/describe/execute_change_set, describe_stack_events pages, ...).
S3 is moto in-process. Each CLI scenario reaches its terminal status on the first poll, so the
default hooks never sleep.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from conftest import API_TOKEN, FIXTURES
from moto import mock_aws
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.cli.context import AppContext
from omics_edp_cli.cli.deploy import _hooks
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.ops.deploy.execute import DeployHooks, DeployRequest, deploy_stack

runner = CliRunner()
PROCESSOR_PARAMS = FIXTURES / "params/processor.parameters.json"
STACK = "omics-run-event-processor-failures"
BUCKET = "ngs360-lake-deploy-failures"
ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{STACK}/0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5"
STACK_TYPE = "AWS::CloudFormation::Stack"
TYPES = {
    "ApiSecret": "AWS::SecretsManager::Secret",
    "DeadLetterQueue": "AWS::SQS::Queue",
    "LogGroup": "AWS::Logs::LogGroup",
    "FunctionRole": "AWS::IAM::Role",
    "Function": "AWS::Lambda::Function",
    "RunStatusRule": "AWS::Events::Rule",
    STACK: STACK_TYPE,
}
DENIED = ('Resource handler returned message: "User: arn:aws:sts::123456789012:assumed-role/deployer '
          'is not authorized to perform: secretsmanager:CreateSecret" (HandlerErrorCode: AccessDenied)')
EXISTS = ("Resource handler returned message: \"Resource of type 'AWS::Logs::LogGroup' with identifier "
          "'/aws/lambda/omics-run-event-processor' already exists.\" (HandlerErrorCode: AlreadyExists)")
TOO_BIG = ('Resource handler returned message: "Lambda was unable to configure your environment '
           'variables because the environment variables you have provided exceeded the 4KB limit."')
IN_USE = ('Resource handler returned message: "Log group /aws/lambda/omics-run-event-processor is in '
          'use by a subscription filter" (HandlerErrorCode: ResourceConflict)')
CANCELLED_CREATE = "Resource creation cancelled"
CANCELLED_UPDATE = "Resource update cancelled"
PARAMETERS = {"DeadLetterEmail": "ops@example.com", "ApiServer": "https://api.example.com",
              "ApiServerAuthToken": API_TOKEN, "DataLakeBucket": BUCKET}


class Contains:
    """Matches a list parameter that contains `item` (for Stubber expected_params)."""

    def __init__(self, item: Any) -> None:
        self.item = item

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and self.item in other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<list containing {self.item!r}>"


class CloudFormationScript:
    """A real cloudformation client whose responses are scripted, in the order deploy_stack asks."""

    def __init__(self) -> None:
        self.client = boto3.client("cloudformation", region_name="us-east-1")
        self.stubber = Stubber(self.client)
        # Events of this deploy happen after deploy_stack starts executing the change set.
        self.t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        self.snapshots: list[str] = []

    # -- building blocks -------------------------------------------------------------------
    def event(self, seconds: float, resource: str, status: str, reason: str = "",
              at: datetime | None = None) -> dict[str, Any]:
        timestamp = (at or self.t0) + timedelta(seconds=seconds)
        event: dict[str, Any] = {
            "StackId": STACK_ID, "StackName": STACK,
            "EventId": f"{resource}-{status}-{timestamp:%Y%m%d%H%M%S%f}",
            "LogicalResourceId": resource,
            "PhysicalResourceId": STACK_ID if resource == STACK else f"{resource.lower()}-physical",
            "ResourceType": TYPES[resource], "Timestamp": timestamp, "ResourceStatus": status,
        }
        if reason:
            event["ResourceStatusReason"] = reason
        return event

    def stack(self, status: str, **extra: Any) -> None:
        described = {"StackName": STACK, "StackId": STACK_ID, "StackStatus": status,
                     "CreationTime": self.t0 - timedelta(days=30), **extra}
        self.stubber.add_response("describe_stacks", {"Stacks": [described]}, {"StackName": STACK})

    def no_stack(self) -> None:
        self.stubber.add_client_error(
            "describe_stacks", service_error_code="ValidationError",
            service_message=f"Stack with id {STACK} does not exist", http_status_code=400,
            expected_params={"StackName": STACK},
        )

    def change_set(self, change_type: str, changes: list[tuple[str, str]],
                   parameters: Any = ANY) -> None:
        arn = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/omics-edp-x/1f2e3d4c"
        self.stubber.add_response(
            "create_change_set", {"Id": arn, "StackId": STACK_ID},
            {"StackName": STACK, "ChangeSetName": ANY, "TemplateBody": ANY, "Parameters": parameters,
             "Capabilities": ["CAPABILITY_IAM"], "ChangeSetType": change_type, "Description": ANY},
        )
        rows = [{"Type": "Resource", "ResourceChange": {
            "Action": action, "LogicalResourceId": resource, "ResourceType": TYPES[resource],
            **({"Replacement": "False"} if action == "Modify" else {}),
        }} for action, resource in changes]
        for _ in ("the waiter", "the pages of changes"):
            self.stubber.add_response(
                "describe_change_set",
                {"ChangeSetName": "omics-edp-x", "ChangeSetId": arn, "StackId": STACK_ID,
                 "StackName": STACK, "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE",
                 "Changes": rows},
                {"StackName": STACK, "ChangeSetName": ANY},
            )
        self.stubber.add_response("execute_change_set", {},
                                  {"StackName": STACK, "ChangeSetName": ANY})

    def events(self, *pages: list[dict[str, Any]], more_history: bool = False) -> None:
        """One poll of describe_stack_events: pages newest first, as CloudFormation returns them.

        `more_history`: the last page still has a NextToken (older deploys); deploy_stack must
        stop there by itself, since a further page is not scripted.
        """
        for number, page in enumerate(pages, start=1):
            response: dict[str, Any] = {
                "StackEvents": sorted(page, key=lambda e: e["Timestamp"], reverse=True)}
            if number < len(pages) or more_history:
                response["NextToken"] = f"page-{number + 1}"
            params = {"StackName": STACK} if number == 1 else {"StackName": STACK,
                                                                "NextToken": f"page-{number}"}
            self.stubber.add_response("describe_stack_events", response, params)

    def polls(self, *steps: tuple[list[dict[str, Any]], str]) -> None:
        """Successive polls: each adds its new events to the history, then reports a status."""
        history: list[dict[str, Any]] = []
        for new, status in steps:
            history = history + new
            self.events(history)
            self.stack(status)

    def snapshot_stderr_on_describe_stacks(self) -> None:
        """Record what the CLI had written to stderr each time it asks for the stack status."""
        def snapshot(**_: Any) -> None:
            sys.stderr.flush()
            self.snapshots.append(sys.stderr.buffer.getvalue().decode())  # type: ignore[attr-defined]

        self.client.meta.events.register("before-parameter-build.cloudformation.DescribeStacks",
                                         snapshot)

    def activate(self) -> Any:
        self.stubber.activate()
        return self.client

    def clients(self, s3: Any) -> ClientFactory:
        """Clients for `deploy_stack`: this scripted CloudFormation and moto's S3."""
        return ClientFactory(region="us-east-1", overrides={"cloudformation": self.activate(), "s3": s3})


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def line(event: dict[str, Any]) -> str:
    """How the CLI prints one stack event (when stderr is not a terminal)."""
    reason = event.get("ResourceStatusReason", "")
    return (f"{event['Timestamp']:%H:%M:%S} {event['LogicalResourceId']} {event['ResourceStatus']}"
            + (f" {reason}" if reason else ""))


def invoke(script: CloudFormationScript, s3: Any, *extra: str, output: str = "table") -> Any:
    clients = script.clients(s3)
    args = ["-o", output, "deploy", "processor", "--parameters", str(PROCESSOR_PARAMS),
            "--parameter", f"DataLakeBucket={BUCKET}", "--stack-name", STACK, "--yes", *extra]
    return runner.invoke(app, args, obj=AppContext(clients=clients))


def why_it_failed(stderr: str, status: str) -> list[str]:
    """The lines of the "why it failed" block (everything after its heading, which ends stderr)."""
    lines = stderr.splitlines()
    heading = f"✗ {STACK}: {status} — why it failed:"
    assert heading in lines, stderr
    return lines[lines.index(heading) + 1:]


# -- scenarios ------------------------------------------------------------------------------
def failed_create(script: CloudFormationScript, secret_reason: str = DENIED,
                  stack_reason: str | None = None, parameters: Any = ANY) -> list[dict[str, Any]]:
    """A first create where ApiSecret then LogGroup fail; the rest is cancelled and rolled back."""
    e = script.event
    events = [  # CloudFormation times events to the millisecond
        e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated"),
        e(1.1, "DeadLetterQueue", "CREATE_IN_PROGRESS"),
        e(1.2, "ApiSecret", "CREATE_IN_PROGRESS"),
        e(1.3, "LogGroup", "CREATE_IN_PROGRESS"),
        e(1.4, "FunctionRole", "CREATE_IN_PROGRESS"),
        e(2.5, "ApiSecret", "CREATE_FAILED", secret_reason),
        e(3.1, "LogGroup", "CREATE_FAILED", EXISTS),
        e(3.2, "DeadLetterQueue", "CREATE_FAILED", CANCELLED_CREATE),
        e(3.3, "FunctionRole", "CREATE_FAILED", CANCELLED_CREATE),
        e(4, STACK, "ROLLBACK_IN_PROGRESS", stack_reason or (
            "The following resource(s) failed to create: [ApiSecret, DeadLetterQueue, FunctionRole, "
            "LogGroup]. Rollback requested by user.")),
        e(5.1, "DeadLetterQueue", "DELETE_COMPLETE"),
        e(5.2, "FunctionRole", "DELETE_COMPLETE"),
        e(5.3, "ApiSecret", "DELETE_COMPLETE"),
        e(5.4, "LogGroup", "DELETE_COMPLETE"),
        e(6, STACK, "ROLLBACK_COMPLETE"),
    ]
    script.no_stack()
    script.change_set("CREATE", [("Add", r) for r in ("ApiSecret", "DeadLetterQueue", "FunctionRole",
                                                      "LogGroup")], parameters)
    script.events(events[8:], events[:8])  # two pages, newest first
    script.stack("ROLLBACK_COMPLETE", StackStatusReason="The following resource(s) failed to create")
    return events


def failed_rollback(script: CloudFormationScript) -> list[dict[str, Any]]:
    """ApiSecret fails to create, then LogGroup fails to delete in the rollback: ROLLBACK_FAILED.

    Here the stack's own last event is a *_FAILED one too; it is no resource's failure.
    """
    e = script.event
    events = [
        e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated"),
        e(1.1, "ApiSecret", "CREATE_IN_PROGRESS"),
        e(1.2, "LogGroup", "CREATE_IN_PROGRESS"),
        e(1.9, "LogGroup", "CREATE_COMPLETE"),
        e(2.5, "ApiSecret", "CREATE_FAILED", DENIED),
        e(3, STACK, "ROLLBACK_IN_PROGRESS",
          "The following resource(s) failed to create: [ApiSecret]. Rollback requested by user."),
        e(4.1, "ApiSecret", "DELETE_COMPLETE"),
        e(4.2, "LogGroup", "DELETE_FAILED", IN_USE),
        e(5, STACK, "ROLLBACK_FAILED", "The following resource(s) failed to delete: [LogGroup]."),
    ]
    script.no_stack()
    script.change_set("CREATE", [("Add", "ApiSecret"), ("Add", "LogGroup")])
    script.events(events)
    script.stack("ROLLBACK_FAILED")
    return events


def failed_update(script: CloudFormationScript) -> list[dict[str, Any]]:
    """An update where Function fails, RunStatusRule is cancelled, and the stack rolls back.

    The event history also holds a failure from a deploy a week ago: it is not this deploy's.
    """
    e = script.event
    last_week = script.t0 - timedelta(days=7)
    old = [e(0, STACK, "UPDATE_IN_PROGRESS", "User Initiated", at=last_week),
           e(1, "ApiSecret", "UPDATE_FAILED", "an old failure, not this deploy's", at=last_week)]
    events = [
        e(0, STACK, "UPDATE_IN_PROGRESS", "User Initiated"),
        e(1.1, "Function", "UPDATE_IN_PROGRESS"),
        e(1.2, "RunStatusRule", "UPDATE_IN_PROGRESS"),
        e(2.1, "Function", "UPDATE_FAILED", TOO_BIG),
        e(2.2, "RunStatusRule", "UPDATE_FAILED", CANCELLED_UPDATE),
        e(3, STACK, "UPDATE_ROLLBACK_IN_PROGRESS",
          "The following resource(s) failed to update: [Function, RunStatusRule]."),
        e(4.1, "RunStatusRule", "UPDATE_COMPLETE"),
        e(4.2, "Function", "UPDATE_COMPLETE"),
        e(5, STACK, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"),
        e(6, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    script.stack("UPDATE_COMPLETE")
    # No token in the environment: the deployed value is kept.
    script.change_set("UPDATE", [("Modify", "Function"), ("Modify", "RunStatusRule")],
                      Contains({"ParameterKey": "ApiServerAuthToken", "UsePreviousValue": True}))
    script.events(events[4:], events[:4] + old, more_history=True)  # page 2 reaches last week
    script.stack("UPDATE_ROLLBACK_COMPLETE")
    return events


# -- 1. a failed deploy -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "status", "expected"),
    [
        (failed_create, "ROLLBACK_COMPLETE",
         [f"  ApiSecret (AWS::SecretsManager::Secret): {DENIED}",
          f"  LogGroup (AWS::Logs::LogGroup): {EXISTS}"]),
        (failed_update, "UPDATE_ROLLBACK_COMPLETE",
         [f"  Function (AWS::Lambda::Function): {TOO_BIG}"]),
        (failed_rollback, "ROLLBACK_FAILED",
         [f"  ApiSecret (AWS::SecretsManager::Secret): {DENIED}",
          f"  LogGroup (AWS::Logs::LogGroup): {IN_USE}"]),
    ],
    ids=["create-rollback", "update-rollback", "rollback-failed"],
)
def test_failed_deploy_exits_1_naming_the_first_failures_only(s3, monkeypatch, scenario, status, expected):
    if scenario is not failed_update:
        monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    script = CloudFormationScript()
    scenario(script)

    result = invoke(script, s3)

    assert result.exit_code == 1, result.output
    script.stubber.assert_no_pending_responses()
    # Exactly the first failing resources with their reasons: no "cancelled" cascade, not the
    # stack's own "The following resource(s) failed ..." event, nothing from an older deploy.
    assert why_it_failed(result.stderr, status) == expected
    assert f"✓ {STACK}" not in result.stderr
    assert "Outputs" not in result.stdout  # outputs are for a successful deploy


# -- 2. a stack left in ROLLBACK_COMPLETE -------------------------------------------------------
def test_rollback_complete_without_yes_is_explained_and_left_alone(s3):
    script = CloudFormationScript()
    script.stack("ROLLBACK_COMPLETE")  # and nothing else: deleting it would be an unscripted call
    clients = script.clients(s3)
    parameters = dict(PARAMETERS)
    hooks = DeployHooks(poll_seconds=0, sleep=lambda s: None)

    with pytest.raises(OperationError) as raised:
        deploy_stack(clients, DeployRequest("processor", parameters, stack_name=STACK), hooks)

    message = str(raised.value)
    assert f"stack {STACK} is in ROLLBACK_COMPLETE" in message
    assert "cannot update it" in message
    assert "run again with --yes to delete and re-create it" in message
    script.stubber.assert_no_pending_responses()


def test_rollback_complete_without_a_token_is_refused_before_anything_is_deleted(s3):
    script = CloudFormationScript()
    script.stack("ROLLBACK_COMPLETE")  # and nothing else: deleting it would be an unscripted call
    clients = script.clients(s3)
    parameters = {k: v for k, v in PARAMETERS.items() if k != "ApiServerAuthToken"}
    hooks = DeployHooks(poll_seconds=0, sleep=lambda s: None)

    with pytest.raises(ConfigError, match="missing required parameter ApiServerAuthToken "):
        deploy_stack(clients, DeployRequest("processor", parameters, stack_name=STACK,
                                            assume_yes=True), hooks, env={})
    script.stubber.assert_no_pending_responses()


def test_rollback_complete_with_yes_deletes_and_creates_again(s3, monkeypatch):
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    script = CloudFormationScript()
    e = script.event
    script.stack("ROLLBACK_COMPLETE")
    script.stubber.add_response("delete_stack", {}, {"StackName": STACK})
    script.no_stack()  # deleted on the first look: no waiting
    script.change_set("CREATE", [("Add", "ApiSecret"), ("Add", "Function")],
                      Contains({"ParameterKey": "ApiServerAuthToken", "ParameterValue": API_TOKEN}))
    events = [e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated"),
              e(1, "ApiSecret", "CREATE_COMPLETE"), e(2, "Function", "CREATE_COMPLETE"),
              e(3, STACK, "CREATE_COMPLETE")]
    script.events(events)
    outputs = [{"OutputKey": "FunctionName", "OutputValue": "omics-run-event-processor-Function-1A2B"}]
    script.stack("CREATE_COMPLETE", Outputs=outputs)  # the status poll
    script.stack("CREATE_COMPLETE", Outputs=outputs)  # the outputs

    result = invoke(script, s3)

    assert result.exit_code == 0, result.output
    script.stubber.assert_no_pending_responses()  # delete_stack, then a CREATE change set, in order
    assert (f"stack {STACK} is in ROLLBACK_COMPLETE: its first create failed and CloudFormation "
            "cannot update it; deleting it to create it again") in result.stderr
    assert f"✓ {STACK}: CREATE_COMPLETE" in result.stderr
    assert "omics-run-event-processor-Function-1A2B" in result.stdout


# -- 3. NoEcho values ---------------------------------------------------------------------------
@pytest.mark.parametrize("output", ["table", "json"])
def test_the_api_token_never_appears_even_in_failure_reasons(s3, monkeypatch, output):
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    script = CloudFormationScript()
    secret_reason = (f"Resource handler returned message: \"SecretString {{\\\"AUTH_TOKEN\\\": "
                     f"\\\"{API_TOKEN}\\\"}} is not valid\" (HandlerErrorCode: InvalidRequest)")
    failed_create(script, secret_reason=secret_reason,
                  stack_reason=f"The following resource(s) failed to create: [ApiSecret] ({API_TOKEN})",
                  # The token really is in play: it is sent to CloudFormation as the value.
                  parameters=Contains({"ParameterKey": "ApiServerAuthToken", "ParameterValue": API_TOKEN}))

    result = invoke(script, s3, output=output)

    assert result.exit_code == 1, result.output
    script.stubber.assert_no_pending_responses()
    assert API_TOKEN not in result.stdout
    assert API_TOKEN not in result.stderr
    masked = secret_reason.replace(API_TOKEN, "***")
    # Masked, not dropped: the reason is still there to read, in the event stream ...
    assert f" ApiSecret CREATE_FAILED {masked}" in result.stderr
    assert f" {STACK} ROLLBACK_IN_PROGRESS The following resource(s) failed to create: [ApiSecret] (***)" \
        in result.stderr
    # ... and where the failure is explained.
    if output == "json":
        failures = json.loads(result.stdout)["failures"]
        assert [(f["resource"], f["reason"]) for f in failures] == [("ApiSecret", masked),
                                                                     ("LogGroup", EXISTS)]
    else:
        assert why_it_failed(result.stderr, "ROLLBACK_COMPLETE")[0] == \
            f"  ApiSecret (AWS::SecretsManager::Secret): {masked}"


# -- 4. events printed as lines as they arrive ---------------------------------------------------
def test_events_are_printed_as_lines_before_the_outcome_is_known(s3, monkeypatch):
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    script = CloudFormationScript()
    events = failed_create(script)
    script.snapshot_stderr_on_describe_stacks()

    result = invoke(script, s3)

    assert result.exit_code == 1, result.output
    expected = [line(e) for e in events]  # one line each, once, oldest first
    assert [ln for ln in result.stderr.splitlines() if ln in expected] == expected
    # Calls to describe_stacks: "does it exist?" then the status poll after reading the events.
    _, at_status_poll = script.snapshots
    # Every event line was already on stderr when deploy asked whether the stack had finished.
    assert [ln for ln in at_status_poll.splitlines() if ln in expected] == expected
    assert "why it failed" not in at_status_poll


def test_each_poll_prints_only_its_new_events_before_waiting_again(s3, capsys):
    """Three polls (the CLI's own line printer, its sleep recorded instead of waited)."""
    script = CloudFormationScript()
    e = script.event
    first = [e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated"), e(1, "ApiSecret", "CREATE_IN_PROGRESS")]
    second = [e(2, "ApiSecret", "CREATE_FAILED", DENIED),
              e(3, STACK, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [ApiSecret].")]
    third = [e(4, "ApiSecret", "DELETE_COMPLETE"), e(5, STACK, "ROLLBACK_COMPLETE")]
    script.no_stack()
    script.change_set("CREATE", [("Add", "ApiSecret")])
    script.polls((first, "CREATE_IN_PROGRESS"), (second, "ROLLBACK_IN_PROGRESS"),
                 (third, "ROLLBACK_COMPLETE"))
    clients = script.clients(s3)
    parameters = dict(PARAMETERS)
    printed_by_poll: list[list[str]] = []

    def sleep(seconds: float) -> None:
        assert seconds == 0
        printed_by_poll.append(capsys.readouterr().err.splitlines())

    hooks = dataclasses.replace(_hooks(AppContext(clients=clients)), poll_seconds=0, sleep=sleep)
    result = deploy_stack(clients, DeployRequest("processor", parameters, stack_name=STACK,
                                                 assume_yes=True), hooks)
    printed_by_poll.append(capsys.readouterr().err.splitlines())

    script.stubber.assert_no_pending_responses()
    assert result.status == "ROLLBACK_COMPLETE"
    assert [f["resource"] for f in result.failures] == ["ApiSecret"]
    # Before the first wait: the upload and plan lines, then the first poll's events.
    assert printed_by_poll[0][-2:] == [line(x) for x in first]
    assert printed_by_poll[1:] == [[line(x) for x in second], [line(x) for x in third]]


# -- 5. a stack left in REVIEW_IN_PROGRESS (--no-execute on a new stack) -----------------------
def test_review_in_progress_gets_a_create_change_set_and_needs_the_token(s3, monkeypatch):
    script = CloudFormationScript()
    script.stack("REVIEW_IN_PROGRESS")  # only a change set was ever made: no previous values
    clients = script.clients(s3)
    parameters = {k: v for k, v in PARAMETERS.items() if k != "ApiServerAuthToken"}
    with pytest.raises(ConfigError, match="missing required parameter ApiServerAuthToken "):
        deploy_stack(clients, DeployRequest("processor", parameters, stack_name=STACK,
                                            assume_yes=True), DeployHooks(), env={})
    script.stubber.assert_no_pending_responses()

    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    script = CloudFormationScript()
    e = script.event
    script.stack("REVIEW_IN_PROGRESS")
    script.change_set("CREATE", [("Add", "ApiSecret")],
                      Contains({"ParameterKey": "ApiServerAuthToken", "ParameterValue": API_TOKEN}))
    script.events([e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated"),
                   e(1, "ApiSecret", "CREATE_COMPLETE"), e(2, STACK, "CREATE_COMPLETE")])
    script.stack("CREATE_COMPLETE")
    script.stack("CREATE_COMPLETE")

    result = invoke(script, s3)

    assert result.exit_code == 0, result.output
    script.stubber.assert_no_pending_responses()
    assert f"✓ {STACK}: CREATE_COMPLETE" in result.stderr


# -- 6. a heartbeat while nothing happens ---------------------------------------------------------
def test_a_long_quiet_wait_prints_a_heartbeat_line(s3, capsys):
    script = CloudFormationScript()
    e = script.event
    started = [e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated"), e(1, "Function", "CREATE_IN_PROGRESS")]
    done = [e(300, "Function", "CREATE_COMPLETE"), e(301, STACK, "CREATE_COMPLETE")]
    script.no_stack()
    script.change_set("CREATE", [("Add", "Function")])
    script.polls((started, "CREATE_IN_PROGRESS"), ([], "CREATE_IN_PROGRESS"),  # a quiet poll
                 (done, "CREATE_COMPLETE"))
    script.stack("CREATE_COMPLETE")  # the outputs
    clients = script.clients(s3)
    parameters = dict(PARAMETERS)
    quiet_polls: list[list[str]] = []

    def sleep(seconds: float) -> None:
        quiet_polls.append(capsys.readouterr().err.splitlines())

    # Every poll counts as long: a poll with no new event says the stack is still working.
    hooks = dataclasses.replace(_hooks(AppContext(clients=clients)), poll_seconds=0, sleep=sleep,
                                heartbeat_seconds=0)
    result = deploy_stack(clients, DeployRequest("processor", parameters, stack_name=STACK,
                                                 assume_yes=True), hooks)

    script.stubber.assert_no_pending_responses()
    assert result.status == "CREATE_COMPLETE"
    assert quiet_polls[1] == ["still CREATE_IN_PROGRESS ..."]
    assert not any("still" in ln for ln in quiet_polls[0])  # events were printed: no heartbeat


def test_no_heartbeat_while_events_keep_coming(s3, capsys):
    script = CloudFormationScript()
    e = script.event
    first = [e(0, STACK, "CREATE_IN_PROGRESS", "User Initiated")]
    second = [e(1, "Function", "CREATE_IN_PROGRESS")]
    script.no_stack()
    script.change_set("CREATE", [("Add", "Function")])
    script.polls((first, "CREATE_IN_PROGRESS"), (second, "CREATE_IN_PROGRESS"),
                 ([e(2, "Function", "CREATE_COMPLETE"), e(3, STACK, "CREATE_COMPLETE")], "CREATE_COMPLETE"))
    script.stack("CREATE_COMPLETE")  # the outputs
    clients = script.clients(s3)
    parameters = dict(PARAMETERS)
    hooks = dataclasses.replace(_hooks(AppContext(clients=clients)), poll_seconds=0,
                                sleep=lambda s: None)  # the default 30 s heartbeat

    deploy_stack(clients, DeployRequest("processor", parameters, stack_name=STACK, assume_yes=True), hooks)

    script.stubber.assert_no_pending_responses()
    assert "still " not in capsys.readouterr().err
