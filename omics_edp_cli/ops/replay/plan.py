"""Replay's plan: the flags checked (before any AWS call) and resolved against the stack.

`ReplayOptions` is what the operator typed; `ReplayPlan` is pure data the executor carries out
(printable by `--dry-run`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.omics.progress import NoProgress, Progress
from omics_edp_cli.ops.deployment import archive_flags, archive_target
from omics_edp_cli.ops.ratelimit import check_pace
from omics_edp_cli.ops.replay.report import delivered_keys
from omics_edp_cli.ops.timewindow import TimeWindow, time_window

if TYPE_CHECKING:
    from omics_edp_cli.ops.replay.read import ArchivedEvent

DEFAULT_CONCURRENCY = 8


# What the CLI draws: `listing` (total unknown), then `replaying` (or `reading` in a dry run).
ReplayProgress = Progress
_NoProgress = NoProgress


@dataclass(frozen=True)
class ReplayOptions:
    """Flags as given; `plan_replay` resolves them (flag > environment > stack > default)."""

    since: str
    until: str | None = None
    stack: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    api_server: str | None = None
    statuses: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    wes_run_ids: tuple[str, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    dry_run: bool = False
    report: Path | None = None
    resume: Path | None = None


@dataclass(frozen=True)
class ReplayPlan:
    """Everything resolved: where to read, where to send, what to skip."""

    window: TimeWindow
    bucket: str
    prefix: str
    api_server: str | None
    token: str | None = field(repr=False)
    statuses: frozenset[str] = frozenset()
    run_ids: frozenset[str] = frozenset()
    wes_run_ids: frozenset[str] = frozenset()
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    dry_run: bool = False
    report: Path | None = None
    append_report: bool = False
    already_delivered: frozenset[str] = frozenset()

    def matches(self, event: ArchivedEvent) -> bool:
        """Filters apply to readable payloads; unreadable objects are always reported."""
        if event.payload is None:
            return True
        return (
            (not self.statuses or (event.status or "").upper() in self.statuses)
            and (not self.run_ids or event.run in self.run_ids)
            and (not self.wes_run_ids or event.wes_run_id in self.wes_run_ids)
        )


def plan_replay(
    options: ReplayOptions,
    clients: ClientFactory,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ReplayPlan:
    """Check the flags (before any AWS call), then read the stack and the token if needed."""
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    window = time_window(options.since, options.until, now)
    check_pace(options.concurrency, options.rate)
    send = not options.dry_run
    flags = archive_flags(env, stack=options.stack, bucket=options.bucket,
                          api_server=options.api_server, send=send,
                          api_missing="--api-server or --stack required (or API_SERVER), or use --dry-run")
    done = delivered_keys(options.resume) if options.resume else set()
    append = False
    if options.report and not options.dry_run:
        _check_writable(options.report)
        append = options.resume is not None and _same_file(options.report, options.resume)
    target = archive_target(clients, env, flags, options.prefix, send=send)
    return ReplayPlan(
        window=window,
        bucket=target.bucket,
        prefix=target.prefix,
        api_server=target.api_server,
        token=target.token,
        statuses=frozenset(s.upper() for s in options.statuses),
        run_ids=frozenset(options.run_ids),
        wes_run_ids=frozenset(options.wes_run_ids),
        concurrency=options.concurrency,
        rate=options.rate or None,
        dry_run=options.dry_run,
        report=None if options.dry_run else options.report,
        append_report=append,
        already_delivered=frozenset(done),
    )


def _check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--report {path}: is a directory")
    if not parent.is_dir():
        raise ConfigError(f"--report {path}: folder {parent} does not exist")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise ConfigError(f"--report {path}: not writable")


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()
