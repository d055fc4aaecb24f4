"""`omics-edp simulate-batch` through the CLI runner: inputs, thresholds, output contract, exit codes."""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from conftest import FIXTURES
from edp.samples import (
    classic_records,
    eventbridge_event,
    receive_message,
    sns_notification,
    sqs_lambda_event,
)
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app
from omics_edp_cli.cli.context import AppContext
from omics_edp_cli.edp.config import BatchRules
from omics_edp_cli.edp.engine import MIN_DEDUPE_WINDOW
from omics_edp_cli.edp.s3events import ObjectEvent, iso_time, parse_time
from omics_edp_cli.ops.simulate.eventlog import EventLogSource
from omics_edp_cli.ops.simulate.execute import Run, simulate
from omics_edp_cli.ops.simulate.report import summary
from omics_edp_cli.ops.simulate.sources import S3ListingSource

runner = CliRunner()
PARAMS = str(FIXTURES / "params/edp.parameters.json")
T = "2026-03-02T10:{:02d}:{:02d}Z"
T0_SIM = parse_time("2026-03-02T10:00:00Z")


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def as_json(*args: str, input: str | None = None) -> dict:
    result = invoke("-o", "json", "simulate-batch", *args, input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_lines(path: Path, messages: list) -> str:
    path.write_text("".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages))
    return str(path)


# -- synthetic bursts and output -------------------------------------------------------------------


def test_synthetic_burst_table_output():
    result = invoke("simulate-batch", "--prefixes", "2", "--files", "45", "--interval", "5", "--tick", "0")
    assert result.exit_code == 0, result.output
    assert "Emitted batches (count 20 · quiet 5m · depth 2 · max-age off · tick exact)" in result.stdout
    assert "burst/run-1/" in result.stdout and "burst/run-2/" in result.stdout
    assert "6 (4 count, 2 quiet)" in result.stdout
    assert "2 (2 split into several batches)" in result.stdout
    assert "thresholds from defaults" in result.stderr


def test_json_output_is_the_exact_events_a_consumer_receives():
    data = as_json("--prefixes", "3", "--files", "30", "--interval", "1", "--count", "25")
    assert data["thresholds"]["count"] == 25 and data["thresholds"]["tick_seconds"] == 60
    assert data["summary"]["counted"] == 90 and data["summary"]["batches"] == 6
    event = data["events"][0]
    assert set(event) == {"version", "detail-type", "source", "time", "resources", "detail"}
    assert (event["source"], event["detail-type"]) == ("com.quiltdata.edp", "package-objects-ready")
    assert event["resources"] == ["arn:aws:s3:::instrument-bucket"]
    assert set(event["detail"]) == {"version", "bucket", "prefix", "count", "batch_id", "first_event_at",
                                    "last_event_at", "trigger"}
    assert [e["detail"]["count"] for e in data["events"]] == [25, 25, 25, 5, 5, 5]
    times = [e["time"] for e in data["events"]]
    assert times == sorted(times)
    # 5 files remain after the count batch; quiet deadline at 08:00:29 + 300 s, next tick 08:05:60
    assert data["events"][-1]["time"] == "2026-01-05T08:06:00Z"
    assert data["events"][-1]["detail"]["first_event_at"] == "2026-01-05T08:00:25Z"


def test_comparison_of_several_threshold_sets():
    result = invoke("simulate-batch", "--prefixes", "3", "--files", "120", "--interval", "5",
                    "--count", "20,50", "--quiet", "60,5m")
    assert result.exit_code == 0, result.output
    assert "4 threshold sets (depth 2 · max age off · tick 1m)" in result.stdout
    data = as_json("--prefixes", "3", "--files", "120", "--interval", "5", "--count", "20,50",
                   "--quiet", "60,5m")
    runs = data["runs"]
    assert [(r["thresholds"]["count"], r["thresholds"]["quiet_seconds"]) for r in runs] == [
        (20, 60.0), (20, 300.0), (50, 60.0), (50, 300.0)]
    assert [r["summary"]["batches"] for r in runs] == [18, 18, 9, 9]
    assert all(r["summary"]["counted"] == 360 for r in runs)


