"""The deployed stacks as typed models, and the lookups every workflow shares.

- `load_stack` reads a stack with one `DescribeStacks` and returns a `ProcessorStack` or an
  `EdpStack` (told apart by their parameters, which every stack deployed from these templates
  has), with a named property for every output and parameter the tool reads.
- When an output is missing (a local AWS that does not compute outputs, a stack created by
  hand) the value is taken from the stack's resources (`ListStackResources`, read once, only
  then); when it cannot be found at all the error names the stack and the output.
- `resolve` is the one precedence rule: flag > environment > stack > default.
- `api_token` is the one API-token lookup: environment > secret given > the stack's secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.omics.config import (
    API_SERVER,
    AUTH_TOKEN,
    CLI_TOKEN_ENV,
    DATA_LAKE_BUCKET,
    DEFAULT_S3_PREFIX,
    S3_PREFIX,
)
from omics_edp_cli.omics.secrets import check_token, token_from_secret

T = TypeVar("T")

TOKEN_ENV = CLI_TOKEN_ENV
# The Lambda's own variable, honoured too so a function's environment can be reused as is.
LAMBDA_TOKEN_ENV = AUTH_TOKEN
SECRET_ENV = "ENV_SECRETS"


def resolve(flag: T | None, env: T | None = None, stack: T | Callable[[], T | None] | None = None,
            default: T | None = None) -> T | None:
    """flag > environment > stack > default. Empty values count as not given.

    `stack` may be a callable: it is called only when neither flag nor environment gave a value,
    so a command given every value by flags never reads the stack.
    """
    for value in (flag, env):
        if value is not None and value != "":
            return value
    value = stack() if callable(stack) else stack
    if value is not None and value != "":
        return value
    return default


@dataclass
class StackInfo:
    """What `DescribeStacks` says of one stack, plus its resources when an output is missing."""

    name: str
    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    stack_id: str = ""
    # Reads `ListStackResources` (logical id → physical id); only called on a missing output.
    list_resources: Callable[[], dict[str, str]] | None = field(default=None, repr=False, compare=False)
    _resources: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def output(self, key: str) -> str:
        """The output, or the same value from the stack's resources; `ConfigError` naming both."""
        value = self.outputs.get(key) or self._from_resources(key)
        if not value:
            raise ConfigError(
                f"stack {self.name} has no output {key}: was it deployed by omics-edp "
                "(omics-edp deploy processor|edp)?"
            )
        return value

    def optional_output(self, key: str) -> str | None:
        return self.outputs.get(key) or self._from_resources(key) or None

    def parameter(self, key: str) -> str:
        value = self.parameters.get(key)
        if value is None:
            raise ConfigError(f"stack {self.name} has no parameter {key}: was it deployed by omics-edp?")
        return value

    @property
    def region(self) -> str:
        parts = self.stack_id.split(":")
        return parts[3] if len(parts) > 5 else ""

    @property
    def account(self) -> str:
        parts = self.stack_id.split(":")
        return parts[4] if len(parts) > 5 else ""

    def _from_resources(self, key: str) -> str | None:
        derived = _DERIVED_OUTPUTS.get(key)
        if derived is None or self.list_resources is None:
            return None
        if self._resources is None:
            self._resources = self.list_resources()
        return derived(self)

    def resource(self, logical_id: str) -> str | None:
        if self._resources is None and self.list_resources is not None:
            self._resources = self.list_resources()
        return (self._resources or {}).get(logical_id) or None


def _arn(service: str, resource: str) -> Callable[[StackInfo, str], str | None]:
    def build(stack: StackInfo, name: str) -> str | None:
        if not (name and stack.region and stack.account):
            return None
        return f"arn:aws:{service}:{stack.region}:{stack.account}:{resource}{name}"
    return build


def _physical(logical_id: str) -> Callable[[StackInfo], str | None]:
    return lambda stack: stack.resource(logical_id)


def _queue_arn(logical_id: str) -> Callable[[StackInfo], str | None]:
    def build(stack: StackInfo) -> str | None:
        url = stack.resource(logical_id)
        return _arn("sqs", "")(stack, url.rstrip("/").rsplit("/", 1)[-1]) if url else None
    return build


