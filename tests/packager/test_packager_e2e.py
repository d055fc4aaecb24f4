"""The packager with the real quilt3 against a moto server over HTTP (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import OperationError
from omics_edp_cli.packager.config import PackagerSettings
from omics_edp_cli.packager.packager import Packager

pytestmark = pytest.mark.e2e
quilt3 = pytest.importorskip("quilt3")

WORKFLOWS = """version: "1"
is_workflow_required: true
default_workflow: edp
workflows:
  edp:
    name: EDP batches
    metadata_schema: edp-meta
schemas:
  edp-meta:
    url: s3://{registry}/.quilt/workflows/edp-meta.schema.json
"""
# Requires an `instrument` field the default metadata does not have.
SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
          "required": ["instrument"], "properties": {"instrument": {"type": "string"}}}


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[dict[str, Any]]:
    """Source, registry and quarantine buckets (versioned, encrypted), a topic with an SQS subscriber."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = uuid.uuid4().hex[:8]
    names = {"source": f"instr-{run}", "registry": f"registry-{run}", "quarantine": f"quarantine-{run}"}
    s3 = boto3.client("s3")
    for bucket in names.values():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=f"packager-{run}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"packager-notes-{run}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    yield {**names, "topic": topic, "queue": queue, "s3": s3, "sqs": sqs}


def put(aws: dict[str, Any], prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}Data/L001/s_1_{1101 + i}.bcl.gz" for i in range(count)]
    for i, key in enumerate(keys):
        aws["s3"].put_object(Bucket=aws["source"], Key=key, Body=f"cluster data {i}".encode() * 4)
    return keys


def event(aws: dict[str, Any], prefix: str, count: int, batch_id: str | None = None,
          manifest: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "version": "0.1", "bucket": aws["source"], "prefix": prefix, "count": count,
        "batch_id": batch_id or str(uuid.uuid4()), "first_event_at": "2026-03-02T10:00:00Z",
        "last_event_at": "2026-03-02T10:14:00Z", "trigger": "quiet",
    }
    if manifest:
        detail["manifest"] = manifest
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "package-objects-ready",
            "source": "com.quiltdata.edp", "time": "2026-03-02T10:19:00Z",
            "resources": [f"arn:aws:s3:::{aws['source']}"], "detail": detail}


def packager(aws: dict[str, Any], **overrides: Any) -> Packager:
    settings = PackagerSettings.checked(**{"registry": aws["registry"], "quarantine": aws["quarantine"],
                                           "topic_arn": aws["topic"],
                                           "catalog_url": "https://catalog.example.com", **overrides})
    return Packager(settings, ClientFactory())


