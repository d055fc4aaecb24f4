"""The templates' parameters, and checking a parameters file against them before any AWS call."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from omics_edp_cli.errors import ConfigError

TEMPLATES = {"processor": "omics-run-event-processor.yaml", "edp": "edp.yaml"}
# Filled in by deploy itself, never required from the operator.
CODE_PARAMETERS = ("CodeS3Bucket", "CodeS3Key")
TOKEN_PARAMETER = "ApiServerAuthToken"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Template:
    kind: str
    body: str
    parameters: dict[str, dict[str, Any]]

    def document(self) -> dict[str, Any]:
        """The whole template, short tags read as their plain values (`!Sub "x"` is "x")."""
        return dict(yaml.load(self.body, Loader=_CfnLoader))

    def no_echo(self) -> set[str]:
        return {k for k, v in self.parameters.items() if str(v.get("NoEcho", "")).lower() == "true"}

    def required(self) -> list[str]:
        return [k for k, v in self.parameters.items() if "Default" not in v and k not in CODE_PARAMETERS]


def load_template(kind: str) -> Template:
    if kind not in TEMPLATES:
        raise ConfigError(f"unknown stack kind {kind!r}: choose one of {', '.join(TEMPLATES)}")
    body = resources.files("omics_edp_cli.cloudformation").joinpath(TEMPLATES[kind]).read_text()
    document = yaml.load(body, Loader=_CfnLoader)
    return Template(kind, body, dict(document.get("Parameters") or {}))


def read_parameters_file(path: Path) -> dict[str, str]:
    """A CloudFormation parameters file: `[{"ParameterKey", "ParameterValue"}]` or `{key: value}`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (is it the parameters file?)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
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


def _as_text(path: Path, key: str, value: Any) -> str:
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
            raise ConfigError(f"--parameter {pair!r}: expected Key=Value")
        values[key.strip()] = value
    return values


def validate(template: Template, values: dict[str, str], source: str,
             optional: tuple[str, ...] = ()) -> None:
    """One `ConfigError` line naming the source and the key for the first problem found.

    `optional` names required parameters that may still come from elsewhere (the API token
    from the environment or the deployed stack).
    """
    for key in values:
        if key not in template.parameters:
            known = ", ".join(sorted(template.parameters))
            raise ConfigError(f"{source}: unknown parameter {key!r} for the {template.kind} "
                              f"template (known: {known})")
    for key in template.required():
        if key not in values and key not in optional:
            raise ConfigError(f"{source}: missing required parameter {key!r} "
                              f"(add it, or pass --parameter {key}=VALUE)")
    for key, value in values.items():
        problem = _check(template.parameters[key], value)
        if problem:
            shown = "****" if key in template.no_echo() else repr(value)
            raise ConfigError(f"{source}: {key}={shown} {problem}")


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
        return f"does not match {spec.get('ConstraintDescription') or pattern}"
    return None
