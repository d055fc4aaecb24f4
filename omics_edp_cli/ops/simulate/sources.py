"""Where `simulate-batch` gets its S3 events: a synthetic burst, a YAML scenario, an event log,
or an existing S3 listing. Each is an iterable of `ObjectEvent`s in time order, read lazily,
with `position` / `total` for a progress bar.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from omics_edp_cli.edp.config import parse_seconds
from omics_edp_cli.edp.s3events import (
    ObjectEvent,
    S3EventError,
    parse_time,
)
from omics_edp_cli.errors import ConfigError

DEFAULT_START = "2026-01-05T08:00:00Z"
DEFAULT_BUCKET = "instrument-bucket"
# How far after the original a repeated delivery arrives in a synthetic burst.
DUPLICATE_DELAY = 30.0
SORT_CHUNK = 200_000


class Source:
    """An event stream; `position` counts progress in the unit of `total` (None: unknown)."""

    position: int = 0
    total: int | None = None
    unit: str = "events"

    def __iter__(self) -> Iterator[ObjectEvent]:
        raise NotImplementedError


# -- synthetic bursts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    """`files` objects into each of `prefixes` prefixes, one every `interval` seconds (± jitter)."""

    prefix: str
    at: float
    prefixes: int = 1
    files: int = 50
    interval: float = 2.0
    jitter: float = 0.0
    duplicates: float = 0.0

    def prefix_names(self) -> list[str]:
        base = self.prefix if self.prefix.endswith("/") else self.prefix + "/"
        if self.prefixes == 1 and "{i}" not in base:
            return [base]
        if "{i}" not in base:
            base = base + "{i}/"
        width = len(str(self.prefixes))
        return [base.replace("{i}", f"{n:0{width}d}") for n in range(1, self.prefixes + 1)]


def synthetic_prefix(depth: int, name: str = "burst") -> str:
    """`burst/run-{i}/` for depth 2, deeper or shallower to match the prefix depth."""
    parts = [name, "run-{i}"] + [f"part-{k}" for k in range(2, depth)]
    return "/".join(parts[:max(depth, 1)]) + "/"


class BurstSource(Source):
    def __init__(self, bursts: list[Burst], *, bucket: str, start: float, seed: int = 0):
        self.bursts, self.bucket, self.start, self.seed = bursts, bucket, start, seed
        self.total = sum(b.prefixes * b.files for b in bursts)

    def __iter__(self) -> Iterator[ObjectEvent]:
        rng = random.Random(self.seed)
        streams = []
        for n, burst in enumerate(self.bursts):
            for prefix in burst.prefix_names():
                streams.append(self._one(burst, prefix, random.Random(rng.random()), n))
        for event in heapq.merge(*streams, key=lambda e: e.time):
            self.position += 1
            yield event

    def _one(self, burst: Burst, prefix: str, rng: random.Random, n: int) -> Iterator[ObjectEvent]:
        """One prefix's objects in time order, repeated deliveries included."""
        redeliveries: list[tuple[float, int, ObjectEvent]] = []
        t = self.start + burst.at
        for j in range(1, burst.files + 1):
            if j > 1:
                t += max(0.0, burst.interval + rng.uniform(-burst.jitter, burst.jitter))
            event = ObjectEvent(self.bucket, f"{prefix}file-{j:05d}.dat", f"{n:04X}{j:012X}", t, 1024)
            while redeliveries and redeliveries[0][0] <= t:
                yield heapq.heappop(redeliveries)[2]
            yield event
            if burst.duplicates and rng.random() < burst.duplicates:
                again = ObjectEvent(event.bucket, event.key, event.sequencer,
                                    t + rng.uniform(0, DUPLICATE_DELAY), event.size)
                heapq.heappush(redeliveries, (again.time, j, again))
        while redeliveries:
            yield heapq.heappop(redeliveries)[2]


