"""Business hours: weekly opening ranges in wall-clock time of one IANA time zone.

Pure (no I/O, no clock): callers pass the instant. A day lists `["HH:MM", "HH:MM"]` ranges,
start inclusive and end exclusive, start before end; `"24:00"` may end a range at midnight,
so a night shift is `22:00-24:00` on one day and `00:00-02:00` on the next. A day that is
not listed is closed.

Wall-clock semantics across daylight saving time: "open" compares the local time of day at
the instant with the ranges. When the clocks go back, an hour's wall times happen twice and
count both times; when they go forward, a range that starts in the skipped hour opens at
the moment of the jump, and one that lies wholly inside the skipped hour never opens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import BadRequest

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_DAY_S = 24 * 3600


class InvalidTimezone(BadRequest):
    code = "invalid_timezone"
    default_message = "The time zone must be an IANA name such as Europe/Istanbul."


class InvalidHours(BadRequest):
    code = "invalid_hours"
    default_message = 'Opening hours are ["HH:MM", "HH:MM"] ranges with start before end.'


Range = tuple[int, int]  # seconds since local midnight, [start, end)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]  # seven days, Monday first

    @classmethod
    def parse(cls, timezone: str, days: Mapping[str, Sequence[Sequence[str]]]) -> BusinessHours:
        """Validate and build; `InvalidTimezone` or `InvalidHours` says what is wrong."""
        zone = zone_named(timezone)
        week: list[tuple[Range, ...]] = []
        unknown = set(days) - set(DAYS)
        if unknown:
            raise InvalidHours(f"Unknown day {sorted(unknown)[0]!r}: use mon..sun.")
        for day in DAYS:
            ranges = []
            for pair in days.get(day, ()):
                if len(pair) != 2:
                    raise InvalidHours(f"{day}: a range is [start, end].")
                start, end = (_seconds(day, value) for value in pair)
                if start >= end or start == _DAY_S:
                    raise InvalidHours(f"{day}: {pair[0]}-{pair[1]} does not start before it ends.")
                ranges.append((start, end))
            week.append(tuple(sorted(ranges)))
        return cls(zone, tuple(week))

    def is_open(self, at: datetime) -> bool:
        local = _aware(at).astimezone(self.zone)
        of_day = local.hour * 3600 + local.minute * 60 + local.second
        return any(start <= of_day < end for start, end in self.week[local.weekday()])

    def next_open(self, at: datetime) -> datetime | None:
        """The first instant at or after `at` when the hours are open (`at` itself when open
        now), in UTC; None when no range ever opens."""
        at = _aware(at).astimezone(UTC)
        if self.is_open(at):
            return at
        today = at.astimezone(self.zone).date()
        for offset in range(9):  # a week and a day covers every weekday whatever DST does
            day = today + timedelta(days=offset)
            found = [
                instant
                for start, _ in self.week[day.weekday()]
                for instant in self._instants(day, start)
                if instant >= at and self.is_open(instant)
            ]
            if found:
                return min(found)
        return None

    def _instants(self, day: date, seconds: int) -> list[datetime]:
        """The UTC instants whose local wall time is `seconds` past midnight of `day`: one,
        two when the clocks go back, and the moment of the jump when it is skipped."""
        wall = datetime.combine(day, time()) + timedelta(seconds=seconds)
        first, second = (
            wall.replace(tzinfo=self.zone, fold=fold).astimezone(UTC) for fold in (0, 1)
        )
        real = [t for t in {first, second} if t.astimezone(self.zone).replace(tzinfo=None) == wall]
        if real:
            return sorted(real)
        return [self._jump(min(first, second), max(first, second))]

    def _jump(self, before: datetime, after: datetime) -> datetime:
        """The first instant in (before, after] with the later UTC offset, to the second."""
        offset = before.astimezone(self.zone).utcoffset()
        low, high = before, after
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(self.zone).utcoffset() == offset:
                low = middle
            else:
                high = middle
        return high.replace(microsecond=0)


def zone_named(name: str) -> ZoneInfo:
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise InvalidTimezone(f"{name[:64]!r} is not an IANA time zone name.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimezone(f"{name[:64]!r} is not an IANA time zone name.") from None


def _seconds(day: str, value: str) -> int:
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidHours(f"{day}: {str(value)[:20]!r} is not a time HH:MM (00:00 to 24:00).")
    if value == "24:00":
        return _DAY_S
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no instant")
    return at
