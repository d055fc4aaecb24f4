"""Enrichment from HealthOmics and S3.

The run's tags (`GetRun`) decide where the payload goes, so a failure to read them that may
pass (throttling, 5xx, timeout, an HTML page from a proxy) raises `EnrichmentError`: the
invocation fails and Lambda retries it. A run that does not exist has no tags (the payload is
archived and skipped). The optional parts (task log URLs, outputs.json) stay non-fatal: a
transient failure there is logged and named in `gaps`, which the archive record keeps so that
`reconcile` can fill them in later.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.errors import EnrichmentError
from omics_edp_cli.omics.event import RunStatusEvent

log = logging.getLogger(__name__)

FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
WES_RUN_ID_TAG = "WESRunId"
CALLBACK_URL_TAG = "callback_url"
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NotFoundException"})
# Names of the optional parts a transient failure left out (the archive's `enrichment_gaps`).
GAP_TASK_LOGS = "task_logs"
GAP_OUTPUTS = "output_mapping"
_AWS_ERRORS = (BotoCoreError, ClientError)


@dataclass
class Enrichment:
    tags: dict[str, str] = field(default_factory=dict)
    log_urls: dict[str, Any] | None = None
    output_mapping: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    run_found: bool = True

    @property
    def wes_run_id(self) -> str | None:
        return self.tags.get(WES_RUN_ID_TAG)

    @property
    def callback_url(self) -> str | None:
        return self.tags.get(CALLBACK_URL_TAG) or None


def get_run(omics: Any, run_id: str) -> dict[str, Any] | None:
    """`GetRun`, or None when the run does not exist; `EnrichmentError` for anything else."""
    try:
        run = omics.get_run(id=run_id)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in NOT_FOUND_CODES:
            return None
        raise EnrichmentError(f"GetRun {run_id} failed: {_describe(e)}") from None
    except BotoCoreError as e:
        raise EnrichmentError(f"GetRun {run_id} failed: {_describe(e)}") from None
    if not isinstance(run, dict) or "id" not in run:
        # botocore hands a body it cannot parse back as {"message": body}: a proxy's HTML page.
        body = str((run or {}).get("message", "")) if isinstance(run, dict) else ""
        raise EnrichmentError(f"GetRun {run_id} answered without a run: {_describe_body(body)}")
    return run


def enrich(event: RunStatusEvent, omics: Any, s3: Any) -> Enrichment:
    """Run tags for every event; log URLs when finished; outputs when COMPLETED.

    Raises `EnrichmentError` when the tags cannot be read for a reason that may pass.
    """
    result = Enrichment()
    found = get_run(omics, event.run_id)
    run: dict[str, Any] = found or {}
    if found is None:
        result.run_found = False
        result.warnings.append(f"run {event.run_id} not found in HealthOmics")
    result.tags = dict(run.get("tags") or {})
    if event.status in FINISHED and found is not None:
        result.log_urls = _log_urls(event, run, omics, result.warnings, result.gaps)
    if event.status == "COMPLETED":
        uri = event.detail.get("runOutputUri") or run.get("runOutputUri")
        if uri:
            result.output_mapping = _output_mapping(uri, s3, result.warnings, result.gaps)
    for warning in result.warnings:
        log.warning("run %s: %s", event.run_id, warning)
    return result


def console_log_url(region: str, log_group: str, suffix: str = "") -> str:
    """The CloudWatch console URL of a log group (and a `/log-events/STREAM` suffix)."""
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{quote(log_group, safe='')}{suffix}"
    )


def _describe(error: Exception) -> str:
    text = str(error)
    return _describe_body(text) if _looks_like_html(text) else text[:300]


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith("<") or "<html" in text[:2000].lower() or "<!doctype" in head


def _describe_body(body: str) -> str:
    if _looks_like_html(body):
        return ("an HTML page, not the HealthOmics API: check AWS_ENDPOINT_URL_OMICS, "
                "a proxy, or the region")
    return f"unexpected answer {body[:200]!r}"


def _log_urls(
    event: RunStatusEvent, run: dict[str, Any], omics: Any, warnings: list[str], gaps: list[str]
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
        warnings.append(f"ListRunTasks failed: {_describe(e)}")
        gaps.append(GAP_TASK_LOGS)
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


def _output_mapping(uri: str, s3: Any, warnings: list[str], gaps: list[str]) -> dict[str, Any] | None:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        warnings.append(f"runOutputUri {uri!r} is not an s3://bucket/prefix URI")
        return None
    bucket, prefix = uri[5:].split("/", 1)
    key = f"{prefix.rstrip('/')}/logs/outputs.json"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code in {"NoSuchKey", "NoSuchBucket", "404"}:
            warnings.append(f"s3://{bucket}/{key} not found")
        else:
            warnings.append(f"reading s3://{bucket}/{key} failed: {code}")
            gaps.append(GAP_OUTPUTS)
        return None
    except BotoCoreError as e:
        warnings.append(f"reading s3://{bucket}/{key} failed: {e}")
        gaps.append(GAP_OUTPUTS)
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