def notes(aws: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for _ in range(10):  # bounded: a test publishes at most a few notifications
        answer = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            break
        for m in messages:
            found.append(json.loads(m["Body"]))
            aws["sqs"].delete_message(QueueUrl=aws["queue"], ReceiptHandle=m["ReceiptHandle"])
    return found


def manifests(aws: dict[str, Any], bucket: str) -> set[str]:
    """The top hashes of every package revision in `bucket` (each test has its own registry)."""
    listing = aws["s3"].list_objects_v2(Bucket=bucket, Prefix=".quilt/packages/")
    return {o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", [])}


def revisions(aws: dict[str, Any], bucket: str, name: str) -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=bucket, Prefix=f".quilt/named_packages/{name}/")
    return [o["Key"] for o in listing.get("Contents", []) if not o["Key"].endswith("/latest")]


def test_push_and_browse_back_entries_metadata_and_readme(aws):
    keys = put(aws, "novaseq-01/run-0001/", 4)
    ready = event(aws, "novaseq-01/run-0001/", 4)
    result = packager(aws).package(ready)
    assert result.outcome == "created", result
    assert result.package == "novaseq-01/run-0001"
    pkg = quilt3.Package.browse("novaseq-01/run-0001", registry=f"s3://{aws['registry']}")
    assert pkg.top_hash == result.top_hash
    logical = sorted(k for k, _ in pkg.walk())
    expected = [k.removeprefix("novaseq-01/run-0001/") for k in keys] + ["README.md", ".quiltignore"]
    assert logical == sorted(expected)
    readme = pkg["README.md"].get_bytes().decode()
    assert f"s3://{aws['source']}/novaseq-01/run-0001/" in readme and ready["detail"]["batch_id"] in readme
    assert pkg["Data/L001/s_1_1101.bcl.gz"].get_bytes() == b"cluster data 0" * 4
    assert pkg.meta["edp"] == {
        "bucket": aws["source"], "prefix": "novaseq-01/run-0001/", "count": 4,
        "batch_id": ready["detail"]["batch_id"], "first_event_at": "2026-03-02T10:00:00Z",
        "last_event_at": "2026-03-02T10:14:00Z", "date": "2026-03-02",
    }
    # Encrypted at rest, like everything else this tool writes.
    manifest_key = f".quilt/packages/{result.top_hash}"
    assert aws["s3"].head_object(Bucket=aws["registry"], Key=manifest_key)["ServerSideEncryption"] == "AES256"
    [note] = notes(aws)
    assert note["Subject"] == "Package novaseq-01/run-0001 created"
    url = f"https://catalog.example.com/b/{aws['registry']}/packages/novaseq-01/run-0001/tree/{result.top_hash}"
    assert url in note["Message"] and result.top_hash in note["Message"]


def test_quilt3_builds_its_clients_from_the_factorys_session_and_checks_a_bucket_once(aws, monkeypatch):
    """quilt3 made a boto3 session (and resolved credentials) for each of its ~15 operations per push."""
    from quilt3.data_transfer import S3Api, S3ClientProvider

    clients = ClientFactory()
    clients.session()
    made: list[object] = []
    original = boto3.session.Session.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", counting)
    put(aws, "novaseq-05/run-0001/", 3)
    result = Packager(PackagerSettings.checked(registry=aws["registry"]), clients).package(
        event(aws, "novaseq-05/run-0001/", 3))
    assert result.outcome == "created"
    assert made == []
    # A provider made afterwards (quilt3 makes one per operation) knows which client reaches the
    # registry the push read: it sends no request to find out again.
    fresh = S3ClientProvider()
    assert fresh.get_boto_session() is clients.session()
    assert fresh.client_type_known(S3Api.GET_OBJECT, aws["registry"])
    assert fresh.client_type_known(S3Api.LIST_OBJECTS_V2, aws["registry"])


def test_the_same_event_twice_makes_one_revision(aws):
    put(aws, "novaseq-02/run-0007/", 3)
    ready = event(aws, "novaseq-02/run-0007/", 3)
    first = packager(aws).package(ready)
    second = packager(aws).package(json.loads(json.dumps(ready)))
    assert (first.outcome, second.outcome) == ("created", "already-packaged")
    assert second.top_hash == first.top_hash
    assert len(revisions(aws, aws["registry"], "novaseq-02/run-0007")) == 1
    # A later batch of the same folder is a revision of its own; then the first batch redelivered
    # (a DLQ redrive days later) still makes none.
    put(aws, "novaseq-02/run-0007/", 5)
    later = packager(aws).package(event(aws, "novaseq-02/run-0007/", 5))
    assert later.outcome == "created"
    assert packager(aws).package(ready).outcome == "already-packaged"
    # Two revisions, two manifests. (Not counted by their timestamp pointers: quilt3 names those
    # by the second, and two pushes within one second share one.)
    assert manifests(aws, aws["registry"]) == {first.top_hash, later.top_hash}
    assert [n["Subject"] for n in notes(aws)] == ["Package novaseq-02/run-0007 created"] * 2


def test_a_push_without_its_marker_is_still_recognised_from_the_metadata(aws):
    put(aws, "novaseq-03/run-0001/", 2)
    ready = event(aws, "novaseq-03/run-0001/", 2)
    first = packager(aws).package(ready)
    # As if the function stopped between the push and the marker.
    marker = f".quilt-edp/batches/{ready['detail']['batch_id']}.json"
    aws["s3"].delete_object(Bucket=aws["registry"], Key=marker)
    again = packager(aws).package(ready)
    assert (again.outcome, again.top_hash) == ("already-packaged", first.top_hash)
    assert len(revisions(aws, aws["registry"], "novaseq-03/run-0001")) == 1


def test_a_manifest_with_three_of_five_objects_packages_exactly_those_three(aws):
    keys = put(aws, "miseq-04/run-0012/", 5)
    chosen = [keys[0], keys[2], keys[4]]
    manifest_key = "edp-manifests/batch-3of5.jsonl"
    aws["s3"].put_object(Bucket=aws["source"], Key=manifest_key,
                         Body="\n".join(json.dumps({"key": k}) for k in chosen).encode())
    ready = event(aws, "miseq-04/run-0012/", 3, manifest=f"s3://{aws['source']}/{manifest_key}")
    result = packager(aws).package(ready)
    assert result.outcome == "created"
    pkg = quilt3.Package.browse("miseq-04/run-0012", registry=f"s3://{aws['registry']}")
    data = sorted(k for k, _ in pkg.walk() if k not in ("README.md", ".quiltignore"))
    assert data == sorted(k.removeprefix("miseq-04/run-0012/") for k in chosen)


def test_workflow_failure_goes_to_quarantine_and_the_topic_carries_the_seed_message(aws):
    aws["s3"].put_object(Bucket=aws["registry"], Key=".quilt/workflows/config.yml",
                         Body=WORKFLOWS.format(registry=aws["registry"]).encode())
    aws["s3"].put_object(Bucket=aws["registry"], Key=".quilt/workflows/edp-meta.schema.json",
                         Body=json.dumps(SCHEMA).encode())
    put(aws, "novaseq-05/run-0002/", 2)
    ready = event(aws, "novaseq-05/run-0002/", 2)
    result = packager(aws, workflow="edp").package(ready)
    assert result.outcome == "quarantined" and not result.ok
    assert result.registry == aws["quarantine"]
    assert revisions(aws, aws["registry"], "novaseq-05/run-0002") == []
    pkg = quilt3.Package.browse("novaseq-05/run-0002", registry=f"s3://{aws['quarantine']}")
    readme = pkg["README.md"].get_bytes().decode()
    assert "'instrument' is a required property" in readme
    [note] = notes(aws)
    assert note["Message"] == (
        f"Failed to create package novaseq-05/run-0002. It was pushed to s3://{aws['quarantine']} instead. "
        f"Error message is: {result.error}")
    assert "Metadata failed validation" in str(result.error)
    # Redelivered: recognised in the quarantine, nothing pushed or sent again.
    assert packager(aws, workflow="edp").package(ready).outcome == "quarantined"
    assert len(revisions(aws, aws["quarantine"], "novaseq-05/run-0002")) == 1
    assert notes(aws) == []
    # With metadata the workflow accepts, the same folder goes to the registry.
    fixed = packager(aws, workflow="edp", metadata_template={"instrument": "NovaSeq"})
    assert fixed.package(event(aws, "novaseq-05/run-0002/", 2)).outcome == "created"


def test_names_quilt_refuses_and_bad_events_are_reported_not_crashed_on(aws):
    put(aws, "novaseq.06/run-0001/", 1)
    refused = packager(aws).package(event(aws, "novaseq.06/run-0001/", 1))
    assert refused.outcome == "refused" and "not a name Quilt accepts" in str(refused.error)
    bad = packager(aws).package({"detail-type": "package-objects-ready", "detail": {"bucket": aws["source"]}})
    assert bad.outcome == "refused" and "prefix" in str(bad.error)
    subjects = [n["Subject"] for n in notes(aws)]
    assert subjects == ["EDP batch not packaged"] * 2


def test_an_unreachable_registry_fails_the_invocation_for_lambda_to_retry(aws):
    put(aws, "novaseq-07/run-0001/", 1)
    with pytest.raises(OperationError):
        packager(aws, registry="no-such-registry-bucket").package(event(aws, "novaseq-07/run-0001/", 1))


def test_file_gateway_refresh_after_a_push_and_its_failure_loses_nothing(aws):
    from botocore.stub import Stubber

    share = "arn:aws:storagegateway:us-east-1:123456789012:share/share-1A2B3C4D"
    gateway = boto3.client("storagegateway")
    clients = ClientFactory(overrides={"storagegateway": gateway})
    settings = PackagerSettings.checked(registry=aws["registry"], file_gateway_share_arn=share)
    put(aws, "novaseq-08/run-0001/", 1)
    with Stubber(gateway) as stub:
        stub.add_response("refresh_cache", {"FileShareARN": share, "NotificationId": "n-1"},
                          {"FileShareARN": share, "FolderList": ["/novaseq-08/run-0001"], "Recursive": True})
        assert Packager(settings, clients).package(event(aws, "novaseq-08/run-0001/", 1)).outcome == "created"
        stub.assert_no_pending_responses()
    put(aws, "novaseq-08/run-0002/", 1)
    with Stubber(gateway) as stub:
        stub.add_client_error("refresh_cache", "InvalidGatewayRequestException", "gateway offline")
        result = Packager(settings, clients).package(event(aws, "novaseq-08/run-0002/", 1))
        stub.assert_no_pending_responses()
    assert result.outcome == "created"
    assert revisions(aws, aws["registry"], "novaseq-08/run-0002") != []


def test_the_lambda_handler_packages_from_its_environment_and_fails_for_retry(aws, monkeypatch):
    """The real entry point: settings from the environment the template gives the function; a
    registry it cannot write fails the invocation (Lambda retries, then the dead-letter queue)."""
    from omics_edp_cli.packager import handler

    monkeypatch.setenv("REGISTRY_BUCKET", aws["registry"])
    monkeypatch.setenv("QUARANTINE_BUCKET", aws["quarantine"])
    monkeypatch.setenv("TOPIC_ARN", aws["topic"])
    handler.reset()
    try:
        put(aws, "novaseq-01/run-0009/", 2)
        answer = handler.lambda_handler(event(aws, "novaseq-01/run-0009/", 2), None)
        assert (answer["statusCode"], answer["outcome"]) == (200, "created")
        assert revisions(aws, aws["registry"], "novaseq-01/run-0009")

        handler.reset()
        monkeypatch.setenv("REGISTRY_BUCKET", f"no-such-registry-{uuid.uuid4().hex[:8]}")
        with pytest.raises(OperationError):
            handler.lambda_handler(event(aws, "novaseq-01/run-0009/", 2), None)
    finally:
        handler.reset()
