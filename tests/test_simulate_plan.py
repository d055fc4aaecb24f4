"""simulate-batch's plan: options in, one input and the threshold sets out, no AWS call for flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.ops.simulate.eventlog import EventLogSource
from omics_edp_cli.ops.simulate.plan import (
    BurstFlags,
    InputKind,
    SimulateOptions,
    open_source,
    plan_simulate,
)
from omics_edp_cli.ops.simulate.sources import DEFAULT_BUCKET, BurstSource
from omics_edp_cli.ops.simulate.thresholds import ThresholdFlags


class NoAws(ClientFactory):
    """A factory that fails the test if a plan asks for any client."""

    def client(self, service: str) -> object:
        raise AssertionError(f"the plan asked for a {service} client")


def test_no_input_is_a_synthetic_burst_with_defaults():
    plan = plan_simulate(SimulateOptions(), NoAws(), env={})
    assert plan.input is InputKind.burst
    assert plan.burst == {"prefixes": 3, "files": 50, "interval": 2.0, "jitter": 0.0, "duplicates": 0.0}
    assert plan.bucket == DEFAULT_BUCKET and plan.tick == 60 and plan.origin == "defaults"
    assert isinstance(open_source(plan, NoAws(), lambda n, r: None), BurstSource)


def test_flags_give_the_threshold_sets_and_the_parameters_file_the_bucket():
    plan = plan_simulate(SimulateOptions(thresholds=ThresholdFlags(count="20,50"), tick="0",
                                         parameters=str(FIXTURES / "params/edp.parameters.json")),
                         NoAws(), env={})
    assert [r.count for r in plan.rule_sets] == [20, 50] and plan.tick == 0
    assert plan.bucket == "instrument-bucket" and plan.origin.endswith("+ flags")


def test_an_events_file_is_the_input(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    path.write_text("")
    plan = plan_simulate(SimulateOptions(events=str(path)), NoAws(), env={})
    assert (plan.input, plan.path, plan.start) == (InputKind.events, str(path), None)
    assert isinstance(open_source(plan, NoAws(), lambda n, r: None), EventLogSource)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SimulateOptions(events="a", scenario=Path("b")), "give one input: --events or --scenario"),
        (SimulateOptions(events="a", burst=BurstFlags(files=3)), "--files describe a synthetic burst"),
        (SimulateOptions(burst=BurstFlags(prefixes=0)), "--prefixes: 0 is not allowed"),
        (SimulateOptions(tick="-1"), "--tick: -1 seconds is not allowed"),
        (SimulateOptions(start="tomorrow"), "--start: 'tomorrow' is not an ISO 8601 time"),
        (SimulateOptions(from_s3="bucket/x"), "is not an s3://bucket/prefix URI"),
    ],
)
def test_bad_options_fail_before_any_aws_call(options: SimulateOptions, message: str):
    with pytest.raises(ConfigError, match=message.replace("'", ".")):
        plan_simulate(options, NoAws(), env={})


def test_a_stack_is_read_only_after_the_flags_check():
    with pytest.raises(ConfigError, match="--count"):
        options = SimulateOptions(stack="prod-edp", thresholds=ThresholdFlags(count="0"))
        plan_simulate(options, NoAws(), env={})
