"""`omics-edp deploy` end to end over HTTP against a moto server (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import API_TOKEN, FIXTURES
from typer.testing import CliRunner

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.cli.app import app
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.deploy import packaging
from omics_edp_cli.ops.deploy.execute import DeployHooks, DeployRequest, deploy_stack, prepare

runner = CliRunner()
PROCESSOR_PARAMS = FIXTURES / "params/processor.parameters.json"
EDP_PARAMS = FIXTURES / "params/edp.parameters.json"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return ClientFactory(region="us-east-1")


def code_sha256(package: packaging.LambdaPackage) -> str:
    return base64.b64encode(hashlib.sha256(package.data).digest()).decode()


def test_first_processor_deploy_creates_the_stack_with_the_content_hash_key(aws, monkeypatch):
    bucket, stack = unique("lake"), unique("proc")
    aws.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    result = runner.invoke(app, ["deploy", "processor", "--parameters", str(PROCESSOR_PARAMS),
                                 "--parameter", f"DataLakeBucket={bucket}", "--stack-name", stack,
                                 "--yes"])
    assert result.exit_code == 0, result.output
    assert f"✓ {stack}: CREATE_COMPLETE" in result.stderr
    assert API_TOKEN not in result.output
    package = packaging.build("processor")
    expected_key = package.s3_key("omics-edp/lambda")
    described = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in described["Parameters"]}
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert params["CodeS3Key"] == expected_key and params["CodeS3Bucket"] == bucket
    function = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}["FunctionName"]
    config = aws.client("lambda").get_function_configuration(FunctionName=function)
    assert config["CodeSha256"] == code_sha256(package)
    assert config["Handler"] == "omics_edp_cli.omics.handler.lambda_handler"
    assert config["Environment"]["Variables"]["DATA_LAKE_BUCKET"] == bucket
    head = aws.client("s3").head_object(Bucket=bucket, Key=expected_key)
    assert head["ServerSideEncryption"] == "AES256"

    again = runner.invoke(app, ["deploy", "processor", "--parameters", str(PROCESSOR_PARAMS),
                                "--parameter", f"DataLakeBucket={bucket}", "--stack-name", stack,
                                "--yes"])
    assert again.exit_code == 0, again.output
    assert f"✓ {stack} is up to date" in again.stderr
    assert "already at" in again.stderr  # the package was not uploaded twice


def test_termination_protection_a_local_aws_lacks_is_one_line_after_the_json(aws, monkeypatch):
    """moto has no UpdateTerminationProtection: the stack is deployed, the report still printed,
    and the part that failed is one `Error:` line with exit 1 (no traceback)."""
    bucket, stack = unique("lake"), unique("proc")
    aws.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    result = runner.invoke(app, ["-o", "json", "deploy", "processor", "--parameters", str(PROCESSOR_PARAMS),
                                 "--parameter", f"DataLakeBucket={bucket}", "--stack-name", stack,
                                 "--yes", "--termination-protection"])
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    report = json.loads(result.stdout)
    assert (report["status"], report["termination_protection"]) == ("CREATE_COMPLETE", "failed")
    assert "FunctionName" in report["outputs"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [errors[0]] and errors[0].startswith(
        f"Error: turning termination protection on for {stack} failed: ")
    assert "Traceback" not in result.output


def test_a_code_change_updates_the_key_and_the_function(aws, tmp_path: Path):
    bucket, stack = unique("lake"), unique("proc")
    aws.client("s3").create_bucket(Bucket=bucket)
    parameters = {"DeadLetterEmail": "ops@example.com", "ApiServer": "https://api.example.com",
                  "ApiServerAuthToken": API_TOKEN, "DataLakeBucket": bucket}
    hooks = DeployHooks(poll_seconds=0.05)
    first = deploy_stack(aws, DeployRequest("processor", parameters, stack_name=stack,
                                            assume_yes=True), hooks)
    assert first.status == "CREATE_COMPLETE" and first.uploaded

    root = tmp_path / "omics_edp_cli"
    shutil.copytree(packaging.default_source_root(), root, ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "omics" / "handler.py").open("a") as f:
        f.write("\n# new code\n")
    second = deploy_stack(aws, DeployRequest("processor", parameters, stack_name=stack,
                                             assume_yes=True, source_root=root), hooks)

    assert second.status == "UPDATE_COMPLETE" and second.uploaded
    assert second.code_key != first.code_key
    # (moto lists template changes only, so a parameter-only change set shows no rows here.)
    function = second.outputs["FunctionName"]
    config = aws.client("lambda").get_function_configuration(FunctionName=function)
    assert config["CodeSha256"] == code_sha256(packaging.build("processor", root))


def test_first_edp_deploy_creates_the_stack(aws):
    code_bucket, bucket, stack = unique("code"), unique("instruments"), unique("edp")
    aws.client("s3").create_bucket(Bucket=code_bucket)
    result = runner.invoke(app, ["-o", "json", "deploy", "edp", "--parameters", str(EDP_PARAMS),
                                 "--parameter", f"BucketName={bucket}",
                                 "--parameter", f"EventBusName={unique('bus')}",
                                 "--stack-name", stack, "--code-bucket", code_bucket, "--yes"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "CREATE_COMPLETE"
    assert data["code_key"] == packaging.build("edp").s3_key("omics-edp/lambda")
    assert {"StateTableName", "IngestQueueUrl", "IngestDeadLetterQueueUrl",
            "FlushDeadLetterQueueUrl", "EventBusName"} <= set(data["outputs"])
    table = aws.client("dynamodb").describe_table(TableName=data["outputs"]["StateTableName"])["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["OpenBatchesByDeadline"]
    ingest = aws.client("lambda").get_function_configuration(
        FunctionName=data["outputs"]["IngestFunctionName"])
    # moto hands a Number parameter through as an int; real Lambda always stores strings.
    assert str(ingest["Environment"]["Variables"]["BUCKET_THRESHOLD_EVENT_COUNT"]) == "20"


class RecordingServer:
    """Stands in for AWS: records any request at all, so a test can prove none was made."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                self.send_response(500)
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def no_aws(monkeypatch):
    server = RecordingServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    yield server
    server.server.shutdown()


