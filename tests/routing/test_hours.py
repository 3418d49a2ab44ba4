"""Operating hours at their edges: span boundaries, 24:00, holidays, time zones across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.routing.hours import is_open, next_opening
from warmline.routing.model import DAYS, OperatingHours

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
TICK = timedelta(microseconds=1)


def hours(timezone: str = "UTC", week: dict[str, Any] | None = None, **extra: Any) -> OperatingHours:
    return OperatingHours.model_validate(
        {
            "id": "office",
            "name": "Office",
            "timezone": timezone,
            "week": week if week is not None else {day: [("09:00", "17:00")] for day in WEEKDAYS},
            **extra,
        }
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_no_hours_means_always_open() -> None:
    assert is_open(None, utc(2026, 12, 25, 3, 0))
    assert next_opening(None, utc(2026, 12, 25, 3, 0)) == utc(2026, 12, 25, 3, 0)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 11, 26, 8, 59, 59), False),
        (utc(2026, 11, 26, 8, 59, 59) + timedelta(microseconds=999_999), False),
        (utc(2026, 11, 26, 9, 0, 0), True),
        (utc(2026, 11, 26, 16, 59, 59), True),
        (utc(2026, 11, 26, 17, 0, 0) - TICK, True),
        (utc(2026, 11, 26, 17, 0, 0), False),
        (utc(2026, 11, 28, 12, 0, 0), False),  # Saturday
        (utc(2026, 11, 29, 12, 0, 0), False),  # Sunday
    ],
)
def test_a_span_opens_at_its_start_and_closes_at_its_end(at: datetime, expected: bool) -> None:
    assert is_open(hours(), at) is expected


def test_a_lunch_break_between_two_spans_is_closed() -> None:
    split = hours(week={"thursday": [("09:00", "12:00"), ("13:00", "17:00")]})
    assert is_open(split, utc(2026, 11, 26, 11, 59, 59))
    assert not is_open(split, utc(2026, 11, 26, 12, 0))
    assert not is_open(split, utc(2026, 11, 26, 12, 59, 59))
    assert is_open(split, utc(2026, 11, 26, 13, 0))
    assert next_opening(split, utc(2026, 11, 26, 12, 30)) == utc(2026, 11, 26, 13, 0)


def test_a_span_ending_at_2400_is_open_until_the_last_instant_of_the_day() -> None:
    late = hours(week={"friday": [("22:00", "24:00")], "saturday": [("00:00", "02:00")]})
    friday_midnight = utc(2026, 11, 28, 0, 0)
    assert is_open(late, utc(2026, 11, 27, 22, 0))
    assert is_open(late, utc(2026, 11, 27, 23, 59, 59))
    assert is_open(late, friday_midnight - TICK)
    assert is_open(late, friday_midnight)  # Saturday's span takes over
    assert not is_open(late, utc(2026, 11, 28, 2, 0))
    # Sunday has no span: Saturday 24:00 is not an opening that runs on.
    all_day = hours(week={"saturday": [("00:00", "24:00")]})
    assert is_open(all_day, utc(2026, 11, 29, 0, 0) - TICK)
    assert not is_open(all_day, utc(2026, 11, 29, 0, 0))
    assert not is_open(all_day, utc(2026, 11, 27, 23, 59, 59))


def test_holidays_are_closed_from_their_first_to_their_last_day_inclusive() -> None:
    always = {day: [("00:00", "24:00")] for day in DAYS}
    festive = hours(week=always, holidays=[{"name": "Christmas", "start": "2026-12-24", "end": "2026-12-26"}])
    assert is_open(festive, utc(2026, 12, 24, 0, 0) - TICK)
    assert not is_open(festive, utc(2026, 12, 24, 0, 0))
    assert not is_open(festive, utc(2026, 12, 25, 12, 0))
    assert not is_open(festive, utc(2026, 12, 27, 0, 0) - TICK)
    assert is_open(festive, utc(2026, 12, 27, 0, 0))
    assert next_opening(festive, utc(2026, 12, 24, 8, 0)) == utc(2026, 12, 27, 0, 0)
    one_day = hours(week=always, holidays=[{"name": "New Year", "start": "2027-01-01"}])
    assert not is_open(one_day, utc(2027, 1, 1, 23, 59, 59))
    assert is_open(one_day, utc(2027, 1, 2, 0, 0))


def test_a_holiday_is_a_day_in_the_queues_own_time_zone() -> None:
    tokyo = hours(
        "Asia/Tokyo",
        week={day: [("00:00", "24:00")] for day in DAYS},
        holidays=[{"name": "Shogatsu", "start": "2027-01-01"}],
    )
    # Midnight in Tokyo is 15:00 UTC the day before.
    assert is_open(tokyo, utc(2026, 12, 31, 15, 0) - TICK)
    assert not is_open(tokyo, utc(2026, 12, 31, 15, 0))
    assert not is_open(tokyo, utc(2027, 1, 1, 15, 0) - TICK)
    assert is_open(tokyo, utc(2027, 1, 1, 15, 0))


def test_local_opening_times_follow_the_zone_in_winter_and_summer() -> None:
    paris = hours("Europe/Paris")
    # Winter, UTC+1: 09:00 in Paris is 08:00 UTC.
    assert not is_open(paris, utc(2026, 1, 15, 8, 0) - TICK)
    assert is_open(paris, utc(2026, 1, 15, 8, 0))
    assert not is_open(paris, utc(2026, 1, 15, 16, 0))
    # Summer, UTC+2: 09:00 in Paris is 07:00 UTC.
    assert not is_open(paris, utc(2026, 7, 15, 7, 0) - TICK)
    assert is_open(paris, utc(2026, 7, 15, 7, 0))
    assert not is_open(paris, utc(2026, 7, 15, 15, 0))


def test_the_day_the_clocks_go_forward() -> None:
    # Europe/Paris, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    paris = hours("Europe/Paris", week={"sunday": [("01:00", "04:00"), ("09:00", "17:00")]})
    assert not is_open(paris, utc(2026, 3, 29, 0, 0) - TICK)  # 00:59:59 CET
    assert is_open(paris, utc(2026, 3, 29, 0, 0))  # 01:00 CET
    assert is_open(paris, utc(2026, 3, 29, 1, 0) - TICK)  # 01:59:59 CET
    assert is_open(paris, utc(2026, 3, 29, 1, 0))  # 03:00 CEST
    assert not is_open(paris, utc(2026, 3, 29, 2, 0))  # 04:00 CEST: the span lasted two real hours
    assert not is_open(paris, utc(2026, 3, 29, 7, 0) - TICK)
    assert is_open(paris, utc(2026, 3, 29, 7, 0))  # 09:00 CEST
    assert not is_open(paris, utc(2026, 3, 29, 15, 0))  # 17:00 CEST
    # New York, Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC.
    new_york = hours("America/New_York", week={"sunday": [("09:00", "17:00")]})
    assert not is_open(new_york, utc(2026, 3, 8, 13, 0) - TICK)
    assert is_open(new_york, utc(2026, 3, 8, 13, 0))  # 09:00 EDT
    assert is_open(new_york, utc(2026, 3, 8, 21, 0) - TICK)
    assert not is_open(new_york, utc(2026, 3, 8, 21, 0))  # 17:00 EDT
    assert next_opening(new_york, utc(2026, 3, 7, 20, 0)) == utc(2026, 3, 8, 13, 0)


def test_the_day_the_clocks_go_back() -> None:
    # Europe/Paris, Sunday 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC,
    # so 02:30 local happens twice; a 02:30-03:00 span is open both times.
    paris = hours("Europe/Paris", week={"sunday": [("02:30", "03:00")]})
    assert not is_open(paris, utc(2026, 10, 25, 0, 30) - TICK)
    assert is_open(paris, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    assert is_open(paris, utc(2026, 10, 25, 1, 0) - TICK)  # 02:59:59 CEST
    assert not is_open(paris, utc(2026, 10, 25, 1, 0))  # 02:00 CET
    assert is_open(paris, utc(2026, 10, 25, 1, 30))  # 02:30 CET
    assert not is_open(paris, utc(2026, 10, 25, 2, 0))  # 03:00 CET
    # Monday after the change: 09:00 CET is 08:00 UTC again.
    office = hours("Europe/Paris")
    assert next_opening(office, utc(2026, 10, 23, 16, 0)) == utc(2026, 10, 26, 8, 0)


def test_next_opening_skips_weekends_and_holidays_and_gives_up_after_the_horizon() -> None:
    office = hours(holidays=[{"name": "Bridge", "start": "2026-11-30"}])
    assert next_opening(office, utc(2026, 11, 27, 17, 0)) == utc(2026, 12, 1, 9, 0)
    assert next_opening(office, utc(2026, 11, 27, 10, 0)) == utc(2026, 11, 27, 10, 0)  # open now
    assert next_opening(hours(week={}), utc(2026, 11, 27, 10, 0)) is None
    shut = hours(holidays=[{"name": "Closure", "start": "2026-11-01", "end": "2027-01-31"}])
    assert next_opening(shut, utc(2026, 11, 27, 10, 0)) is None
    assert next_opening(shut, utc(2026, 11, 27, 10, 0), horizon_days=90) == utc(2027, 2, 1, 9, 0)


def test_next_opening_is_returned_in_the_callers_zone() -> None:
    paris = hours("Europe/Paris")
    at = datetime(2026, 11, 27, 18, 0, tzinfo=ZoneInfo("America/New_York"))
    found = next_opening(paris, at)
    assert found == utc(2026, 11, 30, 8, 0)
    assert found is not None and found.tzinfo == at.tzinfo


_clock = st.integers(0, 24 * 4).map(lambda q: "24:00" if q == 96 else f"{q // 4:02d}:{q % 4 * 15:02d}")


@st.composite
def weeks(draw: st.DrawFn) -> dict[str, list[tuple[str, str]]]:
    """Up to two non-overlapping quarter-hour spans on some days of the week."""
    week: dict[str, list[tuple[str, str]]] = {}
    for day in draw(st.lists(st.sampled_from(DAYS), unique=True, max_size=7)):
        marks = sorted(set(draw(st.lists(_clock, min_size=2, max_size=4))))
        spans = [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]
        week[day] = spans
    return week


_zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney"])
# Instants around the 2026 DST changes of Europe, the US and Australia.
_instants = st.sampled_from(
    [utc(2026, 3, 6), utc(2026, 3, 27), utc(2026, 4, 3), utc(2026, 10, 23), utc(2026, 10, 30)]
).flatmap(lambda base: st.integers(0, 5 * 24 * 3600).map(lambda s: base + timedelta(seconds=s)))
_holiday_days = st.lists(st.integers(0, 20).map(lambda d: date(2026, 3, 6) + timedelta(days=d)), max_size=2)


@settings(max_examples=150, deadline=None)
@given(week=weeks(), zone=_zones, at=_instants, holidays=_holiday_days)
def test_next_opening_is_open_and_nothing_before_it_was(
    week: dict[str, list[tuple[str, str]]], zone: str, at: datetime, holidays: list[date]
) -> None:
    calendar = hours(
        zone,
        week=week,
        holidays=[{"name": f"h{i}", "start": day.isoformat()} for i, day in enumerate(sorted(set(holidays)))],
    )
    found = next_opening(calendar, at)
    if found is None:
        return
    assert found >= at
    assert is_open(calendar, found)
    if found > at:
        assert not is_open(calendar, found - TICK)
        # Sample the closed stretch in between: nothing in it may be open.
        gap = found - at
        for step in range(1, 16):
            assert not is_open(calendar, at + gap * step / 16 - TICK), (at, found, step)
