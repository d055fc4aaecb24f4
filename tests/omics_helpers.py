"""Builders shared by the processor tests: a Stubber-backed HealthOmics client, an S3 archive."""

from __future__ import annotations

import copy
from typing import Any

import boto3
from botocore.stub import Stubber
from conftest import API_TOKEN, SAMPLE_WES_RUN_ID, fixture_json, sample_json

from omics_edp_cli.omics.archive import ArchiveStore
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.enrich import FINISHED
from omics_edp_cli.omics.processor import Processor

BUCKET = "ngs360-data-lake-test"
PREFIX = "omics-run-events"
WES_RUN_ID = SAMPLE_WES_RUN_ID
# Small budget so "receiver down" tests finish in well under a second.
FAST = DeliveryPolicy(max_retries=3, timeout=2.0, backoff_factor=0.01, backoff_max=0.05,
                      backoff_jitter=0.0, retry_after_cap=2.0)
SAMPLES = ["pending", "starting", "running", "stopping", "completed", "failed", "cancelled"]


def sample_event(status: str) -> dict[str, Any]:
    return sample_json(status)


def run_response(run_id: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    run = copy.deepcopy(fixture_json("omics/get-run-8567247.json"))
    run["id"] = run_id
    stream = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/omics/WorkflowLog:log-stream:run/{run_id}"
    run["logLocation"]["runLogStream"] = stream
    if tags is not None:
        run["tags"] = tags
    return run


def stub_omics(event: dict[str, Any], tags: dict[str, str] | None = None,
               pages: list[dict[str, Any]] | None = None) -> tuple[Any, Stubber]:
    """A real botocore HealthOmics client whose responses are the sample files."""
    client = boto3.client("omics", region_name="us-east-1")
    stubber = Stubber(client)
    run_id = event["detail"]["runId"]
    stubber.add_response("get_run", run_response(run_id, tags), {"id": run_id})
    if event["detail"]["status"] in FINISHED:
        pages = pages if pages is not None else [
            fixture_json("omics/list-run-tasks-8567247-page1.json"),
            fixture_json("omics/list-run-tasks-8567247-page2.json"),
        ]
        params: dict[str, Any] = {"id": run_id, "maxResults": 100}
        for page in pages:
            stubber.add_response("list_run_tasks", page, dict(params))
            if "nextToken" in page:
                params["startingToken"] = page["nextToken"]
    stubber.activate()
    return client, stubber


def make_processor(s3: Any, omics: Any, api_server: str, token: str | None = API_TOKEN,
                   bucket: str = BUCKET) -> Processor:
    callback = CallbackClient(api_server, token, FAST)
    return Processor(ArchiveStore(s3, bucket, PREFIX), omics, callback)


def archived_keys(s3: Any, bucket: str = BUCKET, prefix: str = PREFIX) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return [o["Key"] for o in listing.get("Contents", [])]
