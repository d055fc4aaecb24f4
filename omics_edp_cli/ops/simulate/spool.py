"""The emitted batches of one simulated run, in emission order: a few in memory, the rest on disk.

A simulation of millions of events emits hundreds of thousands of batches, each with its
object list when the output needs it (JSON, `--plot`). Holding them until the end made memory
grow with the input; the spool writes them to an anonymous temporary file in marshalled
chunks and reads them back, as often as a renderer needs, with `pread` (no shared position).
The file is the process's own (unlinked on creation) and read back by the same interpreter, so
`marshal` (twice as fast as pickle for these tuples of strings and numbers) is safe here.

Of each batch's objects the spool keeps what the output and the plot use: the keys, as the
JSON text of their list (the document's `objects` entry, encoded once), and the event times
(8 bytes each). Marshalling one 6-tuple per object instead cost more than the simulation.
"""

from __future__ import annotations

import json
import marshal
import os
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from omics_edp_cli.edp.engine import Emission

# Version 2 does not track shared objects: version 3 and later look up every string that has
# another reference (an object's key still held by its event) in a table, 4-6 times slower here.
MARSHAL_VERSION = 2
# Emissions per marshalled chunk (and held in memory before the first spill). Small chunks are
# faster to write and read back than large ones (1024: three times slower to read here): their
# buffers are reused rather than mapped afresh.
CHUNK = 128
# What json.dumps(..., ensure_ascii=False, default=str) writes for a list of strings: the output's.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


@dataclass(slots=True)
class SpooledEmission(Emission):
    """An emission read back: `objects` is empty; `keys_json` is the JSON text of its object
    keys (in counting order) and `times` their event times, as the engine listed them."""

    keys_json: str = "[]"
    times: array[float] = field(default_factory=lambda: array("d"))

    @property
    def keys(self) -> list[str]:
        keys: list[str] = json.loads(self.keys_json)
        return keys


def _row(e: Emission) -> tuple[Any, ...]:
    if isinstance(e, SpooledEmission):
        keys, times = e.keys_json, e.times.tobytes()
    else:
        objects = e.objects
        keys = _encode([o[0] for o in objects]) if objects else "[]"
        times = array("d", [o[4] for o in objects]).tobytes() if objects else b""
    return (e.batch_id, e.bucket, e.prefix, e.count, e.first_event_at, e.last_event_at,
            e.opened_at, e.emitted_at, e.trigger, keys, times)


def _emission(row: tuple[Any, ...]) -> SpooledEmission:
    batch, bucket, prefix, count, first, last, opened, emitted_at, trigger, keys, times = row
    when = array("d")
    when.frombytes(times)
    return SpooledEmission(batch, bucket, prefix, count, first, last, opened, emitted_at, trigger,
                           keys_json=keys, times=when)


class EmissionSpool:
    """Append-only; iterate as often as needed. `close` frees the file."""

    def __init__(self, chunk: int = CHUNK) -> None:
        self.chunk = chunk
        self._buffer: list[Emission] = []
        self._file: IO[bytes] | None = None
        self._chunks: list[tuple[int, int]] = []  # (offset, length) of each chunk
        self._end = 0
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def extend(self, emissions: list[Emission]) -> None:
        self._buffer.extend(emissions)
        self.count += len(emissions)
        if len(self._buffer) >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `close`)
        data = marshal.dumps([_row(e) for e in self._buffer], MARSHAL_VERSION)
        self._file.write(data)
        self._chunks.append((self._end, len(data)))
        self._end += len(data)
        self._buffer = []

    def __iter__(self) -> Iterator[SpooledEmission]:
        if self._file is not None:
            self._file.flush()
            fd = self._file.fileno()
            for offset, length in self._chunks:
                for row in marshal.loads(os.pread(fd, length, offset)):
                    yield _emission(row)
        for e in list(self._buffer):
            yield _emission(_row(e))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks, self._buffer = [], []
