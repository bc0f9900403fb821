"""History series from per-minute rollups, ready for the views' opening figures. Pure."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

RollupRow = tuple[int, str, str, int, float]  # minute, warehouse_id, type, count, units


def minute_series(rows: Iterable[RollupRow], *, since_ms: int, until_ms: int) -> dict[str, Any]:
    """Per warehouse and minute in [since, until): events, completed tasks and units.

    Minutes without rollups are zeros (a quiet minute, not a gap in the line).
    """
    start = since_ms - since_ms % 60_000
    minutes = list(range(start, until_ms, 60_000))
    index = {m: i for i, m in enumerate(minutes)}
    events: dict[str, list[int]] = {}
    done: dict[str, list[int]] = {}
    units: dict[str, list[float]] = {}
    by_type: dict[str, list[int]] = {}

    def series(table: dict, key: str, zero):
        s = table.get(key)
        if s is None:
            s = table[key] = [zero] * len(minutes)
        return s

    for minute, wh, etype, count, unit_sum in rows:
        i = index.get(minute)
        if i is None:
            continue
        series(events, wh, 0)[i] += count
        series(by_type, etype, 0)[i] += count
        if etype == "task.completed":
            series(done, wh, 0)[i] += count
            series(units, wh, 0.0)[i] += unit_sum
    for wh in events:
        series(done, wh, 0)
        series(units, wh, 0.0)
    return {
        "minutes": minutes,
        "warehouses": sorted(events),
        "events_per_min": events,
        "tasks_per_min": done,
        "units_per_min": units,
        "by_type": by_type,
    }


# what opens a task (+) and what closes one (−): the net flow that open-task history is rebuilt from
FLOW_TYPES = ("task.created", "task.completed", "task.failed", "task.cancelled")


def net_flow(etype: str, count: float) -> float:
    """A rollup row's part of the net task flow: + for tasks created, − for tasks closed, 0 for other types."""
    if etype not in FLOW_TYPES:
        return 0
    return count if etype == "task.created" else -count


def open_at_ends(open_now: float, flows: Sequence[float], after: float = 0.0) -> list[float]:
    """Open tasks at the end of each of consecutive periods, rebuilt backwards from the count open now: at a period's
    end, `open_now` less the net task flow of every later period and of `after` (the flow from the last period's end
    to now). Never below 0 (a task closed whose creation predates the history would take it there)."""
    out = [0.0] * len(flows)
    later = after
    for i in range(len(flows) - 1, -1, -1):
        out[i] = max(open_now - later, 0.0)
        later += flows[i]
    return out


