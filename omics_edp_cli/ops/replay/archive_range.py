"""Listing only the part of the archive a time window needs.

Archive keys are `{prefix}/event_{YYYYMMDD_HHMMSS}_{uuid}.json` (the seed's format and this
project's), so they sort by time: the listing starts with `StartAfter` at the window's first
second and stops at the first key past its last second. A one-hour window of a 100,000-object
archive costs about one list call per 1,000 keys inside the window, not 100.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.errors import ArchiveError
from omics_edp_cli.omics.archive import key_prefix_for_time
from omics_edp_cli.ops.timewindow import TimeWindow

PAGE_SIZE = 1000  # S3's maximum per ListObjectsV2 call


class KeyRange:
    """The archive keys inside one window, in key (= time) order; `list_calls` counts S3 calls."""

    def __init__(self, s3: Any, bucket: str, prefix: str, window: TimeWindow, page_size: int = PAGE_SIZE):
        self.s3 = s3
        self.bucket = bucket
        self.start_after = key_prefix_for_time(prefix, window.first_second)
        # Keys of the window's last second sort before this bound, every later key at or after it.
        self.stop_at = key_prefix_for_time(prefix, window.last_second + timedelta(seconds=1))
        # Only `event_*` objects: the `rejected/` folder and anything else under the prefix stay out.
        self.list_prefix = self.start_after[: self.start_after.rindex("event_") + len("event_")]
        self.page_size = page_size
        self.list_calls = 0

    def __iter__(self) -> Iterator[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.list_prefix, StartAfter=self.start_after,
            PaginationConfig={"PageSize": self.page_size})
        try:
            for page in pages:
                self.list_calls += 1
                for item in page.get("Contents", ()):
                    if item["Key"] >= self.stop_at:
                        return  # past the window: no further page is read
                    yield item["Key"]
        except (BotoCoreError, ClientError) as e:
            raise ArchiveError(f"listing s3://{self.bucket}/{self.list_prefix} failed: {e}") from e