def test_max_age_and_duplicates_in_a_synthetic_burst():
    data = as_json("--prefixes", "1", "--files", "200", "--interval", "20", "--count", "1000",
                   "--quiet", "60", "--max-age", "30m", "--duplicates", "0.2", "--seed", "3")
    assert data["summary"]["duplicates"] > 10 and data["summary"]["counted"] == 200
    assert data["summary"]["by_trigger"] == {"quiet": 1, "max-age": 2}


def test_a_scenario_file(tmp_path: Path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "bucket: lab-bucket\n"
        "start: 2026-03-02T08:00:00Z\n"
        "bursts:\n"
        "  - prefix: novaseq-01/run-{i}/\n    prefixes: 2\n    files: 30\n    interval: 2\n"
        "  - prefix: miseq/run-9\n    at: 1h\n    files: 5\n    interval: 1\n"
        "  - prefix: scratch/tmp\n    at: '2026-03-02T09:30:00Z'\n    files: 3\n")
    data = as_json("--scenario", str(scenario), "--ignore", "scratch/*", "--tick", "0")
    assert data["summary"]["counted"] == 65 and data["summary"]["ignored"] == 3
    batches = [(e["detail"]["bucket"], e["detail"]["prefix"], e["detail"]["count"]) for e in data["events"]]
    assert batches == [("lab-bucket", "novaseq-01/run-1/", 20), ("lab-bucket", "novaseq-01/run-2/", 20),
                       ("lab-bucket", "novaseq-01/run-1/", 10), ("lab-bucket", "novaseq-01/run-2/", 10),
                       ("lab-bucket", "miseq/run-9/", 5)]
    assert data["events"][-1]["detail"]["first_event_at"] == "2026-03-02T09:00:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bursts: []\n", "expected a mapping with a non-empty 'bursts' list"),
        ("bursts:\n  - files: 0\n", "bursts[0].files: 0 is not a whole number of 1 or more"),
        ("bursts:\n  - files: 3\n    colour: red\n", "bursts[0]: unknown key(s): colour"),
        ("bursts: [\n", "not valid YAML"),
    ],
)
def test_scenario_errors_exit_2(tmp_path: Path, text: str, message: str):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(text)
    result = invoke("simulate-batch", "--scenario", str(scenario))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stdout == ""


# -- event logs ----------------------------------------------------------------------------------