def _function_arn(logical_id: str) -> Callable[[StackInfo], str | None]:
    return lambda stack: _arn("lambda", "function:")(stack, stack.resource(logical_id) or "")


# Output name → how to find the same value among the stack's resources (both templates).
_DERIVED_OUTPUTS: dict[str, Callable[[StackInfo], str | None]] = {
    "FunctionName": _physical("Function"),
    "FunctionArn": _function_arn("Function"),
    "DeadLetterQueueUrl": _physical("DeadLetterQueue"),
    "DeadLetterQueueArn": _queue_arn("DeadLetterQueue"),
    "RuleName": _physical("RunStatusRule"),
    "ApiSecretArn": _physical("ApiSecret"),
    "AlarmTopicArn": _physical("AlarmTopic"),
    "EventBusName": lambda stack: stack.resource("EventBus") or stack.parameters.get("EventBusName"),
    "IngestFunctionName": _physical("IngestFunction"),
    "FlushFunctionName": _physical("FlushFunction"),
    "IngestQueueUrl": _physical("IngestQueue"),
    "IngestDeadLetterQueueUrl": _physical("IngestDeadLetterQueue"),
    "FlushDeadLetterQueueUrl": _physical("FlushDeadLetterQueue"),
    "StateTableName": _physical("StateTable"),
    "TopicArn": _physical("PackageReadyTopic"),
    "DashboardName": _physical("Dashboard"),
    "PackagerFunctionName": _physical("Function"),
    "PackagerDeadLetterQueueUrl": _physical("DeadLetterQueue"),
    "PackagerRuleName": _physical("PackagerRule"),
    "PackagerTopicArn": _physical("Topic"),
}


class DeployedStack:
    """A stack deployed from one of this tool's templates. Subclasses name what the tool reads."""

    kind: ClassVar[str] = ""
    # A parameter only this kind's template has: how a stack's kind is told.
    marker_parameter: ClassVar[str] = ""

    def __init__(self, info: StackInfo):
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def status(self) -> str:
        return self.info.status

    def output(self, key: str) -> str:
        return self.info.output(key)

    def parameter(self, key: str) -> str:
        return self.info.parameter(key)

    def dead_letter_queues(self) -> list[tuple[str, str, str | None, str | None]]:
        """(label, queue URL, function to re-invoke, source queue URL) for every DLQ."""
        raise NotImplementedError


class ProcessorStack(DeployedStack):
    kind = "processor"
    marker_parameter = "ApiServer"

    @property
    def function_name(self) -> str:
        return self.output("FunctionName")

    @property
    def function_arn(self) -> str:
        return self.output("FunctionArn")

    @property
    def dead_letter_queue_url(self) -> str:
        return self.output("DeadLetterQueueUrl")

    @property
    def rule_name(self) -> str:
        return self.output("RuleName")

    @property
    def api_secret_arn(self) -> str | None:
        return self.info.optional_output("ApiSecretArn")

    @property
    def alarm_topic_arn(self) -> str | None:
        return self.info.optional_output("AlarmTopicArn")

    @property
    def api_server(self) -> str:
        return self.parameter("ApiServer")

    @property
    def data_lake_bucket(self) -> str:
        return self.parameter("DataLakeBucket")

    @property
    def bucket_prefix(self) -> str:
        return (self.info.parameters.get("BucketPrefix") or DEFAULT_S3_PREFIX).strip("/")

    @property
    def archive_kms_key_arn(self) -> str | None:
        return self.info.parameters.get("ArchiveKmsKeyArn") or None

    def dead_letter_queues(self) -> list[tuple[str, str, str | None, str | None]]:
        return [("processor", self.dead_letter_queue_url, self.function_name, None)]


