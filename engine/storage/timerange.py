"""The time ranges a view can show (issue 13: last hour, this shift, 24 hours, 7 days, custom), resolved on the
server into [since, until) and the bucket their charts are drawn in. Pure: the clock and the shifts are arguments."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass
from typing import Any

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# name → (label, span in ms; None = from the start of the current shift)
RANGES: dict[str, tuple[str, int | None]] = {
    "1h": ("Last hour", HOUR),
    "shift": ("This shift", None),
    "24h": ("Last 24 hours", DAY),
    "7d": ("Last 7 days", 7 * DAY),
}
DEFAULT_RANGE = "1h"
CUSTOM = "custom"
# the chart bucket by span: 1 min up to 2 h, 5 min up to 24 h, 1 h up to 8 days, a day beyond (up to the rollups' 90)
BUCKETS: tuple[tuple[int, int], ...] = ((2 * HOUR, MINUTE), (DAY, 5 * MINUTE), (8 * DAY, HOUR))
LONGEST_BUCKET = DAY


class RangeError(ValueError):
    """A range the server cannot draw; `field` names the query parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TimeRange:
    name: str  # 1h | shift | 24h | 7d | custom
    label: str
    since: int  # epoch ms, inclusive, on a bucket boundary
    until: int  # epoch ms, exclusive: the end of the last whole minute when live
    live: bool  # ends now: the views keep appending live points
    bucket_ms: int

    @property
    def span_ms(self) -> int:
        return self.until - self.since

    @property
    def window_ms(self) -> int | None:
        """The length a live named range keeps as time passes (its left edge slides), None for one whose start is
        fixed (this shift, a custom range)."""
        return RANGES[self.name][1] if self.live and self.name in RANGES else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "bucket": bucket_label(self.bucket_ms), "window_ms": self.window_ms}


def choose_bucket(span_ms: int) -> int:
    for limit, bucket in BUCKETS:
        if span_ms <= limit:
            return bucket
    return LONGEST_BUCKET


def bucket_label(bucket_ms: int) -> str:
    if bucket_ms % DAY == 0:
        return f"{bucket_ms // DAY} d"
    if bucket_ms % HOUR == 0:
        return f"{bucket_ms // HOUR} h"
    return f"{bucket_ms // MINUTE} min"


def parse_shift_starts(text: str) -> tuple[int, ...]:
    """"6,14,22" or "06:00 14:00 22:00" → minutes after midnight (UTC), sorted."""
    out = []
    for part in text.replace(",", " ").split():
        h, _, m = part.partition(":")
        hour, minute = int(h), int(m or 0)
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(f"SHIFT_STARTS: {part!r} is not a time of day")
        out.append(hour * 60 + minute)
    if not out:
        raise ValueError("SHIFT_STARTS: at least one shift start is needed")
    return tuple(sorted(set(out)))


def shift_start(now_ms: int, starts_min: tuple[int, ...]) -> int:
    """Start (epoch ms) of the shift running at now: the latest shift start at or before it (yesterday's last one
    before today's first)."""
    day = now_ms - now_ms % DAY
    i = bisect_right([s * MINUTE for s in starts_min], now_ms - day) - 1
    if i < 0:
        return day - DAY + starts_min[-1] * MINUTE
    return day + starts_min[i] * MINUTE


def resolve_range(
    name: str | None, now_ms: int, *, shift_starts: tuple[int, ...] = (360, 840, 1320),
    since_ms: int | None = None, until_ms: int | None = None, max_days: int = 90,
) -> TimeRange:
    """A named range ending now, or a custom one (`since_ms`/`until_ms`; `until` in the future or missing = now).

    Live ranges end at the last whole minute (a minute still filling would plot as a false drop); `since` is
    floored to the bucket so every bucket but the last is whole.
    """
    name = (name or (CUSTOM if since_ms is not None else DEFAULT_RANGE)).strip().lower()
    last_whole = now_ms - now_ms % MINUTE
    if name == CUSTOM:
        if since_ms is None:
            raise RangeError("since", "a custom range needs `since`")
        live = until_ms is None or until_ms >= last_whole
        until = last_whole if live else until_ms + (-until_ms % MINUTE)
        if since_ms >= until:
            raise RangeError("until", "`until` must be after `since` (and `since` in the past)")
        if until - since_ms > max_days * DAY:
            raise RangeError("since", f"a range of at most {max_days} days (the rollups' retention)")
        bucket = choose_bucket((last_whole if live else until_ms) - since_ms)  # the span asked for, before rounding
        label = "Custom range"
        since = since_ms - since_ms % bucket
    elif name in RANGES:
        label, span = RANGES[name]
        start = shift_start(now_ms, shift_starts) if span is None else now_ms - span
        bucket = choose_bucket(now_ms - start)
        since, until, live = start - start % bucket, last_whole, True
        if since >= until:  # the first seconds of a shift: still show its first minute
            since = until - MINUTE
    else:
        raise RangeError("range", f"unknown range {name!r}: one of {', '.join([*RANGES, CUSTOM])}")
    return TimeRange(name, label, since, until, live, bucket)
