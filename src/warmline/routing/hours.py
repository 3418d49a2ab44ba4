"""Operating hours: is a queue open at an instant, in its own time zone, holidays included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from warmline.routing.model import DAYS, OperatingHours


def _at(clock: str) -> time:
    return time(23, 59, 59, 999999) if clock == "24:00" else time.fromisoformat(clock)


def _within(now: time, start: str, end: str) -> bool:
    # "24:00" ends the span at midnight, so the day's last microsecond is still inside it.
    return _at(start) <= now and (end == "24:00" or now < _at(end))


def is_open(hours: OperatingHours | None, at: datetime) -> bool:
    """True when ``at`` (aware) falls in an opening span and not on a holiday; no hours = always open."""
    if hours is None:
        return True
    local = at.astimezone(ZoneInfo(hours.timezone))
    day = local.date()
    if any(h.start <= day <= h.last_day for h in hours.holidays):
        return False
    spans = hours.week.get(DAYS[local.weekday()], [])
    now = local.time()
    return any(_within(now, start, end) for start, end in spans)


def _openings(day: date, start: str, end: str, zone: ZoneInfo) -> list[datetime]:
    """The instants a span starts on ``day``, in UTC, across DST changes.

    When the clocks go back, a start time happens twice (both are openings); when they go
    forward over it, the span opens as the clocks land, if it has not ended by then.
    """
    found = []
    for fold in (0, 1):
        wall = datetime.combine(day, _at(start), zone).replace(fold=fold)
        instant = wall.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
            found.append(instant)
    if found:
        return sorted(set(found))
    # Skipped: fold=1 reads the wall time with the offset after the jump (an instant before it),
    # fold=0 with the offset before (an instant after it); the jump lies between the two.
    wall = datetime.combine(day, _at(start), zone)
    before, after = wall.replace(fold=1).astimezone(UTC), wall.astimezone(UTC)
    landed_offset = after.astimezone(zone).utcoffset()
    while after - before > timedelta(microseconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(zone).utcoffset() == landed_offset:
            after = middle
        else:
            before = middle
    return [after] if _within(after.astimezone(zone).time(), start, end) else []


def next_opening(hours: OperatingHours | None, at: datetime, horizon_days: int = 14) -> datetime | None:
    """The next instant the hours open after ``at`` (None when closed for the whole horizon)."""
    if hours is None or is_open(hours, at):
        return at
    zone = ZoneInfo(hours.timezone)
    local = at.astimezone(zone)
    for offset in range(horizon_days + 1):
        day = (local + timedelta(days=offset)).date()
        if any(h.start <= day <= h.last_day for h in hours.holidays):
            continue
        spans = hours.week.get(DAYS[day.weekday()], [])
        for candidate in sorted(t for start, end in spans for t in _openings(day, start, end, zone)):
            if candidate > at:
                return candidate.astimezone(at.tzinfo)
    return None