def _params_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "parameters.json"
    path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("[{\"ParameterKey\": ", [], "not valid JSON (line 1"),
        (PROCESSOR_PARAMS.read_text(), ["--parameter", "Colour=blue"],
         "Error: --parameter: unknown parameter Colour for the processor template"),
        (json.dumps([{"ParameterKey": "ApiServer", "ParameterValue": "https://x.example.com"}]), [],
         "parameters.json: missing required parameter DeadLetterEmail"),
        (PROCESSOR_PARAMS.read_text(), ["--parameter", "VerboseLogging=maybe"],
         'Error: --parameter: VerboseLogging="maybe" is not one of: true, false'),
        (PROCESSOR_PARAMS.read_text(), ["--parameter", "LogRetentionDays=3"],
         'Error: --parameter: LogRetentionDays="3" is not one of'),
        (json.dumps({"ApiServer": "https://x", "DeadLetterEmail": "a@b.c", "DataLakeBucket": "lake-bucket",
                     "VerboseLogging": "maybe"}), [],
         'parameters.json: VerboseLogging="maybe" is not one of: true, false'),
        (PROCESSOR_PARAMS.read_text(), ["--parameter", "NoEquals"], "expected Key=Value"),
    ],
    ids=["malformed-json", "unknown-key", "missing-required", "allowed-values", "allowed-number",
         "file-value", "bad-override"],
)
def test_bad_parameters_exit_2_before_any_aws_request(no_aws, tmp_path, content, extra, message):
    path = _params_file(tmp_path, content)
    result = runner.invoke(app, ["deploy", "processor", "--parameters", str(path), "--yes", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert no_aws.requests == []


def test_edp_without_code_bucket_exits_2_before_any_request(no_aws):
    result = runner.invoke(app, ["deploy", "edp", "--parameters", str(EDP_PARAMS), "--yes"])
    assert result.exit_code == 2
    assert "--code-bucket is required for edp" in result.stderr
    assert no_aws.requests == []


def test_no_terminal_and_no_yes_refuses_clearly(no_aws):
    result = runner.invoke(app, ["deploy", "processor", "--parameters", str(PROCESSOR_PARAMS)])
    assert result.exit_code == 2
    assert "refusing to deploy without confirmation: not a terminal; pass --yes" in result.stderr
    assert no_aws.requests == []


def test_parameter_file_errors_name_the_file_and_the_key(no_aws, tmp_path):
    path = _params_file(tmp_path, json.dumps({"BucketName": "instruments", "BucketPrefixDepth": "zero"}))
    result = runner.invoke(app, ["deploy", "edp", "--parameters", str(path), "--code-bucket", "c",
                                 "--yes"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f'Error: {path}: BucketPrefixDepth="zero" is not a number')


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_non_finite_numbers_are_refused(no_aws, tmp_path, value):
    path = _params_file(tmp_path, json.dumps({"BucketName": "instruments",
                                              "BucketThresholdDuration": value}))
    result = runner.invoke(app, ["deploy", "edp", "--parameters", str(path), "--code-bucket", "c",
                                 "--yes"])
    assert result.exit_code == 2, result.output
    assert f"BucketThresholdDuration=\"{value}\" is not a finite number" in result.stderr
    assert no_aws.requests == []


def test_a_parameters_file_that_is_not_text_exits_2(no_aws, tmp_path):
    path = tmp_path / "parameters.json"
    path.write_bytes(b"PK\x03\x04\xff\xfe\x00binary")
    result = runner.invoke(app, ["deploy", "processor", "--parameters", str(path), "--yes"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"Error: {path}: not UTF-8 text (is it the right file?)"
    assert no_aws.requests == []


def test_token_precedence_is_parameter_then_environment_then_file():
    in_file = {"DeadLetterEmail": "ops@example.com", "ApiServer": "https://api.example.com",
               "DataLakeBucket": "lake", "ApiServerAuthToken": "from-file-0000"}
    env = {"OMICS_EDP_API_TOKEN": "from-env-0000"}
    _, values = prepare(DeployRequest("processor", in_file), env={})
    assert values["ApiServerAuthToken"] == "from-file-0000"
    _, values = prepare(DeployRequest("processor", in_file), env=env)
    assert values["ApiServerAuthToken"] == "from-env-0000"
    _, values = prepare(DeployRequest("processor", in_file,
                                      overrides={"ApiServerAuthToken": "from-flag-0000"}), env=env)
    assert values["ApiServerAuthToken"] == "from-flag-0000"
    assert in_file["ApiServerAuthToken"] == "from-file-0000"  # the request is not changed


def test_a_stack_left_in_review_after_no_execute_can_be_deployed(aws, monkeypatch):
    bucket, stack = unique("lake"), unique("proc")
    aws.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("OMICS_EDP_API_TOKEN", API_TOKEN)
    args = ["deploy", "processor", "--parameters", str(PROCESSOR_PARAMS),
            "--parameter", f"DataLakeBucket={bucket}", "--stack-name", stack]
    review = runner.invoke(app, [*args, "--no-execute"])
    assert review.exit_code == 0, review.output
    assert "left for review (--no-execute); nothing executed" in review.stderr
    assert review.stderr.count("left for review") == 1
    cfn = aws.client("cloudformation")
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"

    deployed = runner.invoke(app, [*args, "--yes"])
    assert deployed.exit_code == 0, deployed.output
    assert "busy" not in deployed.stderr
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_package_built_already_is_the_one_deployed(aws, tmp_path: Path):
    """The demo builds its packages while its local AWS starts: deploy uploads those bytes."""
    bucket, stack = unique("lake"), unique("proc")
    aws.client("s3").create_bucket(Bucket=bucket)
    root = tmp_path / "omics_edp_cli"
    shutil.copytree(packaging.default_source_root(), root, ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "omics" / "handler.py").open("a") as f:
        f.write("\n# built beforehand\n")
    built = packaging.build("processor", root)
    parameters = {"DeadLetterEmail": "ops@example.com", "ApiServer": "https://api.example.com",
                  "ApiServerAuthToken": API_TOKEN, "DataLakeBucket": bucket}
    result = deploy_stack(aws, DeployRequest("processor", parameters, stack_name=stack,
                                             assume_yes=True, package=built),
                          DeployHooks(poll_seconds=0.05))

    assert result.status == "CREATE_COMPLETE" and result.uploaded
    assert result.code_key == built.s3_key("omics-edp/lambda")
    function = result.outputs["FunctionName"]
    config = aws.client("lambda").get_function_configuration(FunctionName=function)
    assert config["CodeSha256"] == code_sha256(built) != code_sha256(packaging.build("processor"))


def test_a_package_of_another_kind_is_refused_before_any_request(no_aws):
    parameters = {"BucketName": "instruments", "EventBusName": "bus"}
    with pytest.raises(ConfigError, match="a processor package cannot be deployed as a edp stack"):
        deploy_stack(ClientFactory(region="us-east-1"), DeployRequest(
            "edp", parameters, code_bucket="code", assume_yes=True,
            package=packaging.build("processor")))
    assert no_aws.requests == []
