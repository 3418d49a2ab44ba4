"""Operating hours: is a queue open at an instant, in its own time zone, holidays included."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from warmline.routing.model import DAYS, OperatingHours


def _at(clock: str) -> time:
    return time(23, 59, 59, 999999) if clock == "24:00" else time.fromisoformat(clock)


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
    return any(_at(start) <= now < _at(end) for start, end in spans)


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
        for start, _ in sorted(hours.week.get(DAYS[day.weekday()], [])):
            candidate = datetime.combine(day, _at(start), zone)
            if candidate > local:
                return candidate.astimezone(at.tzinfo)
    return None