def bucket_counts(rows: Iterable[RollupRow], *, starts: Sequence[int], bucket_ms: int, etype: str = "task.completed") -> dict[str, list[int]]:
    """Per warehouse, how many `etype` events fell in each bucket (`starts`, each `bucket_ms` long, consecutive);
    `rows` may be summed per bucket already or per minute; rows outside the buckets are left out."""
    out: dict[str, list[int]] = {}
    if not starts:
        return out
    first, end = starts[0], starts[-1] + bucket_ms
    for minute, wh, t, count, _units in rows:
        if t == etype and first <= minute < end:
            out.setdefault(wh, [0] * len(starts))[(minute - first) // bucket_ms] += int(count)
    return out


def smoothing_lead_ms(bucket_ms: int, window_min: int) -> int:
    """How far before a range's start the rows for `bucket_series(..., window_min=...)` go: the buckets the first
    point's trailing window reaches back into (none when a bucket is as long as the window)."""
    return (max(1, window_min * 60_000 // bucket_ms) - 1) * bucket_ms


def trailing_mean(values: Sequence[float | None], weights: Sequence[int], window: int) -> list[float | None]:
    """Each point's mean over itself and the `window - 1` points before it, weighted (a bucket's minutes), so it
    is the window's total ÷ its minutes; None points are not counted (None where the whole window is None)."""
    out: list[float | None] = []
    for i in range(len(values)):
        pairs = [(v, w) for v, w in zip(values[max(0, i - window + 1) : i + 1], weights[max(0, i - window + 1) : i + 1]) if v is not None]
        total = sum(w for _v, w in pairs)
        out.append(round(sum(v * w for v, w in pairs) / total, 3) if total else None)
    return out


def bucket_series(rows: Iterable[RollupRow], *, since_ms: int, until_ms: int, bucket_ms: int, window_min: int = 0) -> dict[str, Any]:
    """Per warehouse and bucket in [since, until): events, completed tasks and units, as averages per minute over
    the bucket's whole minutes (so a 5-minute or an hourly point reads in the same unit as a minute's, and the last,
    shorter bucket of a live range is not a false drop). `since` is on a bucket boundary; `rows` may already be
    summed per bucket (their minute = the bucket's start) or per minute. `x` is the middle of what each bucket covers.

    `window_min` adds the smoothed lines, `events_per_min_avg` and `tasks_per_min_avg`: each bucket's trailing
    average over the last `window_min` minutes ending with it (model.py's rate window: the window's count ÷ its
    minutes, quiet minutes counting as zeros), or the bucket itself when it is as long; `window_min` in the result
    is the span averaged. The first buckets' windows reach before `since`: pass rows from
    `since - smoothing_lead_ms(...)` on, or those minutes count as quiet.
    """
    lead = smoothing_lead_ms(bucket_ms, window_min) // bucket_ms if window_min else 0
    first = since_ms - lead * bucket_ms
    starts = list(range(first, until_ms, bucket_ms))
    minutes = [max(1, (min(s + bucket_ms, until_ms) - s) // 60_000) for s in starts]
    index = {s: i for i, s in enumerate(starts)}
    events: dict[str, list[float]] = {}
    done: dict[str, list[float]] = {}
    units: dict[str, list[float]] = {}
    by_type: dict[str, float] = {}

    def series(table: dict, key: str) -> list[float]:
        s = table.get(key)
        if s is None:
            s = table[key] = [0.0] * len(starts)
        return s

    for minute, wh, etype, count, unit_sum in rows:
        if not first <= minute < until_ms:
            continue
        i = index[minute - (minute - first) % bucket_ms]
        series(events, wh)[i] += count
        if minute >= since_ms:
            by_type[etype] = by_type.get(etype, 0) + count
        if etype == "task.completed":
            series(done, wh)[i] += count
            series(units, wh)[i] += unit_sum or 0.0
    for wh in events:
        series(done, wh)
        series(units, wh)

    def per_minute(table: dict[str, list[float]], digits: int) -> dict[str, list[float]]:
        return {wh: [round(v / n, digits) for v, n in zip(vals[lead:], minutes[lead:])] for wh, vals in table.items()}

    def smoothed(table: dict[str, list[float]]) -> dict[str, list[float | None]]:
        window = lead + 1
        return {wh: trailing_mean([v / n for v, n in zip(vals, minutes)], minutes, window)[lead:] for wh, vals in table.items()}

    starts, minutes_shown = starts[lead:], minutes[lead:]
    total_min = sum(minutes_shown)
    out = {
        "bucket_ms": bucket_ms,
        "starts": starts,
        "x": [s + n * 30_000 for s, n in zip(starts, minutes_shown)],
        "warehouses": sorted(events),
        "events_per_min": per_minute(events, 3),
        "tasks_per_min": per_minute(done, 3),
        "units_per_min": per_minute(units, 2),
        "by_type_per_min": {t: round(c / total_min, 3) for t, c in sorted(by_type.items())} if total_min else {},
    }
    if window_min:
        out["window_min"] = (lead + 1) * bucket_ms // 60_000
        out["events_per_min_avg"] = smoothed(events)
        out["tasks_per_min_avg"] = smoothed(done)
    return out


def severity_buckets(rows: Iterable[tuple[int, str, int]], *, since_ms: int, until_ms: int, bucket_ms: int,
                     severities: Iterable[str]) -> dict[str, Any]:
    """Events per bucket of [since, until) and severity, every bucket present (a quiet one is a zero): the event
    timeline's bars over a range. `rows` are (bucket start, severity, count), as Database.event_counts gives them."""
    starts = list(range(since_ms, until_ms, bucket_ms))
    index = {s: i for i, s in enumerate(starts)}
    counts = {sev: [0] * len(starts) for sev in severities}
    for start, sev, n in rows:
        i = index.get(start)
        if i is not None and sev in counts:
            counts[sev][i] += n
    return {"bucket_ms": bucket_ms, "starts": starts, "counts": counts, "total": sum(map(sum, counts.values()))}