class EdpStack(DeployedStack):
    kind = "edp"
    marker_parameter = "BucketName"

    @property
    def event_bus_name(self) -> str:
        return self.output("EventBusName")

    @property
    def ingest_function_name(self) -> str:
        return self.output("IngestFunctionName")

    @property
    def flush_function_name(self) -> str:
        return self.output("FlushFunctionName")

    @property
    def ingest_queue_url(self) -> str:
        return self.output("IngestQueueUrl")

    @property
    def ingest_dead_letter_queue_url(self) -> str:
        return self.output("IngestDeadLetterQueueUrl")

    @property
    def flush_dead_letter_queue_url(self) -> str:
        return self.output("FlushDeadLetterQueueUrl")

    @property
    def state_table_name(self) -> str:
        return self.output("StateTableName")

    @property
    def topic_arn(self) -> str | None:
        return self.info.optional_output("TopicArn")

    @property
    def dashboard_name(self) -> str | None:
        return self.info.optional_output("DashboardName")

    @property
    def manifest_location(self) -> str | None:
        """`s3://BUCKET/PREFIX/` of the batch manifests (stacks before manifests have none)."""
        return self.info.optional_output("ManifestLocation")

    @property
    def bucket_names(self) -> list[str]:
        """`BucketName` may list several buckets, comma-separated."""
        return [b.strip() for b in self.parameter("BucketName").split(",") if b.strip()]

    @property
    def parameters(self) -> dict[str, str]:
        return self.info.parameters

    def dead_letter_queues(self) -> list[tuple[str, str, str | None, str | None]]:
        return [
            ("ingest", self.ingest_dead_letter_queue_url, None, self.ingest_queue_url),
            ("flush", self.flush_dead_letter_queue_url, self.flush_function_name, None),
        ]


class PackagerStack(DeployedStack):
    kind = "packager"
    marker_parameter = "RegistryBucket"

    @property
    def function_name(self) -> str:
        return self.output("PackagerFunctionName")

    @property
    def dead_letter_queue_url(self) -> str:
        return self.output("PackagerDeadLetterQueueUrl")

    @property
    def rule_name(self) -> str:
        return self.output("PackagerRuleName")

    @property
    def topic_arn(self) -> str | None:
        return self.info.optional_output("PackagerTopicArn")

    @property
    def registry_bucket(self) -> str:
        return self.parameter("RegistryBucket")

    @property
    def quarantine_bucket(self) -> str | None:
        return self.info.parameters.get("QuarantineBucket") or None

    @property
    def event_bus_name(self) -> str:
        return self.parameter("EventBusName")

    @property
    def parameters(self) -> dict[str, str]:
        return self.info.parameters

    def dead_letter_queues(self) -> list[tuple[str, str, str | None, str | None]]:
        return [("packager", self.dead_letter_queue_url, self.function_name, None)]


STACK_KINDS: tuple[type[DeployedStack], ...] = (ProcessorStack, EdpStack, PackagerStack)

S = TypeVar("S", bound=DeployedStack)


