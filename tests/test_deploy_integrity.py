"""Code integrity: the package is uploaded with a SHA-256 checksum, a look-alike at the
content-hash key is replaced (never trusted), and the code never sits where a role may write."""

from __future__ import annotations

import uuid

import pytest
from conftest import API_TOKEN
from test_deploy import aws  # noqa: F401  (the moto server fixture over HTTP)

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.deploy import packaging
from omics_edp_cli.ops.deploy.execute import (
    DEFAULT_CODE_PREFIX,
    DeployHooks,
    DeployRequest,
    deploy_stack,
    package_checksum,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def parameters(bucket: str, **extra: str) -> dict[str, str]:
    return {"DeadLetterEmail": "ops@example.com", "ApiServer": "https://api.example.com",
            "ApiServerAuthToken": API_TOKEN, "DataLakeBucket": bucket, **extra}


def test_the_package_is_uploaded_with_its_sha256_and_a_swapped_object_is_replaced(aws: ClientFactory):  # noqa: F811
    bucket, stack = unique("lake"), unique("proc")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    said: list[str] = []
    hooks = DeployHooks(poll_seconds=0.05, info=said.append)
    first = deploy_stack(aws, DeployRequest("processor", parameters(bucket), stack_name=stack,
                                            assume_yes=True), hooks)
    package = packaging.build("processor")
    assert first.uploaded and first.code_key == package.s3_key(DEFAULT_CODE_PREFIX)
    head = s3.head_object(Bucket=bucket, Key=first.code_key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == package_checksum(package.data)

    # An attacker's 22-byte package at the content-hash key (the reproduction).
    s3.put_object(Bucket=bucket, Key=first.code_key, Body=b"PK\x05\x06" + b"\0" * 18)
    said.clear()
    again = deploy_stack(aws, DeployRequest("processor", parameters(bucket), stack_name=stack,
                                            assume_yes=True), hooks)
    assert again.uploaded
    assert any("checksum is missing: uploading the package again" in line for line in said), said
    assert s3.get_object(Bucket=bucket, Key=first.code_key)["Body"].read() == package.data

    # The same bytes with a checksum that S3 computed over other bytes: replaced too.
    s3.put_object(Bucket=bucket, Key=first.code_key, Body=b"evil", ChecksumAlgorithm="SHA256",
                  ChecksumSHA256=package_checksum(b"evil"))
    said.clear()
    third = deploy_stack(aws, DeployRequest("processor", parameters(bucket), stack_name=stack,
                                            assume_yes=True), hooks)
    assert third.uploaded and any("checksum differs" in line for line in said), said
    assert s3.get_object(Bucket=bucket, Key=first.code_key)["Body"].read() == package.data

    # Intact: not uploaded again.
    said.clear()
    fourth = deploy_stack(aws, DeployRequest("processor", parameters(bucket), stack_name=stack,
                                             assume_yes=True), hooks)
    assert not fourth.uploaded and not any("again" in line for line in said)


@pytest.mark.parametrize(("prefix", "code_prefix"), [
    ("omics-run-events", "omics-run-events/lambda"),
    ("omics-edp", None),  # the default code prefix would fall inside this archive prefix
    ("a/b", "a/b"),
])
def test_a_code_prefix_inside_the_archive_prefix_is_refused_before_any_aws_call(prefix, code_prefix):
    clients = ClientFactory(region="us-east-1", endpoint_url="http://127.0.0.1:9")  # nothing listens
    request = DeployRequest("processor", parameters("lake-bucket", BucketPrefix=prefix),
                            code_prefix=code_prefix)
    with pytest.raises(ConfigError, match="which the function's role may write"):
        deploy_stack(clients, request)


def test_a_code_prefix_outside_the_archive_or_in_another_bucket_is_accepted():
    from omics_edp_cli.ops.deploy.execute import check_code_location
    values = parameters("lake-bucket")
    check_code_location("processor", "lake-bucket", "omics-run-events-code", values)
    check_code_location("processor", "code-bucket", "omics-run-events/lambda", values)
    check_code_location("processor", "lake-bucket", DEFAULT_CODE_PREFIX, values)
