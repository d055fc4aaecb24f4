"""`omics-edp deploy`: package, upload by content hash, change set, execute, follow events.

Everything here reports through callbacks and returns data; the CLI renders it. The local
demo calls `deploy_stack` directly to deploy both stacks into moto.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.omics.secrets import check_token, redact, remember
from omics_edp_cli.ops.deploy import packaging
from omics_edp_cli.ops.deploy.cloudformation import CloudFormation
from omics_edp_cli.ops.deploy.parameters import TOKEN_PARAMETER, Template, load_template, validate
from omics_edp_cli.ops.deployment import TOKEN_ENV

DEFAULT_STACK_NAMES = {"processor": "omics-run-event-processor", "edp": "omics-edp",
                       "packager": "omics-edp-packager"}
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
TERMINAL_FAILED = {
    "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE", "DELETE_FAILED", "IMPORT_ROLLBACK_COMPLETE",
    "IMPORT_ROLLBACK_FAILED", "UPDATE_FAILED",
}
CANCELLED = ("Resource creation cancelled", "Resource update cancelled", "Resource deletion cancelled")
FOLLOW_LIMIT_SECONDS = 3 * 3600.0  # beyond CloudFormation's own resource timeouts
# Outside the archive prefix (BucketPrefix/*), the only place the processor's role may write:
# a function able to overwrite its own next package could ship any code.
DEFAULT_CODE_PREFIX = "omics-edp/lambda"


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy: the file's `parameters`, then the token from the environment, then `overrides`."""

    kind: str
    parameters: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)  # `--parameter Key=Value`
    stack_name: str | None = None
    code_bucket: str | None = None
    code_prefix: str | None = None
    assume_yes: bool = False
    no_execute: bool = False
    termination_protection: bool = False
    source: str = "parameters"  # named in error messages (the parameters file)
    source_root: Path | None = None  # package sources (tests build from a modified copy)
    # The Lambda package, built already by `packaging.build(kind)` (the demo builds both while
    # its local AWS starts); None builds it here.
    package: packaging.LambdaPackage | None = None

    @property
    def name(self) -> str:
        return self.stack_name or DEFAULT_STACK_NAMES[self.kind]


