"""Batch state in one SQLite file: the embedded default for local runs.

Safe for several processes and threads: WAL journal, a busy timeout, single-statement
conditional writes on the version column, and `BEGIN IMMEDIATE` for read-modify-write.
Due prefixes are found through a partial index on `flush_at`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from omics_edp_cli.edp.engine import PrefixState
from omics_edp_cli.edp.store import Key, remove_published, state_from_doc, state_to_doc
from omics_edp_cli.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_state (
    bucket   TEXT NOT NULL,
    prefix   TEXT NOT NULL,
    version  INTEGER NOT NULL,
    flush_at REAL,
    state    TEXT NOT NULL,
    PRIMARY KEY (bucket, prefix)
);
CREATE INDEX IF NOT EXISTS batch_state_due ON batch_state (flush_at) WHERE flush_at IS NOT NULL;
"""


class SqliteStore:
    def __init__(self, path: str | Path, *, create: bool = True, timeout: float = 30.0):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"{self.path}: no batch state file here")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: autocommit; transactions are explicit where needed.
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise ConfigError(f"{self.path}: not a usable SQLite batch state file ({e})") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def load(self, keys: Sequence[Key]) -> dict[Key, PrefixState]:
        out = {key: PrefixState(*key) for key in keys}
        with self._lock:
            for key in keys:
                row = self._db.execute(
                    "SELECT state FROM batch_state WHERE bucket = ? AND prefix = ?", key
                ).fetchone()
                if row is not None:
                    out[key] = state_from_doc(json.loads(row[0]))
        return out

    def commit(self, state: PrefixState, expected_version: int) -> bool:
        new_version = expected_version + 1
        doc = state_to_doc(state)
        doc["version"] = new_version
        params = (new_version, state.flush_at, json.dumps(doc), state.bucket, state.prefix)
        with self._lock:
            if expected_version == 0:
                cursor = self._db.execute(
                    "INSERT INTO batch_state (version, flush_at, state, bucket, prefix) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", params)
            else:
                cursor = self._db.execute(
                    "UPDATE batch_state SET version = ?, flush_at = ?, state = ? "
                    "WHERE bucket = ? AND prefix = ? AND version = ?", (*params, expected_version))
        if cursor.rowcount != 1:
            return False
        state.version = new_version
        return True

    def mark_published(self, state: PrefixState, batch_ids: Collection[str]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT state FROM batch_state WHERE bucket = ? AND prefix = ?", state.key
                ).fetchone()
                if row is not None:
                    current = state_from_doc(json.loads(row[0]))
                    remove_published(current, batch_ids)
                    current.version += 1
                    self._db.execute(
                        "UPDATE batch_state SET version = ?, flush_at = ?, state = ? "
                        "WHERE bucket = ? AND prefix = ?",
                        (current.version, current.flush_at, json.dumps(state_to_doc(current)),
                         *state.key))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def due(self, now: float) -> list[Key]:
        with self._lock:
            rows = self._db.execute(
                "SELECT bucket, prefix FROM batch_state WHERE flush_at IS NOT NULL AND flush_at <= ? "
                "ORDER BY flush_at", (now,)).fetchall()
        return [(b, p) for b, p in rows]

    def active(self) -> list[PrefixState]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state FROM batch_state WHERE flush_at IS NOT NULL ORDER BY flush_at").fetchall()
        return [state_from_doc(json.loads(r[0])) for r in rows]

    def everything(self) -> Iterator[PrefixState]:
        with self._lock:
            rows = self._db.execute("SELECT state FROM batch_state").fetchall()
        for (text,) in rows:
            yield state_from_doc(json.loads(text))

    def get(self, key: Key) -> PrefixState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM batch_state WHERE bucket = ? AND prefix = ?", key).fetchone()
        return state_from_doc(json.loads(row[0])) if row is not None else None