SHAPES = {
    "eventbridge": lambda k, s, t: eventbridge_event(k, s, time=t),
    "eventbridge-in-sqs": lambda k, s, t: sqs_lambda_event([eventbridge_event(k, s, time=t)]),
    "sqs-receive-message": lambda k, s, t: receive_message(eventbridge_event(k, s, time=t)),
    "s3-records": lambda k, s, t: {"Records": [{**classic_records([k], s)["Records"][0], "eventTime": t}]},
    "s3-records-in-sns": lambda k, s, t: sns_notification(
        {"Records": [{**classic_records([k], s)["Records"][0], "eventTime": t}]}),
    "s3-records-in-sns-in-sqs": lambda k, s, t: sqs_lambda_event([sns_notification(
        {"Records": [{**classic_records([k], s)["Records"][0], "eventTime": t}]})]),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_events_file_in_every_shape(tmp_path: Path, shape: str):
    make = SHAPES[shape]
    lines = [make(f"novaseq-01/run 1/f{i}.bcl", f"S{i}", T.format(0, i)) for i in range(25)]
    lines += [make("novaseq-01/run 1/f3.bcl", "S3", T.format(0, 40))]  # a repeated delivery
    data = as_json("--events", write_lines(tmp_path / "events.jsonl", lines), "--tick", "0")
    assert data["summary"]["counted"] == 25 and data["summary"]["duplicates"] == 1
    details = [e["detail"] for e in data["events"]]
    assert [(d["prefix"], d["count"], d["trigger"]) for d in details] == [
        ("novaseq-01/run 1/", 20, "count"), ("novaseq-01/run 1/", 5, "quiet")]
    assert data["events"][1]["time"] == "2026-03-02T10:05:24Z"


def test_a_malformed_line_is_reported_with_its_number_and_the_rest_is_processed(tmp_path: Path):
    lines = [eventbridge_event(f"a/b/f{i}", f"S{i}", time=T.format(1, i)) for i in range(6)]
    lines.insert(2, "{not json at all")
    lines.insert(5, {"hello": "world"})
    lines.append("")  # blank lines are fine
    lines.append(eventbridge_event("a/b/deleted", "S9", time=T.format(1, 9), detail_type="Object Deleted"))
    path = write_lines(tmp_path / "events.jsonl", lines)
    result = invoke("-o", "json", "simulate-batch", "--events", path)
    assert result.exit_code == 0, result.output
    assert "warning: line 3: not JSON" in result.stderr
    assert "warning: line 6: not an S3 event" in result.stderr
    data = json.loads(result.stdout)
    s = data["summary"]
    assert (s["counted"], s["malformed"], s["not_object_created"]) == (6, 2, 1)


def test_a_line_with_a_malformed_field_is_reported_with_its_number_and_the_rest_is_processed(tmp_path: Path):
    """Well-formed JSON whose fields have the wrong type (an int key, a list bucket, deep nesting)."""
    int_key = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T10:15:00Z",
                            "s3": {"bucket": {"name": "b"}, "object": {"key": 5}}}]}
    list_bucket = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T10:15:00Z",
                                "s3": {"bucket": {"name": ["b"]}, "object": {"key": "a/b/x"}}}]}
    lines = [eventbridge_event(f"a/b/f{i}", f"S{i}", time=T.format(1, i)) for i in range(6)]
    lines.insert(1, int_key)
    lines.insert(4, sqs_lambda_event([list_bucket]))
    lines.insert(6, "[" * 100_000)
    path = write_lines(tmp_path / "events.jsonl", lines)
    result = invoke("-o", "json", "simulate-batch", "--events", path)
    assert result.exit_code == 0, result.output
    assert "warning: line 2: S3 notification record whose object key is not a string (int)" in result.stderr
    assert "warning: line 5: S3 notification record whose bucket name is not a string (list)" in result.stderr
    assert "warning: line 7: JSON nested too deeply" in result.stderr
    s = json.loads(result.stdout)["summary"]
    assert (s["counted"], s["malformed"]) == (6, 3)


def test_events_from_stdin():
    text = "\n".join(json.dumps(eventbridge_event(f"a/b/{i}", f"S{i}")) for i in range(3))
    data = as_json("--events", "-", input=text)
    assert data["summary"]["counted"] == 3


def test_events_file_not_found_exits_2():
    result = invoke("simulate-batch", "--events", "/no/such/file.jsonl")
    assert result.exit_code == 2 and "Error: /no/such/file.jsonl: file not found" in result.stderr


