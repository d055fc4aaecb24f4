"""Threshold sets for `simulate-batch`, from flags, environment, a parameters file or a stack.

Precedence, per threshold: flag > environment variable (the Lambda's names) > parameters
file or deployed stack > default. A flag may list several values (`--count 20,50`); the sets
compared are every combination.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from omics_edp_cli.edp.config import (
    ENV_TO_PARAMETER,
    P_BUCKET,
    BatchRules,
    parse_count,
    parse_depth,
    parse_globs,
    parse_seconds,
    rules_from_parameters,
)
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.deploy.parameters import CODE_PARAMETERS, load_template, read_parameters_file

MAX_SETS = 24


@dataclass(frozen=True)
class ThresholdFlags:
    """The raw flag values (None when not given)."""

    count: str | None = None
    quiet: str | None = None
    max_age: str | None = None
    depth: str | None = None
    ignore: str | None = None


@dataclass(frozen=True)
class Resolved:
    rule_sets: list[BatchRules]
    bucket: str | None
    origin: str


def parse_list(text: str, flag: str, parse: Callable[[str, str], Any]) -> list[Any]:
    values = [v.strip() for v in text.split(",")]
    if not all(values):
        raise ConfigError(f'{flag}: "{text}" has an empty value; give e.g. {flag} 20,50')
    return list(dict.fromkeys(parse(v, flag) for v in values))


def parse_flags(flags: ThresholdFlags) -> dict[str, list[Any]]:
    """Validate every flag (before any AWS call); only the given ones appear in the result."""
    out: dict[str, list[Any]] = {}
    if flags.count is not None:
        out["count"] = parse_list(flags.count, "--count", parse_count)
    if flags.quiet is not None:
        out["quiet_seconds"] = parse_list(flags.quiet, "--quiet", parse_seconds)
    if flags.max_age is not None:
        out["max_age_seconds"] = parse_list(
            flags.max_age, "--max-age", lambda v, w: parse_seconds(v, w, zero_ok=True))
    if flags.depth is not None:
        out["prefix_depth"] = parse_list(flags.depth, "--depth", parse_depth)
    if flags.ignore is not None:
        out["ignore"] = [parse_globs(flags.ignore)]
    sets = 1
    for values in out.values():
        sets *= len(values)
    if sets > MAX_SETS:
        raise ConfigError(f"{sets} threshold combinations; compare at most {MAX_SETS} at once")
    return out


def resolve(
    flags: ThresholdFlags,
    *,
    parameters_file: str | None = None,
    stack_parameters: Callable[[], Mapping[str, str]] | None = None,
    stack_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Every threshold set to simulate. `stack_parameters` is only called after flags validate."""
    if parameters_file and stack_parameters:
        raise ConfigError("give --parameters or --stack, not both")
    given = parse_flags(flags)
    env = os.environ if env is None else env
    base, origin, bucket = BatchRules(), "defaults", None
    source: Mapping[str, str] | None = None
    if parameters_file:
        source, origin = read_parameters_file(parameters_file), parameters_file
    elif stack_parameters is not None:
        source, origin = stack_parameters(), f"stack {stack_name}"
    if source is not None:
        check_edp_parameters(source, origin)
        base = rules_from_parameters(source, origin)
        bucket = source.get(P_BUCKET) or None
    from_env = {ENV_TO_PARAMETER[k]: v for k, v in env.items() if k in ENV_TO_PARAMETER}
    if any(v.strip() for k, v in from_env.items() if k != P_BUCKET):
        base = rules_from_parameters(from_env, "environment", base)
        origin += " + environment"
    if given:
        origin += " + flags"
    names = list(given)
    sets = [replace(base, **dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(given[n] for n in names))]
    return Resolved(sets or [base], bucket, origin)


def check_edp_parameters(values: Mapping[str, str], origin: str) -> None:
    """Refuse parameters the EDP template does not know (a processor's file or stack, a typo).

    Otherwise the thresholds it lacks would silently fall back to the defaults.
    """
    known = set(load_template("edp").parameters) | set(CODE_PARAMETERS)
    unknown = sorted(k for k in values if k not in known)
    if not unknown:
        return
    if any(k in load_template("processor").parameters for k in unknown):
        raise ConfigError(f"{origin}: {unknown[0]} is a processor parameter; simulate-batch needs the "
                          "EDP stack's parameters (BucketName, BucketThresholdEventCount, ...)")
    raise ConfigError(f"{origin}: unknown parameter {unknown[0]} for the EDP template "
                      f"(known: {', '.join(sorted(known - set(CODE_PARAMETERS)))})")
