"""Enrichment from HealthOmics and S3. Every failure here is logged and the field omitted."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.omics.event import RunStatusEvent

log = logging.getLogger(__name__)

FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
WES_RUN_ID_TAG = "WESRunId"
_AWS_ERRORS = (BotoCoreError, ClientError)


@dataclass
class Enrichment:
    tags: dict[str, str] = field(default_factory=dict)
    log_urls: dict[str, Any] | None = None
    output_mapping: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def wes_run_id(self) -> str | None:
        return self.tags.get(WES_RUN_ID_TAG)


def enrich(event: RunStatusEvent, omics: Any, s3: Any) -> Enrichment:
    """Run tags for every event; log URLs when finished; outputs when COMPLETED."""
    result = Enrichment()
    run: dict[str, Any] = {}
    try:
        run = omics.get_run(id=event.run_id)
        result.tags = dict(run.get("tags") or {})
    except _AWS_ERRORS as e:
        result.warnings.append(f"GetRun failed: {_aws_error(e)}")
    if event.status in FINISHED and run:  # without GetRun there is no log stream (warned above)
        result.log_urls = _log_urls(event, run, omics, result.warnings)
    if event.status == "COMPLETED":
        uri = event.detail.get("runOutputUri") or run.get("runOutputUri")
        if uri:
            result.output_mapping = _output_mapping(uri, s3, result.warnings)
    for warning in result.warnings:
        log.warning("run %s: %s", event.run_id, warning)
    return result


def _aws_error(error: Exception) -> str:
    """One short line: the error code and AWS's message, never an HTML error page's body.

    A proxy or a wrong endpoint answers with an HTML page, which botocore puts in the message.
    """
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        code = str(err.get("Code") or "error")
        message = str(err.get("Message") or "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if "<html" in message.lower() or "<!doctype" in message.lower():
            message = "the endpoint answered with an HTML page, not an AWS API response"
        text = f"{code}: {message}" if message else code
        if status and str(status) != code:
            text += f" (HTTP {status})"
    else:
        text = str(error)
    return " ".join(text.split())[:300]


def console_log_url(region: str, log_group: str, suffix: str = "") -> str:
    """The CloudWatch console URL of a log group (and a `/log-events/STREAM` suffix)."""
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{quote(log_group, safe='')}{suffix}"
    )


def _log_urls(
    event: RunStatusEvent, run: dict[str, Any], omics: Any, warnings: list[str]
) -> dict[str, Any] | None:
    stream_arn = (run.get("logLocation") or {}).get("runLogStream", "")
    # arn:aws:logs:REGION:ACCOUNT:log-group:GROUP:log-stream:STREAM
    if ":log-group:" not in stream_arn or ":log-stream:" not in stream_arn:
        warnings.append("GetRun has no usable logLocation.runLogStream")
        return None
    group_part, stream = stream_arn.split(":log-stream:", 1)
    log_group = group_part.split(":log-group:", 1)[1]
    region = event.region
    urls: dict[str, Any] = {
        "run_log": console_log_url(region, log_group, f"/log-events/{quote(stream, safe='')}")
    }
    try:
        tasks = list(_all_tasks(omics, event.run_id))
    except _AWS_ERRORS as e:
        warnings.append(f"ListRunTasks failed: {_aws_error(e)}")
        tasks = []
    task_logs: dict[str, str] = {}
    for task in tasks:
        task_id = task.get("taskId")
        if not task_id:
            continue
        name = task.get("name") or "unnamed"
        # Scattered tasks share a name; keep every one of them.
        label = name if name not in task_logs else f"{name}#{task_id}"
        task_stream = f"run/{event.run_id}/task/{task_id}"
        task_logs[label] = console_log_url(
            region, log_group, f"/log-events/{quote(task_stream, safe='')}"
        )
    if task_logs:
        urls["task_logs"] = task_logs
    urls["manifest_log_base_url"] = console_log_url(
        region, log_group, f"?logStreamNameFilter={quote(f'manifest/run/{event.run_id}', safe='')}"
    )
    return urls


def _all_tasks(omics: Any, run_id: str) -> Any:
    """Every task of the run, following `nextToken` (a run can have hundreds)."""
    kwargs: dict[str, Any] = {"id": run_id, "maxResults": 100}
    while True:
        page = omics.list_run_tasks(**kwargs)
        yield from page.get("items", [])
        token = page.get("nextToken")
        if not token:
            return
        kwargs["startingToken"] = token


def _output_mapping(uri: str, s3: Any, warnings: list[str]) -> dict[str, Any] | None:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        warnings.append(f"runOutputUri {uri!r} is not an s3://bucket/prefix URI")
        return None
    bucket, prefix = uri[5:].split("/", 1)
    key = f"{prefix.rstrip('/')}/logs/outputs.json"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code in {"NoSuchKey", "404"}:
            warnings.append(f"s3://{bucket}/{key} not found")
        else:
            warnings.append(f"reading s3://{bucket}/{key} failed: {code}")
        return None
    except BotoCoreError as e:
        warnings.append(f"reading s3://{bucket}/{key} failed: {_aws_error(e)}")
        return None
    try:
        outputs = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        warnings.append(f"s3://{bucket}/{key} is not valid JSON")
        return None
    if not isinstance(outputs, dict):
        warnings.append(f"s3://{bucket}/{key} is not a JSON object")
        return None
    return {name: _output_value(value) for name, value in outputs.items()}


def _output_value(value: Any) -> Any:
    """CWL `{location: …}` → URI; a list of them → list of URIs; anything else → str (seed)."""
    if isinstance(value, dict) and "location" in value:
        return value["location"]
    if isinstance(value, list) and all(isinstance(i, dict) and "location" in i for i in value):
        return [i["location"] for i in value]
    return str(value)
