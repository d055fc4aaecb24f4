"""Optional File Gateway warm-up: refresh the share's cache on the package's folder."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)


def refresh(storagegateway: Any, share_arn: str | None, name: str) -> str | None:
    """`RefreshCache` on `/{name}` (recursive). Returns the notification id; a failure is logged only."""
    if not share_arn:
        return None
    try:
        response = storagegateway.refresh_cache(FileShareARN=share_arn, FolderList=[f"/{name}"],
                                                Recursive=True)
    except (ClientError, BotoCoreError) as e:
        log.error("File Gateway refresh of /%s on %s failed (the package is pushed): %s", name, share_arn, e)
        return None
    return str(response.get("NotificationId", ""))
