"""The templates' parameters, and checking a parameters file against them before any AWS call."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.inputs import load_json_file

TEMPLATES = {"processor": "omics-run-event-processor.yaml", "edp": "edp.yaml", "packager": "packager.yaml"}
# Filled in by deploy itself, never required from the operator.
CODE_PARAMETERS = ("CodeS3Bucket", "CodeS3Key")
TOKEN_PARAMETER = "ApiServerAuthToken"


@cache
def _cfn_loader() -> Any:
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as plain values, by libyaml's
    parser when PyYAML has it (the same documents, ~10x faster than the pure-Python one).
    Built on first use: `simulate-batch` imports this module but reads a template only for a
    parameters file, and yaml is ~10 ms of start-up."""
    import yaml

    class CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def tag(loader: Any, suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    CfnLoader.add_multi_constructor("!", tag)
    return CfnLoader


def load_cfn_yaml(body: str) -> Any:
    """A CloudFormation template's YAML as plain values (`!Sub "x"` is "x")."""
    import yaml

    return yaml.load(body, Loader=_cfn_loader())  # a safe loader, short tags added


@dataclass(frozen=True)
class Template:
    kind: str
    body: str
    parameters: dict[str, dict[str, Any]]

    def document(self) -> dict[str, Any]:
        """The whole template, short tags read as their plain values (`!Sub "x"` is "x")."""
        return dict(load_cfn_yaml(self.body))

    def no_echo(self) -> set[str]:
        return {k for k, v in self.parameters.items() if str(v.get("NoEcho", "")).lower() == "true"}

    def required(self) -> list[str]:
        return [k for k, v in self.parameters.items() if "Default" not in v and k not in CODE_PARAMETERS]


def load_template(kind: str) -> Template:
    if kind not in TEMPLATES:
        raise ConfigError(f"unknown stack kind {kind}: choose one of {', '.join(TEMPLATES)}")
    body = resources.files("omics_edp_cli.cloudformation").joinpath(TEMPLATES[kind]).read_text()
    document = load_cfn_yaml(body)
    return Template(kind, body, dict(document.get("Parameters") or {}))


def read_parameters_file(path: str | Path) -> dict[str, str]:
    """A CloudFormation parameters file (`-` is stdin), in any of the shapes the AWS CLI and the
    console use: `[{"ParameterKey", "ParameterValue"}]`, `{"Parameters": [...]}` or `{key: value}`.

    The one reader for `deploy --parameters` and `simulate-batch --parameters`.
    """
    data = load_json_file(path)
    if isinstance(data, dict) and isinstance(data.get("Parameters"), list):
        data = data["Parameters"]
    if isinstance(data, dict):
        return {str(k): _as_text(path, str(k), v) for k, v in data.items()}
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of {{ParameterKey, ParameterValue}} objects")
    values: dict[str, str] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "ParameterKey" not in item:
            raise ConfigError(f"{path}: item {i + 1} has no ParameterKey")
        key = str(item["ParameterKey"])
        if "ParameterValue" not in item:
            raise ConfigError(f"{path}: {key} has no ParameterValue")
        values[key] = _as_text(path, key, item["ParameterValue"])
    return values


def _as_text(path: str | Path, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"{path}: {key} must be a string or a number")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--parameter Key=Value` (repeatable)."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--parameter {pair}: expected Key=Value")
        values[key.strip()] = value
    return values


def validate(template: Template, values: dict[str, str], source: str,
             optional: tuple[str, ...] = (), origins: Mapping[str, str] | None = None) -> None:
    """One `ConfigError` line naming where the value came from and the key, for the first problem.

    `source` is where values come from by default (the parameters file); `origins` names the
    other places per key (`--parameter`, the token's environment variable). `optional` names
    required parameters that may still come from elsewhere (the API token from the deployed
    stack).
    """
    origins = origins or {}
    for key in values:
        if key not in template.parameters:
            known = ", ".join(sorted(template.parameters))
            raise ConfigError(f"{origins.get(key, source)}: unknown parameter {key} for the "
                              f"{template.kind} template (known: {known})")
    for key in template.required():
        if key not in values and key not in optional:
            raise ConfigError(f"{source}: missing required parameter {key} "
                              f"(add it, or pass --parameter {key}=VALUE)")
    for key, value in values.items():
        problem = _check(template.parameters[key], value)
        if problem:
            shown = "****" if key in template.no_echo() else json.dumps(value)
            raise ConfigError(f"{origins.get(key, source)}: {key}={shown} {problem}")


def _check(spec: dict[str, Any], value: str) -> str | None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        return f"is not one of: {', '.join(str(a) for a in allowed)}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "is not a number"
        if not math.isfinite(number):
            return "is not a finite number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"is below the minimum {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"is above the maximum {spec['MaxValue']}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"is shorter than {spec['MinLength']} characters"
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        described = spec.get("ConstraintDescription")
        return f"is not allowed: {described}" if described else f"does not match {pattern}"
    return None