def describe_stack(cloudformation: Any, name: str) -> StackInfo:
    """One `DescribeStacks`; `ConfigError` when the stack does not exist."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            raise ConfigError(f"stack {name} not found in this account/region") from None
        raise OperationError(f"reading stack {name} failed: {e}") from None
    stack = stacks[0]

    def list_resources() -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
                for item in page.get("StackResourceSummaries", []):
                    if item.get("PhysicalResourceId"):
                        found[item["LogicalResourceId"]] = item["PhysicalResourceId"]
        except (ClientError, BotoCoreError):
            return {}  # the outputs were all we had; the caller names the missing one
        return found

    return StackInfo(
        name=name,
        status=stack["StackStatus"],
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        stack_id=str(stack.get("StackId", "")),
        list_resources=list_resources,
    )


def stack_kind(info: StackInfo) -> type[DeployedStack]:
    """Which template a stack was deployed from; `ConfigError` for a stack of another tool."""
    for kind in STACK_KINDS:
        if kind.marker_parameter in info.parameters:
            return kind
    markers = ", ".join(f"{k.marker_parameter} ({k.kind})" for k in STACK_KINDS)
    raise ConfigError(
        f"stack {info.name} was not deployed by omics-edp: it has none of the parameters {markers}"
    )


def load_stack(clients: ClientFactory, name: str) -> DeployedStack:
    """The stack as its typed model, whichever kind it is."""
    info = describe_stack(clients.client("cloudformation"), name)
    return stack_kind(info)(info)


def load_typed(clients: ClientFactory, name: str, kind: type[S]) -> S:
    """The stack as `kind`; `ConfigError` when it is a stack of the other kind."""
    stack = load_stack(clients, name)
    if not isinstance(stack, kind):
        raise ConfigError(f"stack {name} is an omics-edp {stack.kind} stack; this command needs "
                          f"a {kind.kind} stack")
    return stack


def api_token(
    clients: ClientFactory,
    env: Mapping[str, str] | None = None,
    *,
    secret_id: str | None = None,
    stack: ProcessorStack | None = None,
) -> str | None:
    """The NGS360 API key: OMICS_EDP_API_TOKEN > AUTH_TOKEN > `secret_id` (--secret-id,
    ENV_SECRETS) > the stack's secret. None when none of them is there.

    Only the last two make an AWS call, and only when the environment has no token.
    """
    env = os.environ if env is None else env
    token = env_token(env)
    if token:
        return token
    secret = resolve(secret_id, env.get(SECRET_ENV), lambda: stack.api_secret_arn if stack else None)
    if secret:
        return token_from_secret(clients.client("secretsmanager"), secret)
    return None


def env_token(env: Mapping[str, str]) -> str | None:
    """The token from OMICS_EDP_API_TOKEN or AUTH_TOKEN, checked by the one token policy (no AWS
    call: commands call it before anything else, so a bad token exits 2 first)."""
    for name in (TOKEN_ENV, LAMBDA_TOKEN_ENV):
        if env.get(name):
            return check_token(env[name], f"environment variable {name}")
    return None


def token_configured(env: Mapping[str, str]) -> bool:
    """Whether the environment gives a token or a secret to read it from (no AWS call)."""
    return any(env.get(name) for name in (TOKEN_ENV, LAMBDA_TOKEN_ENV, SECRET_ENV))


def no_token_error(stack: DeployedStack | None = None) -> ConfigError:
    """The one line for a missing token, naming what was looked at."""
    if stack is not None:
        return ConfigError(f"no API token: set {TOKEN_ENV} (stack {stack.name} has no ApiSecretArn output)")
    return ConfigError(f"no API token: set {TOKEN_ENV}, or use --stack to read the stack's secret")


# -- the archive a command reads and the API it sends to (replay, reconcile) -----------------


@dataclass(frozen=True)
class ArchiveFlags:
    """Flag > environment, checked with no AWS call; the stack (if any) is read later."""

    stack: str | None
    bucket: str | None
    api_server: str | None


def archive_flags(env: Mapping[str, str], *, stack: str | None, bucket: str | None,
                  api_server: str | None, send: bool, api_missing: str) -> ArchiveFlags:
    """What a command needs before any AWS call: an archive, and when it sends (`send`), an API
    server and a token (an environment token checked by the one token policy)."""
    bucket = resolve(bucket, env.get(DATA_LAKE_BUCKET))
    api_server = resolve(api_server, env.get(API_SERVER))
    if not (bucket or stack):
        raise ConfigError("--bucket or --stack required (or DATA_LAKE_BUCKET)")
    if send:
        if not (api_server or stack):
            raise ConfigError(api_missing)
        if not (stack or token_configured(env)):
            raise no_token_error()
        env_token(env)  # a bad token in the environment is refused before any AWS call
    return ArchiveFlags(stack, bucket, api_server)


@dataclass(frozen=True)
class ArchiveTarget:
    bucket: str
    prefix: str
    api_server: str | None
    token: str | None = field(repr=False)
    stack: ProcessorStack | None = None


def archive_target(clients: ClientFactory, env: Mapping[str, str], flags: ArchiveFlags,
                   prefix: str | None, *, send: bool) -> ArchiveTarget:
    """The flags completed from the processor stack (its outputs, parameters and secret)."""
    stack = load_typed(clients, flags.stack, ProcessorStack) if flags.stack else None
    bucket = resolve(flags.bucket, None, lambda: stack.data_lake_bucket if stack else None)
    api_server = resolve(flags.api_server, None, lambda: stack.api_server if stack else None)
    token = None
    if send:
        token = api_token(clients, env, stack=stack)
        if not token:
            raise no_token_error(stack)
    prefix = resolve(prefix, env.get(S3_PREFIX), lambda: stack.bucket_prefix if stack else None,
                     DEFAULT_S3_PREFIX)
    return ArchiveTarget(str(bucket), str(prefix).strip("/"), api_server, token, stack)
