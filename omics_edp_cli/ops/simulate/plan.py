"""simulate-batch's plan: the flags checked (before any AWS call), one input chosen, thresholds resolved.

`SimulateOptions` is what the operator typed; `SimulatePlan` is what runs: which input to read,
the threshold sets to compare, the flush tick. `open_source` turns the plan into the events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.edp.config import BatchRules, parse_seconds
from omics_edp_cli.edp.s3events import parse_time
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.simulate import sources
from omics_edp_cli.ops.simulate.eventlog import EventLogSource
from omics_edp_cli.ops.simulate.execute import Run
from omics_edp_cli.ops.simulate.plot import check_plot_file
from omics_edp_cli.ops.simulate.sources import (
    DEFAULT_BUCKET,
    DEFAULT_START,
    BurstSource,
    S3ListingSource,
    Source,
    burst_from_flags,
    load_scenario,
)
from omics_edp_cli.ops.simulate.thresholds import ThresholdFlags, resolve


class InputKind(StrEnum):
    events = "--events"
    scenario = "--scenario"
    from_s3 = "--from-s3"
    burst = "synthetic burst"


@dataclass(frozen=True)
class BurstFlags:
    """The synthetic-burst flags as given (None: not given)."""

    prefixes: int | None = None
    files: int | None = None
    interval: float | None = None
    jitter: float | None = None
    duplicates: float | None = None

    def given(self) -> list[str]:
        """The flags given, as typed: `--prefixes`, ..."""
        return [f"--{name}" for name, value in vars(self).items() if value is not None]


BURST_DEFAULTS: dict[str, Any] = {"prefixes": 3, "files": 50, "interval": 2.0, "jitter": 0.0,
                                  "duplicates": 0.0}


@dataclass(frozen=True)
class SimulateOptions:
    """Flags as given; `plan_simulate` checks and resolves them."""

    events: str | None = None
    scenario: Path | None = None
    from_s3: list[str] | None = None  # s3:// URIs, repeated or comma-separated
    burst: BurstFlags = field(default_factory=BurstFlags)
    start: str | None = None
    seed: int = 0
    bucket: str | None = None
    thresholds: ThresholdFlags = field(default_factory=ThresholdFlags)
    tick: str = "60"
    parameters: str | None = None
    stack: str | None = None
    plot: str | None = None  # --plot FILE


@dataclass(frozen=True)
class SimulatePlan:
    """Everything resolved: one input, the threshold sets, the tick."""

    input: InputKind
    rule_sets: list[BatchRules]
    tick: float
    origin: str  # where the thresholds came from, e.g. "edp.parameters.json + flags"
    path: str | None = None  # --events / --scenario file
    s3_uris: tuple[str, ...] = ()  # --from-s3
    plot: Path | None = None  # where to draw the timeline (checked: suffix, the [plot] extra)
    start: float | None = None  # given (or defaulted, for a burst) start time
    seed: int = 0
    bucket: str | None = None
    burst: dict[str, Any] = field(default_factory=dict)  # a synthetic burst's flags, defaults filled

    @property
    def approximate(self) -> bool:
        """True for an S3 listing: LastModified stands in for the event time."""
        return self.input is InputKind.from_s3


def plan_simulate(
    options: SimulateOptions, clients: ClientFactory, env: Mapping[str, str] | None = None,
) -> SimulatePlan:
    """Check every flag (before any AWS call), then read the stack's parameters if asked."""
    chosen = [kind for kind, value in ((InputKind.events, options.events),
                                       (InputKind.scenario, options.scenario),
                                       (InputKind.from_s3, options.from_s3)) if value is not None]
    if len(chosen) > 1:
        raise ConfigError(f"give one input: {' or '.join(chosen)}")
    burst_given = options.burst.given()
    if chosen and burst_given:
        raise ConfigError(f"{', '.join(burst_given)} describe a synthetic burst; they do not apply to "
                          f"{chosen[0]}")
    # `is None`, not `or`: an explicit 0 is a value to check, not a request for the default.
    burst = {name: BURST_DEFAULTS[name] if value is None else value
             for name, value in asdict(options.burst).items()}
    if not chosen:
        sources.check_burst_flags(**burst)
    tick = parse_seconds(options.tick, "--tick", zero_ok=True)
    start = _start(options.start)
    s3_uris = tuple(u.strip() for text in options.from_s3 or [] for u in text.split(",") if u.strip())
    for uri in s3_uris:
        sources.parse_s3_uri(uri)  # a usage error before any AWS call
    plot = check_plot_file(options.plot) if options.plot is not None else None
    stack = options.stack
    resolved = resolve(
        options.thresholds,
        parameters_file=options.parameters,
        stack_parameters=(lambda: _stack_parameters(clients, stack)) if stack else None,
        stack_name=stack,
        env=env,
    )
    kind = chosen[0] if chosen else InputKind.burst
    scenario = str(options.scenario) if options.scenario is not None else None
    path = {InputKind.events: options.events, InputKind.scenario: scenario}.get(kind)
    return SimulatePlan(
        input=kind,
        rule_sets=resolved.rule_sets,
        tick=tick,
        origin=resolved.origin,
        path=path,
        s3_uris=s3_uris,
        plot=plot,
        start=start if options.start is not None or kind is InputKind.burst else None,
        seed=options.seed,
        bucket=options.bucket or (resolved.bucket if kind is InputKind.burst else None)
        or (DEFAULT_BUCKET if kind is InputKind.burst else None),
        burst=burst,
    )


def open_source(plan: SimulatePlan, clients: ClientFactory,
                on_bad: Callable[[int, str], None]) -> Source:
    """The plan's input as a stream of object-created events."""
    max_depth = max(r.prefix_depth for r in plan.rule_sets)
    if plan.input is InputKind.events:
        return EventLogSource(str(plan.path), on_bad)
    if plan.input is InputKind.scenario:
        scenario = load_scenario(str(plan.path), bucket=plan.bucket, depth=max_depth)
        if plan.start is not None:
            scenario.start = plan.start
        return scenario
    if plan.input is InputKind.from_s3:
        return S3ListingSource(clients.client("s3"), list(plan.s3_uris))
    burst = burst_from_flags(**plan.burst, depth=max_depth)
    return BurstSource([burst], bucket=str(plan.bucket), start=float(plan.start or 0), seed=plan.seed)


def check_read(plan: SimulatePlan, source: Source, runs: list[Run]) -> None:
    """An events file that held lines but not one S3 event is bad input (exit 2), not an empty result."""
    malformed = getattr(source, "malformed", 0)
    read = runs[0].counted + runs[0].duplicates + runs[0].ignored + runs[0].shallow if runs else 0
    if plan.input is InputKind.events and malformed and not read and not getattr(source, "other", 0):
        where = "stdin" if plan.path == "-" else plan.path
        raise ConfigError(f"--events {where}: no S3 event in it, {malformed:,} malformed line(s) "
                          "(see the warnings above)")


def _start(text: str | None) -> float:
    try:
        return parse_time(text or DEFAULT_START)
    except ConfigError:
        raise ConfigError(f"--start: {text!r} is not an ISO 8601 time") from None


def _stack_parameters(clients: ClientFactory, stack: str) -> Mapping[str, str]:
    # Imported here: ops.deployment brings botocore, which `simulate-batch --help` and the
    # offline sources never need (bench/bench_import_time.py).
    from omics_edp_cli.ops.deployment import describe_stack

    return describe_stack(clients.client("cloudformation"), stack).parameters
