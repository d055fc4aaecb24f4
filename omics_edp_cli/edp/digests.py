"""An exact set of 64-bit digests held in one array: the engine's de-duplication window.

A prefix remembers the digest of every object it counted during the last 15 minutes (or the
quiet duration, when longer). In a Python `set` each one costs ~110 bytes (a 65-byte string,
or a 40-byte int, plus its slot and the table's slack); the simulator holds hundreds of
thousands of them. Here a digest is 8 bytes in an `array('Q')` hash table kept at most half
full (16-32 bytes a digest), with linear probing and deletion by backward shift (no
tombstones, so the table never fills up with deleted entries and shrinks as the window does).

Exact: a digest is found only if it was added and not discarded since, whatever its value
(0, which marks an empty slot, is remembered on the side). Standard library only (Lambda side).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

MIN_SLOTS = 8
# Marks an empty slot (the digest 0 itself is kept in `_zero`).
EMPTY = 0


class DigestSet:
    """`in`, `add`, `discard`, `update`, `difference_update`, `len` and iteration over
    unsigned 64-bit ints, like a `set`."""

    __slots__ = ("_mask", "_slots", "_used", "_zero")

    def __init__(self, digests: Iterable[int] = ()) -> None:
        self._slots = array("Q", bytes(8 * MIN_SLOTS))
        self._mask = MIN_SLOTS - 1
        self._used = 0  # digests in `_slots` (the digest 0 not included)
        self._zero = False
        self.update(digests)

    def __len__(self) -> int:
        return self._used + self._zero

    def __bool__(self) -> bool:
        return bool(self._used) or self._zero

    def __contains__(self, digest: object) -> bool:
        if not digest:
            return self._zero
        slots, mask = self._slots, self._mask
        i = digest & mask  # type: ignore[operator]  # digests are ints
        while True:
            value = slots[i]
            if value == digest:
                return True
            if value == EMPTY:
                return False
            i = (i + 1) & mask

    def __iter__(self) -> Iterator[int]:
        if self._zero:
            yield 0
        for value in list(self._slots):
            if value != EMPTY:
                yield value

    def __repr__(self) -> str:
        return f"DigestSet({sorted(self)!r})"

    def add(self, digest: int) -> None:
        self.update((digest,))

    def update(self, digests: Iterable[int]) -> None:
        # One loop for many digests (an emitted batch's): a call per digest costs as much again.
        slots, mask = self._slots, self._mask
        for digest in digests:
            if not digest:
                self._zero = True
                continue
            if (self._used + 1) * 2 > len(slots):
                self._resize(len(slots) * 2)
                slots, mask = self._slots, self._mask
            i = digest & mask
            while True:
                value = slots[i]
                if value == EMPTY:
                    slots[i] = digest
                    self._used += 1
                    break
                if value == digest:
                    break
                i = (i + 1) & mask

    def discard(self, digest: int) -> None:
        self.difference_update((digest,))

    def difference_update(self, digests: Iterable[int]) -> None:
        slots, mask = self._slots, self._mask
        for digest in digests:
            if not digest:
                self._zero = False
                continue
            i = digest & mask
            while True:
                value = slots[i]
                if value == digest:
                    break
                if value == EMPTY:
                    i = -1
                    break
                i = (i + 1) & mask
            if i < 0:
                continue
            # Backward shift: move up each later entry of the run that may not stay behind the hole.
            j = i
            while True:
                j = (j + 1) & mask
                value = slots[j]
                if value == EMPTY:
                    break
                home = value & mask
                # `value` stays where it is when its home slot lies cyclically in (i, j].
                if (home > i and home <= j) if i <= j else (home > i or home <= j):
                    continue
                slots[i] = value
                i = j
            slots[i] = EMPTY
            self._used -= 1
        if self._used * 8 < len(slots) and len(slots) > MIN_SLOTS:
            self._resize(max(MIN_SLOTS, _power_of_two(self._used * 4)))

    def _resize(self, size: int) -> None:
        old = self._slots
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._used = 0
        self.update([value for value in old if value != EMPTY])


def _power_of_two(n: int) -> int:
    """The smallest power of two at or above `n` (n >= 1)."""
    return 1 << (n - 1).bit_length()
