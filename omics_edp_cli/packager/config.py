"""The packager's settings and environment variable names, read and checked in one place."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omics_edp_cli.errors import ConfigError

# Names the CloudFormation template sets on the function (docs/CONTRACTS.md).
REGISTRY_BUCKET = "REGISTRY_BUCKET"
QUARANTINE_BUCKET = "QUARANTINE_BUCKET"
WORKFLOW_NAME = "WORKFLOW_NAME"
TOPIC_ARN = "TOPIC_ARN"
CATALOG_URL = "QUILT_CATALOG_URL"
NAME_DEPTH = "PACKAGE_NAME_DEPTH"
NAME_NAMESPACE = "PACKAGE_NAMESPACE"
README_TEMPLATE = "README_TEMPLATE"
QUILTIGNORE = "QUILTIGNORE"
METADATA_TEMPLATE = "METADATA_TEMPLATE"
FILE_GATEWAY_SHARE_ARN = "FILE_GATEWAY_SHARE_ARN"
SSE_KMS_KEY_ID = "SSE_KMS_KEY_ID"
VERBOSE_LOGGING = "VERBOSE_LOGGING"

DEFAULT_DEPTH = 2
MAX_DEPTH = 50
# `${name}` placeholders, filled with the batch's facts (string.Template syntax).
DEFAULT_README = (
    "# ${package}\n\n"
    "Packaged from `s3://${bucket}/${prefix}` by the omics-edp packager: ${count} object(s) of EDP "
    "batch `${batch_id}`, written between ${first_event_at} and ${last_event_at}.\n"
)
DEFAULT_QUILTIGNORE = ".DS_Store\n*.tmp\n*.part\n"
DEFAULT_METADATA: dict[str, Any] = {"edp": {
    "bucket": "${bucket}", "prefix": "${prefix}", "count": "${count}", "batch_id": "${batch_id}",
    "first_event_at": "${first_event_at}", "last_event_at": "${last_event_at}", "date": "${date}",
}}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def bucket_name(value: str, what: str) -> str:
    """`bucket` or `s3://bucket[/]` → `bucket`; `ConfigError` naming `what` otherwise."""
    name = value.strip().removeprefix("s3://").rstrip("/")
    if not _BUCKET.fullmatch(name):
        raise ConfigError(f"{what}: {value!r} is not an S3 bucket (s3://BUCKET)")
    return name


@dataclass(frozen=True)
class PackagerSettings:
    """Where packages go and how they are named, documented and described."""

    registry: str
    quarantine: str | None = None
    workflow: str | None = None
    topic_arn: str | None = None
    catalog_url: str | None = None
    name_depth: int = DEFAULT_DEPTH
    namespace: str | None = None
    readme_template: str = DEFAULT_README
    quiltignore: str = DEFAULT_QUILTIGNORE
    metadata_template: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_METADATA))
    file_gateway_share_arn: str | None = None
    kms_key_id: str | None = None
    verbose: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> PackagerSettings:
        """Settings from the environment; `overrides` (not None) win. One `ConfigError` on a bad value."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "registry": env.get(REGISTRY_BUCKET) or None,
            "quarantine": env.get(QUARANTINE_BUCKET) or None,
            "workflow": env.get(WORKFLOW_NAME) or None,
            "topic_arn": env.get(TOPIC_ARN) or None,
            "catalog_url": env.get(CATALOG_URL) or None,
            "name_depth": env.get(NAME_DEPTH) or DEFAULT_DEPTH,
            "namespace": env.get(NAME_NAMESPACE) or None,
            "readme_template": env.get(README_TEMPLATE) or DEFAULT_README,
            "quiltignore": env.get(QUILTIGNORE) or DEFAULT_QUILTIGNORE,
            "metadata_template": env.get(METADATA_TEMPLATE) or None,
            "file_gateway_share_arn": env.get(FILE_GATEWAY_SHARE_ARN) or None,
            "kms_key_id": env.get(SSE_KMS_KEY_ID) or None,
            "verbose": (env.get(VERBOSE_LOGGING) or "false").lower() == "true",
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.checked(**values)

    @classmethod
    def checked(cls, **values: Any) -> PackagerSettings:
        if not values.get("registry"):
            raise ConfigError(f"no registry bucket: set {REGISTRY_BUCKET} (or --registry s3://BUCKET)")
        values["registry"] = bucket_name(str(values["registry"]), "registry")
        if values.get("quarantine"):
            values["quarantine"] = bucket_name(str(values["quarantine"]), "quarantine")
            if values["quarantine"] == values["registry"]:
                raise ConfigError("the quarantine bucket must differ from the registry bucket")
        try:
            depth = int(str(values.get("name_depth", DEFAULT_DEPTH)))
        except ValueError:
            raise ConfigError(f"{NAME_DEPTH}: {values.get('name_depth')!r} is not a whole number") from None
        if not 1 <= depth <= MAX_DEPTH:
            raise ConfigError(f"{NAME_DEPTH}: {depth} is outside 1..{MAX_DEPTH}")
        values["name_depth"] = depth
        namespace = values.get("namespace")
        if namespace and not re.fullmatch(r"[\w-]+", namespace):
            raise ConfigError(f"{NAME_NAMESPACE}: {namespace!r} may hold only letters, digits, _ and -")
        values["metadata_template"] = _metadata_template(values.get("metadata_template"))
        return cls(**values)


def _metadata_template(value: Any) -> dict[str, Any]:
    if value is None:
        return json.loads(json.dumps(DEFAULT_METADATA))
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{METADATA_TEMPLATE}: not valid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{METADATA_TEMPLATE}: must be a JSON object")
    if "edp" in value and not isinstance(value["edp"], dict):
        raise ConfigError(f"{METADATA_TEMPLATE}: \"edp\" holds the batch's facts; it must be an object")
    return value