# -- thresholds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "--count: 0 is not allowed, use 1 to 15000"),
        (["--count", "-3"], "--count: -3 is not allowed"),
        (["--count", "many"], "--count: 'many' is not a whole number"),
        (["--count", "20,"], '--count: "20," has an empty value'),
        (["--quiet", "0"], "--quiet: 0 seconds is not allowed, use more than 0"),
        (["--quiet", "-60"], "--quiet: -60 seconds is not allowed"),
        (["--quiet", "soon"], "--quiet: 'soon' is not a number of seconds"),
        (["--quiet", "nan"], "--quiet: nan seconds is not allowed"),
        (["--max-age", "-1"], "--max-age: -1 seconds is not allowed, use 0 (off) or more"),
        (["--depth", "0"], "--depth: 0 is not allowed"),
        (["--tick", "-5"], "--tick: -5 seconds is not allowed"),
        (["--count", "1,2,3,4,5", "--quiet", "1,2,3,4,5"], "25 threshold combinations"),
        (["--parameters", PARAMS, "--stack", "prod-edp"], "give --parameters or --stack, not both"),
        (["--events", "a.jsonl", "--from-s3", "s3://bucket/x"], "give one input: --events or --from-s3"),
        (["--events", "a.jsonl", "--files", "3"], "--files describe a synthetic burst"),
        (["--from-s3", "bucket/x"], "is not an s3://bucket/prefix URI"),
        (["--start", "tomorrow"], "--start: 'tomorrow' is not an ISO 8601 time"),
        (["--prefixes", "0"], "--prefixes: 0 is not allowed, use 1 or more"),
        (["--files", "0"], "--files: 0 is not allowed, use 1 or more"),
        (["--prefixes", "0", "--files", "0"], "--prefixes: 0 is not allowed"),
        (["--prefixes", "-2"], "--prefixes: -2 is not allowed"),
        (["--interval", "-1"], "--interval: -1 seconds is not allowed, use 0 or more"),
        (["--jitter", "nan"], "--jitter: nan seconds is not allowed"),
        (["--duplicates", "1.5"], "--duplicates: 1.5 is not a fraction between 0 and 1"),
    ],
)
def test_bad_thresholds_and_usage_exit_2_with_one_line(args, message):
    result = invoke("simulate-batch", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_zero_is_a_value_not_the_default():
    """0 seconds of interval and jitter are meaningful: all files of a prefix at the same time."""
    data = as_json("--prefixes", "2", "--files", "5", "--interval", "0", "--jitter", "0", "--tick", "0")
    assert data["summary"]["counted"] == 10
    assert {e["detail"]["first_event_at"] for e in data["events"]} == {"2026-01-05T08:00:00Z"}
    assert {e["detail"]["last_event_at"] for e in data["events"]} == {"2026-01-05T08:00:00Z"}


@mock_aws
def test_burst_flags_are_checked_before_any_aws_call():
    # Read first, the stack would give "stack 'no-such-stack' not found" (also exit 2).
    result = invoke("simulate-batch", "--stack", "no-such-stack", "--prefixes", "0")
    assert result.exit_code == 2 and result.stderr.startswith("Error: --prefixes: 0 is not allowed")


def test_thresholds_from_a_parameters_file_and_flags_over_them(tmp_path: Path):
    lines = [eventbridge_event(k, f"S{i}", time=T.format(0, i)) for i, k in
             enumerate(["raw/x/1", "scratch/y/2", "top.txt", "a/b/1", "a/b/2"])]
    path = write_lines(tmp_path / "e.jsonl", lines)
    result = invoke("-o", "json", "simulate-batch", "--events", path, "--parameters", PARAMS)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["thresholds"] == {"prefix_depth": 2, "count": 20, "quiet_seconds": 300.0,
                                  "max_age_seconds": None, "ignore": ["raw/*", "scratch/*"],
                                  "tick_seconds": 60.0}
    assert (data["summary"]["ignored"], data["summary"]["shallow"], data["summary"]["counted"]) == (2, 1, 2)
    assert f"thresholds from {PARAMS}" in result.stderr
    flagged = as_json("--events", path, "--parameters", PARAMS, "--count", "2", "--ignore", "")
    assert flagged["thresholds"]["count"] == 2 and flagged["thresholds"]["ignore"] == []
    assert flagged["summary"]["by_trigger"] == {"count": 1, "quiet": 2}  # raw/x/ and scratch/y/ now count


def test_a_bad_parameters_file_exits_2(tmp_path: Path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps([{"ParameterKey": "BucketThresholdEventCount", "ParameterValue": "0"}]))
    result = invoke("simulate-batch", "--parameters", str(bad))
    assert result.exit_code == 2
    assert f"BucketThresholdEventCount in {bad}: 0 is not allowed" in result.stderr


def test_a_processor_parameters_file_is_refused_naming_a_key():
    """Rough edge 6: a processor's parameters file used to be read as EDP thresholds: all defaults."""
    result = invoke("simulate-batch", "--parameters", str(FIXTURES / "params/processor.parameters.json"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "ApiServer is a processor parameter" in result.stderr and result.stdout == ""


def test_an_unknown_parameter_is_refused_naming_it(tmp_path: Path):
    typo = tmp_path / "p.json"
    typo.write_text(json.dumps({"BucketName": "b", "BucketThresholdCount": "5"}))
    result = invoke("simulate-batch", "--parameters", str(typo))
    assert result.exit_code == 2, result.output
    assert f"Error: {typo}: unknown parameter BucketThresholdCount for the EDP template" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@mock_aws
def test_a_processor_stack_is_refused():
    template = {"Parameters": {"ApiServer": {"Type": "String", "Default": "https://x"}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    boto3.client("cloudformation").create_stack(StackName="prod-omics", TemplateBody=json.dumps(template))
    result = invoke("simulate-batch", "--stack", "prod-omics")
    assert result.exit_code == 2, result.output
    assert "Error: stack prod-omics: ApiServer is a processor parameter" in result.stderr


def test_an_events_file_of_only_malformed_lines_exits_2(tmp_path: Path):
    """Rough edge 6: nothing usable in the input used to exit 0 with an empty result.

    Exit 2, not 1: the input is wrong, nothing was attempted that could fail.
    """
    path = write_lines(tmp_path / "e.jsonl", ["{not json", {"hello": "world"}, ""])
    result = invoke("-o", "json", "simulate-batch", "--events", path)
    assert result.exit_code == 2, result.output
    assert "warning: line 1: not JSON" in result.stderr
    assert "warning: line 2: not an S3 event" in result.stderr
    assert f"Error: --events {path}: no S3 event in it, 2 malformed line(s)" in result.stderr
    assert result.stdout == ""


def test_an_events_file_of_deletions_only_is_not_an_error(tmp_path: Path):
    """S3 events that are not creations are events: an empty result, exit 0."""
    deleted = eventbridge_event("a/b/x", "S1", time=T.format(1, 1), detail_type="Object Deleted")
    path = write_lines(tmp_path / "e.jsonl", ["{not json", deleted])
    data = as_json("--events", path)
    assert (data["summary"]["malformed"], data["summary"]["not_object_created"]) == (1, 1)


def test_environment_thresholds_sit_between_flags_and_files(monkeypatch):
    monkeypatch.setenv("BUCKET_THRESHOLD_EVENT_COUNT", "7")
    data = as_json("--prefixes", "1", "--files", "10", "--parameters", PARAMS)
    assert data["thresholds"]["count"] == 7
    assert as_json("--prefixes", "1", "--files", "10", "--count", "4")["thresholds"]["count"] == 4


TEMPLATE = {
    "Parameters": {name: {"Type": "String", "Default": value} for name, value in {
        "BucketName": "instrument-bucket", "BucketIgnorePrefixes": "raw/*", "BucketPrefixDepth": "3",
        "BucketThresholdDuration": "120", "BucketThresholdEventCount": "10",
        "EventBusName": "quilt-edp"}.items()},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}


@mock_aws
def test_thresholds_from_a_deployed_stack():
    boto3.client("cloudformation").create_stack(
        StackName="prod-edp", TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "BucketThresholdEventCount", "ParameterValue": "12"}])
    result = invoke("-o", "json", "simulate-batch", "--stack", "prod-edp", "--prefixes", "1", "--files", "30")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    t = data["thresholds"]
    assert (t["count"], t["quiet_seconds"], t["prefix_depth"]) == (12, 120.0, 3)
    assert data["events"][0]["detail"]["prefix"] == "burst/run-1/part-2/"
    assert "thresholds from stack prod-edp" in result.stderr


@mock_aws
def test_a_missing_stack_exits_2():
    result = invoke("simulate-batch", "--stack", "nope")
    assert result.exit_code == 2 and "stack nope not found" in result.stderr


# -- an S3 listing -------------------------------------------------------------------------------


@mock_aws
def test_from_s3_uses_last_modified_and_says_it_is_approximate():
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="instrument-bucket")
    for i in range(25):
        s3.put_object(Bucket="instrument-bucket", Key=f"novaseq-02/run-{i % 2}/f{i}.bcl", Body=b"x")
    s3.put_object(Bucket="instrument-bucket", Key="novaseq-02/readme.txt", Body=b"x")
    s3.put_object(Bucket="instrument-bucket", Key="other/run/f.bcl", Body=b"x")
    result = invoke("-o", "json", "simulate-batch", "--from-s3", "s3://instrument-bucket/novaseq-02/",
                    "--count", "10")
    assert result.exit_code == 0, result.output
    assert "LastModified" in result.stderr and "approximate" in result.stderr
    data = json.loads(result.stdout)
    assert (data["summary"]["counted"], data["summary"]["shallow"]) == (25, 1)
    assert sorted((e["detail"]["prefix"], e["detail"]["count"]) for e in data["events"]) == [
        ("novaseq-02/run-0/", 3), ("novaseq-02/run-0/", 10),
        ("novaseq-02/run-1/", 2), ("novaseq-02/run-1/", 10)]


def test_s3_listing_sorts_beyond_memory_by_spilling():
    class Lister:  # a paginator over keys whose times run backwards, 3 pages
        def get_paginator(self, name):
            return self

        def paginate(self, **_):
            for page in range(3):
                yield {"Contents": [{"Key": f"a/b/{page}-{i}", "ETag": '"e"', "Size": 1,
                                     "LastModified": datetime.fromtimestamp(1e9 - page * 100 - i, UTC)}
                                    for i in range(50)]}

    source = S3ListingSource(Lister(), "s3://bucket-x/a/", chunk=40)
    times = [e.time for e in source]
    assert len(times) == 150 and times == sorted(times) and source.listed == 150


# -- streaming -----------------------------------------------------------------------------------


def test_memory_grows_with_open_batches_not_with_events():
    def stream():  # 50,000 events over 5,000 prefixes, ten at a time, one prefix after another
        for i in range(50_000):
            yield ObjectEvent("b", f"run/p{i // 10}/f{i}", "s", 1e9 + i)

    [run] = simulate(stream(), [BatchRules(count=10, quiet_seconds=60)], tick=60)
    result = summary(run)
    assert result["batches"] == 5_000 and result["counted"] == 50_000
    # only prefixes inside the de-duplication window (15 min ≈ 90 prefixes here) are held
    assert result["peak_prefixes_held"] < 150


def test_an_events_file_is_streamed_and_memory_is_bounded_by_open_batches(tmp_path: Path):
    """40,000 events over 8 prefixes through the `--events` path (the file, EventLogSource, the
    parser): what is held stays within the open batches and the de-duplication window."""
    prefixes, events, count, rate = 8, 40_000, 50, 2.0  # rate: events per second
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(events):
            key, seq, when = f"novaseq-0{i % prefixes}/run-1/f{i}.bcl", f"S{i}", iso_time(T0_SIM + i / rate)
            message = (eventbridge_event(key, seq, time=when) if i % 100 else  # and some other shapes
                       sqs_lambda_event([{"Records": [{**classic_records([key], seq)["Records"][0],
                                                      "eventTime": when}]}]))
            out.write(json.dumps(message) + "\n")
    bad: list[int] = []
    source = EventLogSource(str(path), lambda number, _: bad.append(number))
    run = Run(BatchRules(count=count, quiet_seconds=60), tick=60.0)
    held_prefixes = held_digests = 0
    read: list[int] = []
    for n, event in enumerate(source, 1):
        run.feed(event)
        if n % 1000 == 0:
            states = run.store.everything()
            digests = [len(s.open.members if s.open else ()) + sum(len(r.members) for r in s.recent)
                       for s in states]
            held_prefixes, held_digests = max(held_prefixes, len(digests)), max(held_digests, sum(digests))
            read.append(source.position)
    run.finish()
    assert bad == [] and run.counted == events and run.batches == events // count
    # Read as it goes: a thousand events in, a small part of the file has been read.
    assert read == sorted(read) and read[0] < source.total / 10 and read[-1] == source.total
    assert held_prefixes <= prefixes
    # Open batches (under `count` each) plus batches emitted within the window (15 min here).
    window = max(60.0, MIN_DEDUPE_WINDOW)
    assert held_digests <= prefixes * count + window * rate + prefixes * count < events / 10
    # The same file through the CLI: the summary's own counter agrees.
    data = as_json("--events", str(path), "--count", str(count), "--quiet", "60")
    assert data["summary"]["counted"] == events and data["summary"]["batches"] == events // count
    assert 1 <= data["summary"]["peak_prefixes_held"] <= prefixes


def test_time_parsing_for_the_samples():
    assert parse_time(T.format(0, 0)) == parse_time("2026-03-02T10:00:00+00:00")


def test_a_long_input_shows_a_progress_bar_on_a_terminal():
    err = io.StringIO()
    context = AppContext(err=Console(file=err, force_terminal=True, width=100))
    args = ["simulate-batch", "--prefixes", "100", "--files", "1000", "--interval", "0.1"]
    result = runner.invoke(app, args, obj=context)
    assert result.exit_code == 0, result.output
    assert "simulating" in err.getvalue() and "100,000 events" in err.getvalue()
    quiet = invoke("simulate-batch", "--prefixes", "2", "--files", "5")  # short input: no bar
    assert "simulating" not in quiet.stderr


def test_json_output_lists_each_batchs_object_keys_by_batch_id():
    data = as_json("--prefixes", "2", "--files", "30", "--interval", "1", "--count", "25")
    ids = [e["detail"]["batch_id"] for e in data["events"]]
    assert list(data["objects"]) == ids
    assert [len(data["objects"][i]) for i in ids] == [e["detail"]["count"] for e in data["events"]]
    for event in data["events"]:
        keys = data["objects"][event["detail"]["batch_id"]]
        assert all(k.startswith(event["detail"]["prefix"]) for k in keys)
    every = [k for i in ids for k in data["objects"][i]]
    assert len(every) == len(set(every)) == 60


@mock_aws
def test_from_s3_takes_several_buckets():
    s3 = boto3.client("s3")
    for bucket in ("instrument-a", "instrument-b"):
        s3.create_bucket(Bucket=bucket)
        for i in range(4):
            s3.put_object(Bucket=bucket, Key=f"nova/run-1/f{i}.bcl", Body=b"x")
    result = invoke("-o", "json", "simulate-batch", "--from-s3", "s3://instrument-a/nova/",
                    "--from-s3", "s3://instrument-b/", "--count", "10")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted((e["detail"]["bucket"], e["detail"]["count"]) for e in data["events"]) == [
        ("instrument-a", 4), ("instrument-b", 4)]
    assert sorted(data["objects"][e["detail"]["batch_id"]][0] for e in data["events"]) == [
        "nova/run-1/f0.bcl"] * 2


# -- the plot ---------------------------------------------------------------------------------------


def test_plot_draws_one_bar_per_batch_and_a_tick_per_object(tmp_path: Path):
    path = tmp_path / "timeline.svg"
    result = invoke("-o", "json", "simulate-batch", "--prefixes", "2", "--files", "45", "--interval", "5",
                    "--tick", "0", "--count", "20,50", "--plot", str(path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ids = [e["detail"]["batch_id"] for run in data["runs"] for e in run["events"]]
    assert len(ids) == 6 + 2  # count 20: 4 count + 2 quiet; count 50: 2 quiet
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert sorted(re.findall(r'id="batch-([0-9a-f-]{36})"', svg)) == sorted(ids)
    assert "timeline drawn to" in result.stderr and "8 batch(es), 180 object(s), 2 panel(s)" in result.stderr
    png = tmp_path / "timeline.png"
    assert invoke("simulate-batch", "--files", "5", "--plot", str(png)).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_plot_errors_are_one_line_before_anything_runs(tmp_path: Path, monkeypatch):
    result = invoke("simulate-batch", "--plot", str(tmp_path / "timeline.jpg"))
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"Error: --plot {tmp_path / 'timeline.jpg'}: use a .png or .svg file name")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the [plot] extra were not installed
    result = invoke("simulate-batch", "--plot", str(tmp_path / "timeline.png"))
    assert result.exit_code == 2 and result.stderr.strip() == (
        "Error: --plot needs matplotlib, which is not installed: pip install 'omics-edp-cli[plot]'")
    assert not (tmp_path / "timeline.png").exists()
