"""The emitted batches of one simulated run, in emission order: a few in memory, the rest on disk.

A simulation of millions of events emits hundreds of thousands of batches, each with its
object list when the output needs it (JSON, `--plot`). Holding them until the end made memory
grow with the input; the spool writes them to an anonymous temporary file in marshalled
chunks and reads them back, as often as a renderer needs, with `pread` (no shared position).
The file is the process's own (unlinked on creation) and read back by the same interpreter, so
`marshal` (twice as fast as pickle for these tuples of strings and numbers) is safe here.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from omics_edp_cli.edp.engine import Emission

# Version 2 does not track shared objects: version 3 and later look up every string that has
# another reference (an object's key still held by its event) in a table, 4-6 times slower here.
MARSHAL_VERSION = 2
# Emissions per marshalled chunk (and held in memory before the first spill). Small chunks are
# faster to write and read back than large ones (1024: three times slower to read here): their
# buffers are reused rather than mapped afresh.
CHUNK = 128


def _row(e: Emission) -> tuple[Any, ...]:
    return (e.batch_id, e.bucket, e.prefix, e.count, e.first_event_at, e.last_event_at,
            e.opened_at, e.emitted_at, e.trigger, e.objects)


def _emission(row: tuple[Any, ...]) -> Emission:
    batch, bucket, prefix, count, first, last, opened, emitted_at, trigger, objects = row
    return Emission(batch, bucket, prefix, count, first, last, opened, emitted_at, trigger,
                    objects=objects)


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

    def __iter__(self) -> Iterator[Emission]:
        if self._file is not None:
            self._file.flush()
            fd = self._file.fileno()
            for offset, length in self._chunks:
                for row in marshal.loads(os.pread(fd, length, offset)):
                    yield _emission(row)
        yield from list(self._buffer)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks, self._buffer = [], []