@dataclass
class DeployResult:
    stack_name: str
    status: str
    code_key: str
    uploaded: bool = False
    up_to_date: bool = False
    executed: bool = False
    changes: list[dict[str, str]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    change_set: str | None = None
    # Deployed, but `--termination-protection` could not be turned on: why (the deploy fails).
    protection_error: str | None = None
    protection_requested: bool = False

    @property
    def ok(self) -> bool:
        if self.protection_error:
            return False
        return self.up_to_date or not self.executed or self.status in TERMINAL_OK


@dataclass
class DeployHooks:
    """How the workflow talks to its caller (the CLI renders; the demo stays quiet)."""

    info: Callable[[str], None] = lambda message: None
    event: Callable[[dict[str, str]], None] = lambda event: None
    plan: Callable[[list[dict[str, str]]], None] = lambda changes: None
    confirm: Callable[[str], bool] = lambda question: False
    sleep: Callable[[float], None] = time.sleep
    poll_seconds: float = 2.0
    heartbeat_seconds: float = 30.0  # a "still ..." line when no event came for this long


def prepare(request: DeployRequest, env: Mapping[str, str] | None = None) -> tuple[Template, dict[str, str]]:
    """Validate everything that needs no AWS call; return the template and the parameters."""
    env = os.environ if env is None else env
    template = load_template(request.kind)
    values = dict(request.parameters)
    origins: dict[str, str] = {}
    if TOKEN_PARAMETER in template.parameters and env.get(TOKEN_ENV):
        values[TOKEN_PARAMETER] = env[TOKEN_ENV]  # beats the file; keeps the key off the command line
        origins[TOKEN_PARAMETER] = TOKEN_ENV
    values.update(request.overrides)
    origins.update(dict.fromkeys(request.overrides, "--parameter"))
    for name in template.no_echo():
        remember(values.get(name))  # masked in every message from here on
    if values.get(TOKEN_PARAMETER):
        # The one token policy, before the template's own pattern gives a vaguer message.
        source = origins.get(TOKEN_PARAMETER, request.source)
        values[TOKEN_PARAMETER] = check_token(values[TOKEN_PARAMETER], f"{source}: {TOKEN_PARAMETER}")
    # The token may also be kept from the deployed stack (checked once it is described).
    optional = tuple(sorted(template.no_echo()))
    validate(template, values, request.source, optional=optional, origins=origins)
    if request.kind == "edp" and not request.code_bucket:
        raise ConfigError("--code-bucket is required for edp (uploading into BucketName would "
                          "feed the batcher its own code)")
    if request.kind == "packager" and not request.code_bucket:
        raise ConfigError("--code-bucket is required for packager (a bucket for code, not the registry)")
    return template, values


def default_code_prefix(kind: str, values: Mapping[str, str]) -> str:
    """Where packages go when `--code-prefix` is not given (both kinds): `omics-edp/lambda`."""
    return DEFAULT_CODE_PREFIX


def check_code_location(kind: str, bucket: str, prefix: str, values: Mapping[str, str]) -> None:
    """`ConfigError` when the package would sit where the processor's role may write."""
    if kind != "processor" or bucket != values.get("DataLakeBucket"):
        return
    archive = (values.get("BucketPrefix") or "omics-run-events").strip("/") + "/"
    if (prefix.strip("/") + "/").startswith(archive):
        raise ConfigError(f"--code-prefix {prefix} is inside BucketPrefix {archive}, which the "
                          "function's role may write: choose a prefix outside it (default "
                          f"{DEFAULT_CODE_PREFIX})")


def deploy_stack(clients: ClientFactory, request: DeployRequest, hooks: DeployHooks | None = None,
                 env: Mapping[str, str] | None = None, wheel_cache: Path | None = None) -> DeployResult:
    hooks = hooks or DeployHooks()
    template, values = prepare(request, env)
    bucket = request.code_bucket or values.get("DataLakeBucket")
    prefix = request.code_prefix if request.code_prefix is not None else default_code_prefix(
        request.kind, values)
    if not bucket:
        raise ConfigError("--code-bucket is required (no DataLakeBucket to default to)")
    check_code_location(request.kind, bucket, prefix, values)

    package = request.package or packaging.build(request.kind, request.source_root, wheel_cache=wheel_cache)
    if package.kind != request.kind:
        raise ConfigError(f"a {package.kind} package cannot be deployed as a {request.kind} stack")
    key = package.s3_key(prefix)
    cfn = CloudFormation(clients.client("cloudformation"), request.name, redact=redact,
                         poll_seconds=hooks.poll_seconds)
    existing = _existing_stack(cfn, request, template, values, hooks)

    result = DeployResult(request.name, existing["StackStatus"] if existing else "NEW", key,
                          protection_requested=request.termination_protection)
    result.uploaded = _upload(clients.client("s3"), bucket, key, package.data, hooks.info)
    hooks.info(f"package {package.sha256[:12]} ({len(package.data):,} bytes) "
               f"{'uploaded to' if result.uploaded else 'already at'} s3://{bucket}/{key}")
    values.update({"CodeS3Bucket": bucket, "CodeS3Key": key})
    described = _change_set(cfn, request, template, values, update=existing is not None)
    if described is None:
        result.up_to_date = True
        result.outputs = cfn.outputs()
        return result
    change_set = str(described["ChangeSetName"])
    result.changes = [_change_row(c) for c in described.get("Changes", [])]
    result.change_set = change_set
    hooks.plan(result.changes)
    if request.no_execute:
        return result
    if not request.assume_yes and not hooks.confirm(f"Execute these changes on {request.name}?"):
        cfn.delete_change_set(change_set)
        raise OperationError("deploy cancelled; the change set was deleted")
    # CloudFormation's own clock: this change set's events come after it was created, a
    # previous deploy's before, whatever the local clock says.
    started = described.get("CreationTime") or datetime.now(UTC)
    cfn.execute_change_set(change_set)
    result.executed = True
    result.status, events = _follow(cfn, started, hooks, redact)
    if result.status in TERMINAL_OK:
        result.outputs = cfn.outputs()
        if request.termination_protection:
            try:
                cfn.protect()
                hooks.info("termination protection on")
            except OperationError as e:
                result.protection_error = str(e)
    else:
        # Reasons can quote parameter values: mask NoEcho ones here too, as in the events.
        result.failures = [{**f, "reason": redact(f["reason"])} for f in first_failures(events)]
    return result


def _existing_stack(cfn: CloudFormation, request: DeployRequest, template: Template,
                    values: dict[str, str], hooks: DeployHooks) -> dict[str, Any] | None:
    """The stack to update, or None to create one (deleting a failed first create with --yes).

    A NoEcho value not given is kept from the stack (`values[name] = ""` marks it), which a
    stack to create does not have: that is refused before anything is deleted.
    """
    existing = cfn.describe()
    if existing is not None and existing["StackStatus"] == "REVIEW_IN_PROGRESS":
        # Only a change set was ever created (--no-execute, or "no"): nothing to update yet.
        existing = None
    failed_create = existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE"
    if existing is not None and existing["StackStatus"].endswith("_IN_PROGRESS"):
        raise OperationError(f"stack {request.name} is busy ({existing['StackStatus']}); "
                             "wait for it to finish and run deploy again")
    for name in sorted(template.no_echo()):
        if name not in values:
            if existing is None or failed_create:
                raise ConfigError(f"{request.source}: missing required parameter {name} "
                                  f"(set {TOKEN_ENV} or pass --parameter {name}=VALUE)")
            values[name] = ""  # marker: UsePreviousValue below
    if failed_create:
        _recreate_after_failed_create(cfn, request, hooks)
        return None
    return existing



def _change_set(cfn: CloudFormation, request: DeployRequest, template: Template,
                values: dict[str, str], *, update: bool) -> dict[str, Any] | None:
    """Create the change set and wait for it; None when there is nothing to change."""
    name = f"omics-edp-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    parameters = [
        {"ParameterKey": k, "UsePreviousValue": True} if (k in template.no_echo() and v == "")
        else {"ParameterKey": k, "ParameterValue": v}
        for k, v in sorted(values.items())
    ]
    created = cfn.create_change_set(
        name, TemplateBody=template.body, Parameters=parameters, Capabilities=["CAPABILITY_IAM"],
        ChangeSetType="UPDATE" if update else "CREATE", Description=f"omics-edp deploy {request.kind}",
    )
    if not created:
        return None
    described = cfn.wait_for_change_set(name)
    if described["Status"] == "FAILED":
        cfn.delete_change_set(name)
        if cfn.no_changes(described):
            return None
        raise OperationError(f"the change set failed: {cfn.redact(described.get('StatusReason', ''))}")
    described["ChangeSetName"] = name
    return described


