"""The event log's fast decoder (msgspec) against the general way (`json.loads` and
`parse_message`): on every line, the same events or the fast decoder declines."""

from __future__ import annotations

import io
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omics_edp_cli.edp.s3events import S3EventError
from omics_edp_cli.ops.simulate.eventlog import EventLogSource, fast_object, general_events

EVENT = {
    "version": "0", "id": "2d1c2f1e-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
    "source": "aws.s3", "account": "123456789012", "time": "2026-03-02T10:00:00Z",
    "region": "us-east-1", "resources": ["arn:aws:s3:::instrument-bucket"],
    "detail": {"version": "0", "bucket": {"name": "instrument-bucket"},
               "object": {"key": "run-1/Data/s_1.bcl.gz", "size": 524288,
                          "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "0A1B2C3D4E5F"},
               "request-id": "N4N7GDK58NMKJ12R", "reason": "PutObject"},
}
LINE = json.dumps(EVENT) + "\n"


def general(line: str) -> object:
    """What the general way makes of a line: its events' fields, or the kind of error."""
    try:
        return [(e.bucket, e.key, e.sequencer, e.time, e.size, e.etag, e.version_id, e.digest)
                for e in general_events(line)]
    except S3EventError as e:
        return ("S3EventError", str(e))
    except (ValueError, RecursionError) as e:
        return type(e).__name__


def fast(line: str) -> object:
    try:
        event = fast_object(line)
    except S3EventError as e:
        return ("S3EventError", str(e))
    if event is None:
        return None
    return [(event.bucket, event.key, event.sequencer, event.time, event.size, event.etag,
             event.version_id, event.digest)]


def agrees(line: str) -> None:
    got = fast(line)
    if got is not None:  # declining is always allowed: the general way takes the line then
        assert got == general(line), line


def test_a_plain_event_takes_the_fast_way_with_the_same_fields() -> None:
    got = fast(LINE)
    assert got is not None and got == general(LINE)
    assert got[0][:3] == ("instrument-bucket", "run-1/Data/s_1.bcl.gz", "0A1B2C3D4E5F")  # type: ignore[index]


@pytest.mark.parametrize("edit", [
    lambda e: e.pop("time"), lambda e: e.update(time=None), lambda e: e.update(time=5),
    lambda e: e.update(time="yesterday"), lambda e: e["detail"]["object"].pop("key"),
    lambda e: e["detail"]["object"].update(key=""), lambda e: e["detail"]["object"].update(key=7),
    lambda e: e["detail"]["bucket"].update(name=["b"]), lambda e: e["detail"].update(object="x"),
    lambda e: e.update(detail=None), lambda e: e.pop("detail"),
    lambda e: e["detail"]["object"].pop("sequencer"),
    lambda e: e["detail"]["object"].update(sequencer=""),
    lambda e: e["detail"]["object"].update(sequencer=12), lambda e: e["detail"]["object"].update(size=1.5),
    lambda e: e["detail"]["object"].update(etag=None),
    lambda e: e["detail"]["object"].update({"version-id": "v1"}),
    lambda e: e.update({"detail-type": "Object Deleted"}), lambda e: e.update(source="aws.ec2"),
    lambda e: e["detail"]["object"].update(key="a\ud800b"),
])
def test_edited_events_give_the_same_result_either_way(edit) -> None:
    event = json.loads(LINE)
    edit(event)
    agrees(json.dumps(event) + "\n")


@pytest.mark.parametrize("line", [
    '{"detail-type": "Object Created", "source": "aws.s3", "time": NaN}\n',
    LINE.replace('"size": 524288', '"size": 1e400'), LINE.replace('"size": 524288', '"size": Infinity'),
    LINE.replace('"size": 524288', '"size": 01'),
    LINE.replace('"reason": "PutObject"', '"reason": "Put\tObject"'),
    LINE.replace('"source": "aws.s3"', '"source": "aws.s3", "source": "aws.s3"'),
    LINE.replace('"source": "aws.s3"', '"source": "other", "source": "aws.s3"'),
    LINE.replace('"source": "aws.s3"', '"source": "aws.s3", "source": "other"'),
    LINE.rstrip("\n") + " trailing\n", "  " + LINE, LINE.rstrip("\n") + "\r\n",
    "[" * 5000 + "]" * 5000 + "\n",
])
def test_odd_json_gives_the_same_result_either_way(line: str) -> None:
    agrees(line)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(LINE) - 1), st.integers(0, 3), st.text(max_size=3))
def test_mutated_lines_give_the_same_result_either_way(at: int, cut: int, insert: str) -> None:
    """Any bytes cut from or put into a real event (bad JSON, odd values, other shapes)."""
    agrees(LINE[:at] + insert + LINE[at + cut:])


def test_the_source_reads_fast_and_general_lines_alike(tmp_path) -> None:
    other = dict(EVENT, **{"detail-type": "Object Created"})
    other["detail"] = dict(EVENT["detail"], object={"key": "run-2/x", "sequencer": "01"})
    classic = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T10:00:01Z",
                            "s3": {"bucket": {"name": "b"},
                                   "object": {"key": "run+3/y", "sequencer": "02"}}}]}
    path = tmp_path / "events.jsonl"
    path.write_text(LINE + json.dumps(other) + "\n" + "not json\n" + json.dumps(classic) + "\n\n"
                    + LINE.replace("aws.s3", "aws.s3", 1).replace('"time": "2026', '"time": "x2026'))
    bad: list[tuple[int, str]] = []
    source = EventLogSource(str(path), lambda n, r: bad.append((n, r)))
    keys = [e.key for e in source]
    assert keys == ["run-1/Data/s_1.bcl.gz", "run-2/x", "run 3/y"]
    assert [n for n, _ in bad] == [3, 6] and bad[0][1].startswith("not JSON")
    assert "bad event time" in bad[1][1] and source.malformed == 2


# A byte that is not UTF-8 in a field the simulator does not read, as stdin gives it in a C locale
# (`surrogateescape`): a lone surrogate in the text, which msgspec cannot take.
LATIN1_LINE = LINE.encode().replace(b'"123456789012"', b'"caf\xe9"')


def test_a_lone_surrogate_goes_the_general_way() -> None:
    line = LATIN1_LINE.decode("utf-8", "surrogateescape")
    assert "\udce9" in line
    assert fast(line) is None
    assert general(line) == general(LINE)


def test_stdin_with_bytes_that_are_not_utf8_gives_its_events(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(LATIN1_LINE + LINE.encode()), encoding="utf-8",
                             errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", stdin)
    bad: list[tuple[int, str]] = []
    source = EventLogSource("-", lambda n, r: bad.append((n, r)))
    assert [e.key for e in source] == ["run-1/Data/s_1.bcl.gz"] * 2
    assert bad == [] and source.malformed == 0


def test_a_huge_integer_in_a_field_not_read_is_skipped_by_the_fast_way() -> None:
    """The one difference kept on purpose (see eventlog's docstring): json.loads refuses an
    integer past Python's 4,300-digit limit anywhere in the line; msgspec skips it unread."""
    line = LINE.replace('"123456789012"', "1" * 5000)
    assert general(line) == "ValueError"
    assert fast(line) == general(LINE)
