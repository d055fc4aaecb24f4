"""Finding a deployed stack's buckets, queues, tables and settings from its name (`--stack`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from omics_edp_cli.errors import ConfigError

# Output names both templates export, so commands can find resources by stack name.
PROCESSOR_OUTPUTS = (
    "FunctionName", "FunctionArn", "DeadLetterQueueUrl", "DeadLetterQueueArn", "RuleName",
    "ApiSecretArn",
)
EDP_OUTPUTS = (
    "EventBusName", "IngestFunctionName", "FlushFunctionName", "IngestQueueUrl",
    "IngestDeadLetterQueueUrl", "FlushDeadLetterQueueUrl", "StateTableName", "TopicArn",
    "DashboardName",
)


@dataclass(frozen=True)
class StackInfo:
    name: str
    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise ConfigError(
                f"stack {self.name!r} has no output {key!r}: was it deployed by omics-edp?"
            ) from None

    def parameter(self, key: str) -> str:
        try:
            return self.parameters[key]
        except KeyError:
            raise ConfigError(f"stack {self.name!r} has no parameter {key!r}") from None


def describe_stack(cloudformation: Any, name: str) -> StackInfo:
    """Parameters and outputs of a stack; `ConfigError` if it does not exist."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            raise ConfigError(f"stack {name!r} not found in this account/region") from None
        raise
    stack = stacks[0]
    return StackInfo(
        name=name,
        status=stack["StackStatus"],
        parameters={
            p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
        },
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    )
