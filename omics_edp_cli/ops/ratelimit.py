"""A rate limit shared by worker threads (`--rate`: operations per second)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from omics_edp_cli.errors import ConfigError


class RateLimiter:
    """Spaces calls `1/rate` seconds apart across all threads; a rate of 0 or None means no limit.

    Each caller reserves the next free slot under a lock, then sleeps outside it, so threads
    never wait on each other's sleep. Pass `sleep=stop_event.wait` to make waits interruptible.
    """

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ):
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


def check_pace(concurrency: int, rate: float | None) -> None:
    """`--concurrency` and `--rate` as replay and reconcile take them."""
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if rate is not None and rate < 0:
        raise ConfigError("--rate must be 0 (no limit) or more events per second")
