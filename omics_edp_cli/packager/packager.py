"""One batch → one package: plan, idempotency check, push (or quarantine), notify, warm the gateway."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.packager import gateway, notify
from omics_edp_cli.packager.config import PackagerSettings
from omics_edp_cli.packager.event import InvalidEvent, parse
from omics_edp_cli.packager.plan import README, PackagePlan, plan_package

log = logging.getLogger(__name__)


@dataclass
class PackageResult:
    """What happened to one event. `outcome`: created | already-packaged | quarantined | refused | planned."""

    outcome: str
    package: str | None = None
    registry: str | None = None
    top_hash: str | None = None
    url: str | None = None
    batch_id: str | None = None
    entries: int = 0
    error: str | None = None
    notification: str | None = None
    plan: PackagePlan | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome in {"created", "already-packaged", "planned"}

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "plan" and v is not None}
        if self.plan is not None and self.outcome == "planned":
            data.update(self.plan.as_dict())
        return data


def quarantine_readme(plan: PackagePlan, error: str) -> str:
    return (f"# {plan.name} (quarantined)\n\nThis package failed validation against the workflow "
            f"`{plan.workflow or 'default'}` of s3://{plan.registry} and was pushed here instead.\n\n"
            f"Error message is: {error}\n\nSource: {plan.batch.source_uri} (EDP batch "
            f"`{plan.batch.batch_id}`). Fix the metadata or the workflow, then package the batch again "
            "(`omics-edp package-batch EVENT.json`).\n")


class Packager:
    """Runs the consumer on one event. `InvalidEvent` never escapes; `OperationError` does (retryable)."""

    def __init__(self, settings: PackagerSettings, clients: ClientFactory):
        self.settings = settings
        self.clients = clients

    def plan(self, event: Any) -> PackagePlan:
        return plan_package(parse(event), self.settings, self.clients.client("s3"))

    def package(self, event: Any, *, dry_run: bool = False) -> PackageResult:
        settings = self.settings
        try:
            plan = self.plan(event)
        except InvalidEvent as e:
            return self._refused(event, str(e))
        batch_id = plan.batch.batch_id
        if dry_run:
            return PackageResult("planned", plan.name, settings.registry, batch_id=batch_id,
                                 entries=len(plan.entries) + len(plan.added), plan=plan)
        from omics_edp_cli.packager import push  # quilt3 is needed from here on only

        push.configure(self.clients, settings.kms_key_id)
        s3 = self.clients.client("s3")
        for registry in filter(None, (settings.registry, settings.quarantine)):
            done = push.find_packaged(s3, registry, plan.name, batch_id)
            if done is not None:
                log.info("batch %s was already packaged as %s@%s in s3://%s: nothing to do",
                         batch_id, done.name, done.top_hash, registry)
                outcome = "already-packaged" if registry == settings.registry else "quarantined"
                return PackageResult(outcome, done.name, registry, done.top_hash, batch_id=batch_id,
                                     entries=len(plan.entries) + len(plan.added))
        entries = len(plan.entries) + len(plan.added)
        try:
            pushed = push.push(plan, settings.registry, workflow=settings.workflow or ...)
        except push.WorkflowRefused as refusal:
            return self._quarantine(plan, str(refusal), entries)
        push.write_marker(s3, pushed, batch_id, False, settings.kms_key_id)
        url = notify.catalog_url(settings.catalog_url, pushed.registry, pushed.name, pushed.top_hash)
        log.info("batch %s → package %s@%s in s3://%s (%d entries)", batch_id, pushed.name, pushed.top_hash,
                 pushed.registry, entries)
        note = notify.publish(self._sns(), settings.topic_arn, notify.created(
            pushed.name, pushed.registry, pushed.top_hash, url, batch_id))
        gateway.refresh(self.clients.client("storagegateway") if settings.file_gateway_share_arn else None,
                        settings.file_gateway_share_arn, pushed.name)
        return PackageResult("created", pushed.name, pushed.registry, pushed.top_hash, url, batch_id,
                             entries, notification=note)

    def _quarantine(self, plan: PackagePlan, error: str, entries: int) -> PackageResult:
        from omics_edp_cli.packager import push

        settings = self.settings
        if not settings.quarantine:
            # Nowhere to put it: reported (log line, notification); the objects stay where they are.
            log.error("package %s failed workflow validation and no quarantine bucket is set: %s",
                      plan.name, error)
            note = notify.publish(self._sns(), settings.topic_arn, notify.refused(
                plan.batch.source_uri, f"workflow validation failed: {error}", plan.batch.batch_id))
            return PackageResult("refused", plan.name, settings.registry, batch_id=plan.batch.batch_id,
                                 entries=entries, error=error, notification=note)
        pushed = push.push(plan, settings.quarantine, extra={README: quarantine_readme(plan, error)})
        push.write_marker(self.clients.client("s3"), pushed, plan.batch.batch_id, True, settings.kms_key_id)
        log.error("package %s failed workflow validation; pushed to s3://%s as %s@%s instead: %s",
                  plan.name, settings.quarantine, pushed.name, pushed.top_hash, error)
        note = notify.publish(self._sns(), settings.topic_arn, notify.quarantined(
            plan.name, settings.quarantine, error, pushed.top_hash, plan.batch.batch_id))
        return PackageResult("quarantined", pushed.name, pushed.registry, pushed.top_hash,
                             batch_id=plan.batch.batch_id, entries=entries, error=error, notification=note)

    def _refused(self, event: Any, reason: str) -> PackageResult:
        detail = event.get("detail") if isinstance(event, dict) else None
        detail = detail if isinstance(detail, dict) else {}
        source = f"s3://{detail.get('bucket', '?')}/{detail.get('prefix', '')}"
        batch_id = detail.get("batch_id") if isinstance(detail.get("batch_id"), str) else None
        log.error("batch %s (%s) not packaged: %s", source, batch_id or "no batch id", reason)
        note = notify.publish(self._sns(), self.settings.topic_arn, notify.refused(source, reason, batch_id))
        return PackageResult("refused", batch_id=batch_id, error=reason, notification=note)

    def _sns(self) -> Any:
        return self.clients.client("sns") if self.settings.topic_arn else None
