"""`omics-edp doctor` against stacks deployed into a moto server, healthy and broken one way each."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from conftest import API_TOKEN
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.local.receiver import CallbackReceiver
from omics_edp_cli.ops.deploy.execute import DeployHooks, DeployRequest, deploy_stack

runner = CliRunner()
HOOKS = DeployHooks(poll_seconds=0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Deployed:
    aws: ClientFactory
    stack: str
    outputs: dict[str, str]
    bucket: str


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return ClientFactory(region="us-east-1")


@pytest.fixture
def processor(aws: ClientFactory, receiver: CallbackReceiver) -> Deployed:
    bucket, stack = unique("lake"), unique("proc")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    result = deploy_stack(aws, DeployRequest("processor", {
        "DeadLetterEmail": "ops@example.com", "ApiServer": receiver.url,
        "ApiServerAuthToken": API_TOKEN, "DataLakeBucket": bucket,
    }, stack_name=stack, assume_yes=True), HOOKS)
    assert result.status == "CREATE_COMPLETE"
    return Deployed(aws, stack, result.outputs, bucket)


@pytest.fixture
def edp(aws: ClientFactory) -> Deployed:
    bucket, code, stack = unique("instruments"), unique("code"), unique("edp")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=code)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    result = deploy_stack(aws, DeployRequest("edp", {
        "BucketName": bucket, "EventBusName": unique("bus"),
    }, stack_name=stack, code_bucket=code, assume_yes=True), HOOKS)
    assert result.status == "CREATE_COMPLETE"
    return Deployed(aws, stack, result.outputs, bucket)


def doctor(stack: str) -> tuple[int, dict[str, dict[str, object]], str]:
    result = runner.invoke(app, ["-o", "json", "doctor", "--stack", stack])
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    return result.exit_code, checks, result.stderr


def failed(checks: dict[str, dict[str, object]]) -> list[str]:
    return [name for name, c in checks.items() if not c["ok"]]


def test_healthy_processor_stack_passes_every_check(processor):
    code, checks, stderr = doctor(processor.stack)
    assert code == 0, checks
    assert failed(checks) == []
    assert set(checks) == {
        "stack status", "function configured", "rule enabled and targeting the function",
        "dead-letter queue empty", "no recent Lambda errors", "callback endpoint reachable",
        "data-lake bucket encrypted", "reconcile schedule enabled", "last reconcile in sync",
        "AlarmTopicArn key lets cloudwatch publish", "queues encrypted",
        "stateful resources retained", "outputs.json read scope",
    }
    assert checks["outputs.json read scope"]["detail"].startswith("warning: the function may read")
    assert f"{len(checks)} passed, 0 failed" in stderr


def test_healthy_edp_stack_passes_every_check(edp):
    code, checks, _ = doctor(edp.stack)
    assert code == 0, checks
    assert failed(checks) == []
    assert "bucket sends events to EventBridge" in checks
    assert "ingest queue wired to the ingest function" in checks
    assert {"TopicArn key lets events publish", "AlarmTopicArn key lets cloudwatch publish",
            "queues encrypted", "stateful resources retained", "state table encrypted"} <= set(checks)


def test_disabled_rule_is_reported_with_the_command_that_fixes_it(processor):
    rule = processor.outputs["RuleName"]
    processor.aws.client("events").disable_rule(Name=rule)
    code, checks, _ = doctor(processor.stack)
    assert code == 1
    assert failed(checks) == ["rule enabled and targeting the function"]
    check = checks["rule enabled and targeting the function"]
    assert check["detail"] == f"rule {rule} is disabled"
    assert check["fix"] == f"aws events enable-rule --name {rule}"


def test_bucket_notifications_off_is_reported(edp):
    edp.aws.client("s3").put_bucket_notification_configuration(
        Bucket=edp.bucket, NotificationConfiguration={})
    code, checks, _ = doctor(edp.stack)
    assert code == 1
    assert failed(checks) == ["bucket sends events to EventBridge"]
    assert checks["bucket sends events to EventBridge"]["detail"] == (
        f"{edp.bucket}: EventBridge notifications off")


def test_messages_in_the_dead_letter_queue_are_reported(processor):
    sqs = processor.aws.client("sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=processor.outputs["DeadLetterQueueUrl"], MessageBody=f'{{"n": {n}}}')
    code, checks, _ = doctor(processor.stack)
    assert code == 1
    assert failed(checks) == ["dead-letter queue empty"]
    check = checks["dead-letter queue empty"]
    assert str(check["detail"]).startswith("3 message(s) in ")
    assert check["fix"] == f"omics-edp dlq list --stack {processor.stack}, then dlq redrive after the fix"


def test_receiver_down_is_reported(processor, receiver):
    receiver.down = True
    code, checks, _ = doctor(processor.stack)
    assert code == 1
    assert failed(checks) == ["callback endpoint reachable"]
    assert checks["callback endpoint reachable"]["detail"] == (
        f"{receiver.url}/internal/callbacks/health: HTTP 503")


def test_table_output_marks_each_check_and_prints_the_fix(processor, receiver):
    receiver.down = True
    result = runner.invoke(app, ["doctor", "--stack", processor.stack])
    assert result.exit_code == 1
    assert "✓ stack status: CREATE_COMPLETE" in result.stdout
    assert "✗ callback endpoint reachable" in result.stdout
    assert "fix: check the WES service" in result.stdout


def test_reconcile_schedule_and_last_result_are_checked(processor):
    code, checks, _ = doctor(processor.stack)
    assert checks["reconcile schedule enabled"]["ok"] and "rate(1 hour)" in checks[
        "reconcile schedule enabled"]["detail"]
    assert "no reconcile has run yet" in checks["last reconcile in sync"]["detail"]
    last = {"finished_at": "2026-01-23T00:00:00Z", "ok": False, "attention": [{"run_id": "1"}],
            "summary": {"runs": 12, "fixed": 0}}
    processor.aws.client("s3").put_object(Bucket=processor.bucket, Key="omics-run-events/"
                                          "reconcile/last.json", Body=json.dumps(last).encode())
    rule = processor.outputs["ReconcileRuleName"]
    processor.aws.client("events").disable_rule(Name=rule)

    code, checks, _ = doctor(processor.stack)

    assert code == 1
    assert failed(checks) == ["reconcile schedule enabled", "last reconcile in sync"]
    assert checks["reconcile schedule enabled"]["fix"] == f"aws events enable-rule --name {rule}"
    assert checks["last reconcile in sync"]["detail"] == (
        "2026-01-23T00:00:00Z: 12 run(s), 1 need attention, 0 fixed")


def test_unknown_stack_is_a_configuration_error(aws):
    result = runner.invoke(app, ["doctor", "--stack", "no-such-stack"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: stack no-such-stack not found in this account/region"


def drop_outputs(stack_name: str) -> None:
    """What a local AWS that computes no outputs (or a stack made by hand) shows: no Outputs."""
    from moto.cloudformation.models import cloudformation_backends

    for regions in cloudformation_backends.values():
        for backend in regions.values():
            for stack in backend.stacks.values():
                if stack.name == stack_name:
                    stack.output_map = {}


def test_edp_stack_without_outputs_is_checked_as_edp_from_its_resources(edp):
    drop_outputs(edp.stack)
    assert "Outputs" not in edp.aws.client("cloudformation").describe_stacks(
        StackName=edp.stack)["Stacks"][0]
    code, checks, _ = doctor(edp.stack)
    assert code == 0, checks
    assert "ingest queue wired to the ingest function" in checks
    assert "function configured" not in checks  # not checked as a processor


def test_processor_stack_without_outputs_finds_its_function_from_its_resources(processor):
    drop_outputs(processor.stack)
    code, checks, _ = doctor(processor.stack)
    assert code == 0, checks
    assert checks["function configured"]["detail"].startswith(processor.outputs["FunctionName"])


def test_a_stack_not_deployed_by_omics_edp_is_named_as_such(aws):
    name = unique("other")
    aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(
        {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}))
    result = runner.invoke(app, ["doctor", "--stack", name])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: stack {name} was not deployed by omics-edp: it has none of the parameters "
        "ApiServer (processor), BucketName (edp), RegistryBucket (packager)")


def test_a_topic_under_the_aws_managed_key_is_reported(processor):
    processor.aws.client("sns").set_topic_attributes(
        TopicArn=processor.outputs["AlarmTopicArn"], AttributeName="KmsMasterKeyId",
        AttributeValue="alias/aws/sns")
    code, checks, _ = doctor(processor.stack)
    assert code == 1
    assert failed(checks) == ["AlarmTopicArn key lets cloudwatch publish"]
    assert "uses the AWS managed key alias/aws/sns: alarms and rules cannot publish" in str(
        checks["AlarmTopicArn key lets cloudwatch publish"]["detail"])


def test_an_eventbridge_key_grant_with_source_conditions_is_reported(edp):
    """The grant that looks stricter but silently drops every package-ready notification."""
    kms = edp.aws.client("kms")
    key = edp.outputs["NotificationKeyArn"]
    raw = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    policy = raw if isinstance(raw, dict) else json.loads(raw)
    for statement in policy["Statement"]:
        if statement.get("Principal", {}).get("Service") == "events.amazonaws.com":
            statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    code, checks, _ = doctor(edp.stack)
    assert code == 1
    assert failed(checks) == ["TopicArn key lets events publish"]
    detail = str(checks["TopicArn key lets events publish"]["detail"])
    assert "does not let events.amazonaws.com use" in detail


def test_an_unencrypted_queue_is_reported(edp):
    edp.aws.client("sqs").set_queue_attributes(
        QueueUrl=edp.outputs["FlushDeadLetterQueueUrl"], Attributes={"SqsManagedSseEnabled": "false"})
    code, checks, _ = doctor(edp.stack)
    assert code == 1
    assert failed(checks) == ["queues encrypted"]
    assert checks["queues encrypted"]["detail"] == (
        f"not encrypted: {edp.outputs['FlushDeadLetterQueueUrl'].rsplit('/', 1)[-1]}")


def test_resources_without_retain_are_reported(aws):
    """A stack deployed from an older template: its dead letters would go with it."""
    from omics_edp_cli.ops.doctor import Doctor

    stack = unique("old")
    aws.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps({
        "Resources": {"DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
                      "Kept": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain",
                               "UpdateReplacePolicy": "Retain"}}}))
    ok, detail, fix = Doctor(aws, stack)._retention(stack)
    assert not ok
    assert detail == "deleting the stack would delete: DeadLetterQueue"
    assert fix.startswith("run omics-edp deploy again")


def test_a_table_whose_kms_key_is_unusable_is_reported():
    """moto cannot make a key inaccessible: the DynamoDB answer is scripted with Stubber."""
    import boto3
    from botocore.stub import Stubber

    from omics_edp_cli.ops.doctor import Doctor

    client = boto3.client("dynamodb", region_name="us-east-1")

    class Clients(ClientFactory):
        def client(self, service: str):  # type: ignore[override]
            return client

    with Stubber(client) as stub:
        stub.add_response("describe_table", {"Table": {
            "TableName": "state", "TableStatus": "INACCESSIBLE_ENCRYPTION_CREDENTIALS",
            "SSEDescription": {"Status": "ENABLED", "SSEType": "KMS"}}}, {"TableName": "state"})
        ok, detail, _ = Doctor(Clients(), "stk")._table_encrypted("state")
    assert not ok
    assert detail == "state: its KMS key is unusable (INACCESSIBLE_ENCRYPTION_CREDENTIALS)"
