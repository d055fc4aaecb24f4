"""`omics-edp package-batch`: run the packager on one event, the same code as the Lambda."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.deployment import PackagerStack, load_typed, resolve
from omics_edp_cli.packager import config
from omics_edp_cli.packager.event import InvalidEvent, parse
from omics_edp_cli.packager.packager import Packager, PackageResult


@dataclass(frozen=True)
class PackageBatchOptions:
    """Flags as given; `plan_settings` fills the gaps (flag > environment > stack > default)."""

    registry: str | None = None
    quarantine: str | None = None
    workflow: str | None = None
    stack: str | None = None
    dry_run: bool = False


def check_event(event: Any, source: str) -> None:
    """A bad event is a usage error for the CLI (the Lambda reports and notifies instead)."""
    try:
        parse(event)
    except InvalidEvent as e:
        raise ConfigError(f"{source}: not a package-objects-ready event: {e}") from None


def plan_settings(options: PackageBatchOptions, clients: ClientFactory,
                  env: Mapping[str, str] | None = None) -> config.PackagerSettings:
    """The packager's settings; what needs no AWS call is checked first."""
    env = os.environ if env is None else env
    registry = resolve(options.registry, env.get(config.REGISTRY_BUCKET))
    if not registry and not options.stack:
        raise ConfigError(f"--registry s3://BUCKET (or {config.REGISTRY_BUCKET}) or --stack NAME required")
    stack = load_typed(clients, options.stack, PackagerStack) if options.stack else None
    values: dict[str, Any] = {
        "registry": resolve(registry, None, lambda: stack.registry_bucket if stack else None),
        "quarantine": resolve(options.quarantine, env.get(config.QUARANTINE_BUCKET),
                              lambda: stack.quarantine_bucket if stack else None),
        "workflow": resolve(options.workflow, env.get(config.WORKFLOW_NAME),
                            lambda: stack.parameters.get("WorkflowName") if stack else None),
    }
    if stack is not None:
        # The rest as the deployed function has it, unless the environment says otherwise.
        params = stack.parameters
        from_stack = {
            "topic_arn": stack.topic_arn, "catalog_url": params.get("QuiltCatalogUrl"),
            "name_depth": params.get("PackageNameDepth"), "namespace": params.get("PackageNamespace"),
            "readme_template": params.get("ReadmeTemplate"), "quiltignore": params.get("QuiltIgnore"),
            "metadata_template": params.get("MetadataTemplate"),
            "file_gateway_share_arn": params.get("FileGatewayShareArn"),
            "kms_key_id": params.get("SseKmsKeyArn"),
        }
        names = {"topic_arn": config.TOPIC_ARN, "catalog_url": config.CATALOG_URL,
                 "name_depth": config.NAME_DEPTH, "namespace": config.NAME_NAMESPACE,
                 "readme_template": config.README_TEMPLATE, "quiltignore": config.QUILTIGNORE,
                 "metadata_template": config.METADATA_TEMPLATE,
                 "file_gateway_share_arn": config.FILE_GATEWAY_SHARE_ARN, "kms_key_id": config.SSE_KMS_KEY_ID}
        values.update({k: v for k, v in from_stack.items() if v and not env.get(names[k])})
    return config.PackagerSettings.from_env(env, **values)


def package_batch(event: Any, options: PackageBatchOptions, clients: ClientFactory,
                  env: Mapping[str, str] | None = None) -> PackageResult:
    settings = plan_settings(options, clients, env)
    return Packager(settings, clients).package(event, dry_run=options.dry_run)
