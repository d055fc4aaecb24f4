"""S3 event parsing: every shape a user has, and clear errors for what is not one."""

from __future__ import annotations

import json

import pytest
from edp.samples import (
    classic_records,
    eventbridge_event,
    receive_message,
    sns_lambda_event,
    sns_notification,
    sqs_lambda_event,
)

from omics_edp_cli.edp.s3events import S3EventError, iso_time, parse_message, parse_time

KEY = "novaseq-01/run 7/Data/s_1+2.bcl"


def test_eventbridge_object_created(load_fixture):
    [event] = parse_message(load_fixture("s3/object-created.json"))
    assert event.bucket == "instrument-bucket"
    assert event.key == "novaseq-01/run-2026-03-02/Data/Intensities/BaseCalls/L001/s_1_1101.bcl.gz"
    assert event.sequencer == "00617F08299329D189"
    assert event.time == parse_time("2026-03-02T10:15:00Z")
    assert event.size == 524288


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: e,
        lambda e: json.dumps(e),
        lambda e: sqs_lambda_event([e]),
        lambda e: receive_message(e),
        lambda e: sns_notification(e),
        lambda e: sqs_lambda_event([sns_notification(e)]),
        lambda e: sns_lambda_event(e),
    ],
    ids=["eventbridge", "json-text", "in-sqs", "sqs-receive-message", "sns-envelope", "sns-in-sqs",
         "sns-lambda"],
)
def test_eventbridge_event_in_every_wrapper(wrap):
    [event] = parse_message(wrap(eventbridge_event(KEY, "SEQ1")))
    assert (event.key, event.sequencer, event.bucket) == (KEY, "SEQ1", "instrument-bucket")


@pytest.mark.parametrize(
    "wrap",
    [lambda e: e, lambda e: sqs_lambda_event([e]), lambda e: sns_notification(e),
     lambda e: sns_lambda_event(e), lambda e: e["Records"][0]],
    ids=["records", "in-sqs", "sns-envelope", "sns-lambda", "single-record"],
)
def test_classic_records_are_url_decoded(wrap):
    [event] = parse_message(wrap(classic_records([KEY], "SEQ2")))
    assert event.key == KEY  # encoded as novaseq-01/run+7/Data/s_1%2B2.bcl
    assert event.time == parse_time("2026-03-02T10:15:00.123Z")


def test_several_records_in_one_message():
    events = parse_message(classic_records(["a/b/1", "a/b/2", "a/c/3"], "S"))
    assert [e.key for e in events] == ["a/b/1", "a/b/2", "a/c/3"]


@pytest.mark.parametrize(
    "message",
    [
        eventbridge_event(KEY, "S", detail_type="Object Deleted"),
        classic_records([KEY], "S", name="ObjectRemoved:Delete"),
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"},
    ],
    ids=["eventbridge-deleted", "classic-removed", "test-event"],
)
def test_other_s3_events_yield_nothing(message):
    assert parse_message(message) == []


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{not json", "not JSON"),
        ([1, 2], "expected a JSON object"),
        ({"hello": "world"}, "not an S3 event"),
        ({"source": "aws.omics", "detail-type": "Run Status Change", "detail": {}}, "not aws.s3"),
        ({"source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T10:15:00Z",
          "detail": {"bucket": {"name": "b"}}}, "without 'object'"),
        ({"source": "aws.s3", "detail-type": "Object Created", "time": "yesterday",
          "detail": {"bucket": {"name": "b"}, "object": {"key": "a/b/c"}}}, "bad event time"),
        ({"Records": "nope"}, "not a list"),
        ({"Records": [{"eventName": "ObjectCreated:Put"}]}, "neither S3, SQS nor SNS"),
    ],
)
def test_malformed_messages_raise(message, error):
    with pytest.raises(S3EventError, match=error):
        parse_message(message)


def classic(key=KEY, bucket="instrument-bucket", time="2026-03-02T10:15:00Z", name="ObjectCreated:Put"):
    """One classic record, its fields as given (whatever their type)."""
    return {"Records": [{"eventName": name, "eventTime": time,
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (classic(key=5), r"object key is not a string \(int\)"),
        (classic(key=None), r"object key is not a string \(NoneType\)"),
        (classic(key={"a": 1}), r"object key is not a string \(dict\)"),
        (classic(bucket=7), r"bucket name is not a string \(int\)"),
        (classic(bucket=["b"]), r"bucket name is not a string \(list\)"),
        (classic(key=""), "empty bucket or key"),
        (classic(time=1772446500), "bad event time 1772446500: not a string"),
        (classic(time=["2026-03-02T10:15:00Z"]), "bad event time"),
        (classic(name=5), "without a string 'eventName'"),
        ({"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T10:15:00Z",
                       "s3": "instrument-bucket/a/b/c"}]}, "s3, bucket or object is not an object"),
        ({"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T10:15:00Z",
                       "s3": {"bucket": "b", "object": {"key": "a/b/c"}}}]}, "not an object"),
        ({"source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T10:15:00Z",
          "detail": {"bucket": {"name": "b"}, "object": {"key": 5}}}, "non-string bucket name or object key"),
        ({"source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T10:15:00Z",
          "detail": {"bucket": {"name": 5}, "object": {"key": "a/b/c"}}}, "non-string bucket name"),
        ({"source": "aws.s3", "detail-type": "Object Created", "time": ["2026-03-02T10:15:00Z"],
          "detail": {"bucket": {"name": "b"}, "object": {"key": "a/b/c"}}}, "bad event time"),
        ({"source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T10:15:00Z",
          "detail": "a/b/c"}, "detail, bucket or object is not an object"),
        ("[" * 100_000, "nested too deeply"),
    ],
    ids=["classic-int-key", "classic-null-key", "classic-dict-key", "classic-int-bucket",
         "classic-list-bucket", "classic-empty-key", "classic-number-time", "classic-list-time",
         "classic-int-event-name", "classic-s3-string", "classic-bucket-string", "eventbridge-int-key",
         "eventbridge-int-bucket", "eventbridge-list-time", "eventbridge-detail-string", "deep-json"],
)
def test_malformed_fields_are_s3_event_errors_in_every_wrapper(message, error):
    """A field of the wrong type is an S3EventError (never AttributeError or TypeError), bare or
    inside the SQS and SNS envelopes, so callers can set exactly that message aside."""
    wrappers = [message, sqs_lambda_event([message])]
    if not isinstance(message, str):  # (SNS would carry a JSON text as a string)
        wrappers.append(sns_notification(message))
    for wrapped in wrappers:
        with pytest.raises(S3EventError, match=error):
            parse_message(wrapped)


def test_times_round_trip():
    assert iso_time(parse_time("2026-03-02T10:15:00Z")) == "2026-03-02T10:15:00Z"
    assert iso_time(parse_time("2026-03-02T10:15:00.250Z")) == "2026-03-02T10:15:00.250Z"
    assert parse_time("2026-03-02T11:15:00+01:00") == parse_time("2026-03-02T10:15:00Z")
