"""The one time parser and the one duration parser, shared by the Lambdas and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omics_edp_cli.timefmt import iso_z, parse_duration, parse_time


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-22T22:25:45Z", datetime(2026, 1, 22, 22, 25, 45, tzinfo=UTC)),
    ("2026-01-22T22:25:45z", datetime(2026, 1, 22, 22, 25, 45, tzinfo=UTC)),
    ("2026-01-22T22:25:45.250Z", datetime(2026, 1, 22, 22, 25, 45, 250000, tzinfo=UTC)),
    ("2026-01-22T23:25:45+01:00", datetime(2026, 1, 22, 22, 25, 45, tzinfo=UTC)),
    ("2026-01-22T22:25:45", datetime(2026, 1, 22, 22, 25, 45, tzinfo=UTC)),  # naive means UTC
    (" 2026-01-22 ", datetime(2026, 1, 22, tzinfo=UTC)),
])
def test_parse_time_reads_every_iso_form_as_utc(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected
    assert parse_time(text).tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "6h"])
def test_parse_time_refuses_what_is_not_iso(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_time(text)


def test_parse_time_refuses_a_non_string() -> None:
    with pytest.raises(ValueError, match="not a string"):
        parse_time(1234)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0), ("2d", 172800.0),
    ("1w", 604800.0), (" 6H ", 21600.0), ("0", 0.0), (".5m", 30.0), (12, 12.0),
])
def test_parse_duration_accepts_numbers_with_or_without_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-5m", "5 minutes", "h", "inf", "nan", "1e3", "5y"])
def test_parse_duration_refuses_everything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_a_bare_number_is_refused_where_a_unit_is_required() -> None:
    with pytest.raises(ValueError):
        parse_duration("2026", unit_required=True)
    assert parse_duration("6h", unit_required=True) == 21600.0


def test_iso_z_shows_milliseconds_only_when_there_are_some() -> None:
    assert iso_z(datetime(2026, 3, 2, 10, 15, tzinfo=UTC)) == "2026-03-02T10:15:00Z"
    assert iso_z(datetime(2026, 3, 2, 10, 15, 0, 250000, tzinfo=UTC)) == "2026-03-02T10:15:00.250Z"
