"""What the packager tells people through its SNS topic (docs/CONTRACTS.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)
SUBJECT_MAX = 100


@dataclass(frozen=True)
class Notification:
    kind: str  # package-created | package-quarantined | batch-refused
    subject: str
    message: str
    details: dict[str, Any]


def catalog_url(catalog: str | None, registry: str, name: str, top_hash: str) -> str:
    """Where people open the package: the Quilt catalog when there is one, else its quilt+s3 URI."""
    if catalog:
        return f"{catalog.rstrip('/')}/b/{registry}/packages/{name}/tree/{top_hash}"
    return f"quilt+s3://{registry}#package={name}@{top_hash}"


def created(name: str, registry: str, top_hash: str, url: str, batch_id: str) -> Notification:
    return Notification("package-created", f"Package {name} created"[:SUBJECT_MAX],
                        f"Package {name} was created in s3://{registry}: {url} (top hash {top_hash}).",
                        {"package": name, "registry": registry, "top_hash": top_hash, "url": url,
                         "batch_id": batch_id})


def quarantined(name: str, quarantine: str, error: str, top_hash: str, batch_id: str) -> Notification:
    """The seed's failure message, word for word, then the facts."""
    return Notification("package-quarantined", f"Failed to create package {name}"[:SUBJECT_MAX],
                        f"Failed to create package {name}. It was pushed to s3://{quarantine} instead. "
                        f"Error message is: {error}",
                        {"package": name, "quarantine": quarantine, "top_hash": top_hash, "error": error,
                         "batch_id": batch_id})


def refused(source: str, reason: str, batch_id: str | None) -> Notification:
    return Notification("batch-refused", "EDP batch not packaged",
                        f"The batch {source} was not packaged: {reason}",
                        {"source": source, "reason": reason, "batch_id": batch_id})


def publish(sns: Any, topic_arn: str | None, note: Notification) -> str | None:
    """Publish; a failure is logged in one line with the whole message, never raised (the package is safe)."""
    if not topic_arn or sns is None:
        return None
    attributes = {"kind": note.kind, **{k: str(v) for k, v in note.details.items()
                                        if k in ("package", "batch_id", "top_hash") and v}}
    try:
        response = sns.publish(TopicArn=topic_arn, Subject=note.subject, Message=note.message,
                               MessageAttributes={k: {"DataType": "String", "StringValue": v}
                                                  for k, v in attributes.items()})
    except (ClientError, BotoCoreError) as e:
        log.error("notification %s not published to %s (%s): %s", note.kind, topic_arn, e, note.message)
        return None
    return str(response.get("MessageId"))