def load_scenario(path: str, *, bucket: str | None, depth: int) -> BurstSource:
    """A YAML scenario: `bucket`, `start` and a list of `bursts` (see the README)."""
    import yaml  # here: only a scenario needs it (~10 ms of every other run's start-up)

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("bursts"), list) or not data["bursts"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'bursts' list")
    unknown = set(data) - {"bucket", "start", "bursts", "seed"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(sorted(unknown))}")
    start = _time(data.get("start", DEFAULT_START), f"{path}: start")
    bursts = [_burst(item, f"{path}: bursts[{i}]", start, depth) for i, item in enumerate(data["bursts"])]
    seed = data.get("seed", 0)
    if not isinstance(seed, int):
        raise ConfigError(f"{path}: seed: expected a whole number")
    return BurstSource(bursts, bucket=bucket or str(data.get("bucket") or DEFAULT_BUCKET),
                       start=start, seed=seed)


def _burst(item: Any, where: str, start: float, depth: int) -> Burst:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping")
    fields = {"prefix", "at", "prefixes", "files", "interval", "jitter", "duplicates"}
    unknown = set(item) - fields
    if unknown:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
    at = item.get("at", 0)
    if isinstance(at, str) and "T" in at:
        offset = _time(at, f"{where}.at") - start
    else:
        offset = parse_seconds(str(at), f"{where}.at", zero_ok=True)
    return Burst(
        prefix=str(item.get("prefix") or synthetic_prefix(depth)),
        at=offset,
        prefixes=_whole(item.get("prefixes", 1), f"{where}.prefixes"),
        files=_whole(item.get("files", 50), f"{where}.files"),
        interval=parse_seconds(str(item.get("interval", 2)), f"{where}.interval", zero_ok=True),
        jitter=parse_seconds(str(item.get("jitter", 0)), f"{where}.jitter", zero_ok=True),
        duplicates=_fraction(item.get("duplicates", 0), f"{where}.duplicates"),
    )


def _time(value: Any, where: str) -> float:
    if hasattr(value, "timestamp"):  # YAML already parsed it as a datetime
        return float(value.timestamp())
    try:
        return parse_time(str(value))
    except S3EventError:
        raise ConfigError(f"{where}: {value!r} is not an ISO 8601 time") from None


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {value!r} is not a whole number of 1 or more")
    return value


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{where}: {value!r} is not a fraction between 0 and 1")
    return float(value)


# -- an S3 listing ------------------------------------------------------------------------------


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ConfigError(f"--from-s3: {uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[5:].partition("/")
    if len(bucket) < 3:
        raise ConfigError(f"--from-s3: {uri!r} has no valid bucket name")
    return bucket, prefix


class S3ListingSource(Source):
    """The objects under one or several S3 prefixes (several buckets, as one EDP stack watches)
    as creation events, `LastModified` as the event time.

    Listing order is by key, so objects are sorted by time first: in memory up to
    `SORT_CHUNK` objects, beyond that in sorted runs spilled to temporary files and merged,
    so memory stays bounded however large the prefix.
    """

    unit = "objects"

    def __init__(self, s3: Any, uri: str | Sequence[str], *, chunk: int = SORT_CHUNK):
        self.s3 = s3
        self.locations = [parse_s3_uri(u) for u in ([uri] if isinstance(uri, str) else uri)]
        if not self.locations:
            raise ConfigError("--from-s3: give at least one s3://bucket/prefix URI")
        self.bucket, self.prefix = self.locations[0]
        self.chunk = chunk
        self.listed = 0

    def __iter__(self) -> Iterator[ObjectEvent]:
        runs: list[IO[str]] = []
        buffer: list[tuple[float, str, str, int, str]] = []
        try:
            for obj in self._objects():
                self.listed += 1
                self.position = self.listed
                buffer.append(obj)
                if len(buffer) >= self.chunk:
                    runs.append(_spill(sorted(buffer)))
                    buffer = []
            buffer.sort()
            merged = heapq.merge(buffer, *(_read_run(r) for r in runs)) if runs else iter(buffer)
            for when, key, etag, size, bucket in merged:
                yield ObjectEvent(bucket, key, etag, when, size, etag or None)
        finally:
            for run in runs:
                run.close()

    def _objects(self) -> Iterator[tuple[float, str, str, int, str]]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for bucket, prefix in self.locations:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    modified = obj["LastModified"]
                    yield (modified.timestamp(), obj["Key"], str(obj.get("ETag", "")).strip('"'),
                           int(obj.get("Size", 0)), bucket)


def _spill(rows: list[tuple[float, str, str, int, str]]) -> IO[str]:
    handle = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by the caller)
    for row in rows:
        handle.write(json.dumps(row) + "\n")
    handle.seek(0)
    return handle


def _read_run(handle: IO[str]) -> Iterator[tuple[float, str, str, int, str]]:
    for line in handle:
        when, key, etag, size, bucket = json.loads(line)
        yield (when, key, etag, size, bucket)


def burst_from_flags(
    *, prefixes: int, files: int, interval: float, jitter: float, duplicates: float, depth: int,
) -> Burst:
    check_burst_flags(prefixes=prefixes, files=files, interval=interval, jitter=jitter,
                      duplicates=duplicates)
    return Burst(synthetic_prefix(depth), 0.0, prefixes, files, interval, jitter, float(duplicates))


def check_burst_flags(*, prefixes: int, files: int, interval: float, jitter: float,
                      duplicates: float) -> None:
    """The synthetic-burst flags, checked before anything else runs (a `ConfigError` each)."""
    for flag, value in (("--prefixes", prefixes), ("--files", files)):
        if value < 1:
            raise ConfigError(f"{flag}: {value} is not allowed, use 1 or more")
    for flag, seconds in (("--interval", interval), ("--jitter", jitter)):
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"{flag}: {seconds:g} seconds is not allowed, use 0 or more")
    _fraction(duplicates, "--duplicates")
