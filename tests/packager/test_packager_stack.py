"""`deploy packager`, `doctor`, `dlq` and `package-batch --stack` against a moto server over HTTP."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.ops.deploy.execute import DeployRequest, deploy_stack
from omics_edp_cli.ops.deployment import PackagerStack, load_stack

pytestmark = pytest.mark.e2e
pytest.importorskip("quilt3")
runner = CliRunner()


@pytest.fixture
def stack(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = uuid.uuid4().hex[:8]
    names = {"source": f"src-{run}", "registry": f"reg-{run}", "quarantine": f"qua-{run}",
             "code": f"code-{run}", "bus": f"bus-{run}", "stack": f"pkg-{run}"}
    s3 = boto3.client("s3")
    for key in ("source", "registry", "quarantine", "code"):
        s3.create_bucket(Bucket=names[key])
    for key in ("registry", "quarantine"):
        s3.put_bucket_versioning(Bucket=names[key], VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=names[key], ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    boto3.client("events").create_event_bus(Name=names["bus"])
    result = deploy_stack(ClientFactory(), DeployRequest(
        kind="packager", stack_name=names["stack"], code_bucket=names["code"], assume_yes=True,
        parameters={"EventBusName": names["bus"], "SourceBucketName": names["source"],
                    "RegistryBucket": names["registry"], "QuarantineBucket": names["quarantine"]}),
        wheel_cache=tmp_path / "wheels")
    assert result.status == "CREATE_COMPLETE", result.failures
    return {**names, "s3": s3}


def test_deployed_stack_is_typed_and_doctor_checks_it(stack):
    typed = load_stack(ClientFactory(), stack["stack"])
    assert isinstance(typed, PackagerStack) and typed.registry_bucket == stack["registry"]
    result = runner.invoke(app, ["-o", "json", "doctor", "--stack", stack["stack"]])
    rows = {r["check"]: r for r in json.loads(result.stdout)}
    assert rows["registry bucket versioned"]["ok"] and rows["quarantine bucket encrypted"]["ok"]
    assert rows["rule on the EDP bus enabled and targeting the packager"]["ok"], rows
    assert rows["packager dead-letter queue empty"]["ok"]
    # The security checks (issue 12) hold for the packager too: the alarm can use the topic's key.
    for check in ("PackagerTopicArn key lets cloudwatch publish", "queues encrypted",
                  "stateful resources retained"):
        assert rows[check]["ok"], rows[check]
    # Versioning off on the registry: one failed line with the fix.
    stack["s3"].put_bucket_versioning(Bucket=stack["registry"],
                                      VersioningConfiguration={"Status": "Suspended"})
    result = runner.invoke(app, ["-o", "json", "doctor", "--stack", stack["stack"]])
    assert result.exit_code == 1
    row = next(r for r in json.loads(result.stdout) if r["check"] == "registry bucket versioned")
    assert not row["ok"] and "put-bucket-versioning" in row["fix"]


def test_dlq_reads_the_packager_queue(stack):
    typed = load_stack(ClientFactory(), stack["stack"])
    assert isinstance(typed, PackagerStack)
    boto3.client("sqs").send_message(QueueUrl=typed.dead_letter_queue_url, MessageBody=json.dumps(
        {"detail-type": "package-objects-ready", "detail": {"bucket": stack["source"], "prefix": "a/b/"}}))
    result = runner.invoke(app, ["-o", "json", "dlq", "list", "--stack", stack["stack"],
                                 "--queue", "packager"])
    assert result.exit_code == 0, result.output
    assert sum(g["count"] for g in json.loads(result.stdout)["groups"]) == 1


def test_package_batch_with_the_stack_dry_run_then_for_real(stack, tmp_path):
    for i in range(3):
        stack["s3"].put_object(Bucket=stack["source"], Key=f"hiseq-01/run-9/f{i}.fastq.gz", Body=b"ACGT" * i)
    event = {"detail-type": "package-objects-ready", "source": "com.quiltdata.edp", "id": "e-1",
             "detail": {"bucket": stack["source"], "prefix": "hiseq-01/run-9/", "count": 3,
                        "batch_id": str(uuid.uuid4())}}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    dry = runner.invoke(app, ["-o", "json", "package-batch", str(path), "--stack", stack["stack"],
                              "--dry-run"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["package"] == "hiseq-01/run-9" and planned["registry"] == f"s3://{stack['registry']}"
    assert [e["logical_key"] for e in planned["entries"]] == [
        "f0.fastq.gz", "f1.fastq.gz", "f2.fastq.gz", ".quiltignore", "README.md"]
    assert stack["s3"].list_objects_v2(Bucket=stack["registry"]).get("KeyCount", 0) == 0
    real = runner.invoke(app, ["-o", "json", "package-batch", str(path), "--stack", stack["stack"]])
    assert real.exit_code == 0, real.output
    assert json.loads(real.stdout)["outcome"] == "created"


def test_package_batch_usage_errors_exit_2_before_any_aws_call(tmp_path):
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"detail-type": "Object Created", "detail": {}}))
    result = runner.invoke(app, ["package-batch", str(path), "--registry", "s3://r-bucket"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: not a package-objects-ready event: detail-type")
    path.write_text(json.dumps({"detail-type": "package-objects-ready",
                                "detail": {"bucket": "b-1", "prefix": "a/b/"}}))
    result = runner.invoke(app, ["package-batch", str(path)])
    assert result.exit_code == 2 and "--registry s3://BUCKET" in result.stderr