def _recreate_after_failed_create(cfn: CloudFormation, request: DeployRequest, hooks: DeployHooks) -> None:
    explanation = (f"stack {request.name} is in ROLLBACK_COMPLETE: its first create failed and "
                   "CloudFormation cannot update it")
    if not request.assume_yes:
        raise OperationError(f"{explanation}; run again with --yes to delete and re-create it")
    hooks.info(f"{explanation}; deleting it to create it again")
    cfn.delete_and_wait()


def package_checksum(data: bytes) -> str:
    """The S3 `ChecksumSHA256` of an object with these bytes (base64 of the SHA-256 digest)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _upload(s3: Any, bucket: str, key: str, data: bytes,
            info: Callable[[str], None] = lambda message: None) -> bool:
    """Upload with a SHA-256 checksum unless the object at that content-hash key carries the same
    checksum already (S3 computed it from the stored bytes). True when uploaded."""
    checksum = package_checksum(data)
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise OperationError(f"checking s3://{bucket}/{key} failed: {e}") from None
    else:
        found = head.get("ChecksumSHA256")
        if found == checksum:
            return False
        # Something else sits at the key of this content: never trust it, replace it.
        info(f"s3://{bucket}/{key} exists but its SHA-256 checksum "
             f"{'is missing' if not found else 'differs'}: uploading the package again")
    try:
        # S3 refuses the upload if the bytes it receives do not match the checksum.
        s3.put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="AES256",
                      ContentType="application/zip", ChecksumAlgorithm="SHA256",
                      ChecksumSHA256=checksum)
    except ClientError as e:
        raise OperationError(f"uploading the package to s3://{bucket}/{key} failed: {e}") from None
    return True


def _change_row(change: dict[str, Any]) -> dict[str, str]:
    rc = change.get("ResourceChange", {})
    replacement = str(rc.get("Replacement") or "")
    return {
        "action": str(rc.get("Action", "")),
        "resource": str(rc.get("LogicalResourceId", "")),
        "type": str(rc.get("ResourceType", "")),
        "replacement": {"True": "REPLACED", "Conditional": "maybe replaced"}.get(replacement, ""),
    }


def _follow(cfn: CloudFormation, since: datetime, hooks: DeployHooks,
            redact: Callable[[str], str]) -> tuple[str, list[dict[str, Any]]]:
    """Report each new stack event until the stack reaches a terminal status."""
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    last_output = started = time.monotonic()
    while True:
        fresh = [e for e in cfn.events_since(since) if e["EventId"] not in seen]
        # Pages come newest first; reversed, a stable sort keeps same-millisecond events in order.
        for event in sorted(reversed(fresh), key=lambda e: e["Timestamp"]):
            seen.add(event["EventId"])
            events.append(event)
            hooks.event({
                "time": event["Timestamp"].strftime("%H:%M:%S"),
                "resource": event.get("LogicalResourceId", ""),
                "type": event.get("ResourceType", ""),
                "status": event.get("ResourceStatus", ""),
                "reason": redact(event.get("ResourceStatusReason", "") or ""),
            })
            last_output = time.monotonic()
        status = cfn.describe()
        current = status["StackStatus"] if status else "DELETE_COMPLETE"
        if current in TERMINAL_OK or current in TERMINAL_FAILED:
            return current, events
        if time.monotonic() - started > FOLLOW_LIMIT_SECONDS:
            raise OperationError(f"stack {cfn.stack} is still {current} after "
                                 f"{FOLLOW_LIMIT_SECONDS / 3600:.0f} hours; stopped following it "
                                 "(the operation goes on in CloudFormation)")
        if not fresh and time.monotonic() - last_output >= hooks.heartbeat_seconds:
            hooks.info(f"still {current} ...")
            last_output = time.monotonic()
        hooks.sleep(hooks.poll_seconds)


def first_failures(events: list[dict[str, Any]], limit: int = 3) -> list[dict[str, str]]:
    """The resources that failed first and why: not the cascade of cancellations after them."""
    failed = [
        e for e in sorted(events, key=lambda e: e["Timestamp"])
        if str(e.get("ResourceStatus", "")).endswith("_FAILED")
        and e.get("LogicalResourceId") != e.get("StackName")
        and not any(c in str(e.get("ResourceStatusReason", "")) for c in CANCELLED)
    ]
    return [
        {"resource": str(e.get("LogicalResourceId")), "type": str(e.get("ResourceType")),
         "status": str(e.get("ResourceStatus")), "reason": str(e.get("ResourceStatusReason", ""))}
        for e in failed[:limit]
    ]
