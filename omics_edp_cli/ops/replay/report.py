"""The replay report: one JSON line per event, flushed as it goes, and reading it back for `--resume`."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from omics_edp_cli.errors import ConfigError
from omics_edp_cli.omics.secrets import redact

# Outcomes a report line can carry. The first two mean "the receiver has it": --resume skips them.
DELIVERED = "delivered"
ALREADY_PROCESSED = "already_processed"
SKIPPED = "skipped"  # not deliverable (no wes_run_id): archived only, like the Lambda does
INVALID = "invalid"  # the object is not JSON or not a callback payload
REJECTED = "rejected"  # a permanent 4xx from the receiver
FAILED = "failed"  # still failing after the retry budget
HELD = "held"  # not sent: an earlier event of the same run failed, so sending it would break the order
SENT_OUTCOMES = frozenset({DELIVERED, ALREADY_PROCESSED})
FAILURE_OUTCOMES = frozenset({REJECTED, FAILED, HELD})


@dataclass(frozen=True)
class EventOutcome:
    """What happened to one archived object."""

    key: str
    run: str | None
    wes_run_id: str | None
    status: str | None
    event_time: str | None
    outcome: str
    http_status: int | None = None
    attempts: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReportWriter:
    """Appends `EventOutcome`s as JSON lines; thread-safe, flushed line by line.

    Flushed, not fsynced: a Ctrl-C or a crash of this process loses nothing written; an fsync
    per event would cost more than the callback itself.
    """

    def __init__(self, path: Path, append: bool = False):
        self.path = path
        try:
            self._file: IO[str] = path.open("a" if append else "w", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"--report {path}: cannot write: {e.strerror or e}") from None
        self._lock = threading.Lock()

    def write(self, outcome: EventOutcome) -> None:
        line = redact(json.dumps(outcome.as_dict(), ensure_ascii=False, separators=(",", ":")))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def delivered_keys(path: Path) -> set[str]:
    """Keys a report shows the receiver has (delivered or already processed).

    A last line cut short by a hard kill is ignored: that event is simply sent again, and the
    receiver de-duplicates on `event_id`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--resume {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--resume {path}: cannot read: {e}") from None
    keys: set[str] = set()
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise ConfigError(
                f"--resume {path}: line {number} is not JSON: is this a replay report?"
            ) from None
        if not isinstance(record, dict) or "key" not in record or "outcome" not in record:
            raise ConfigError(f"--resume {path}: line {number} is not a replay report line")
        if record["outcome"] in SENT_OUTCOMES:
            keys.add(str(record["key"]))
    return keys
