"""History series from per-minute rollups, ready for the views' opening figures. Pure."""
from __future__ import annotations

from typing import Any, Iterable

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


def completed_by_hour(rows: Iterable[RollupRow]) -> dict[str, dict[int, int]]:
    """Completed tasks per warehouse per hour of day (0-23, UTC) over the rows given."""
    out: dict[str, dict[int, int]] = {}
    for minute, wh, etype, count, _units in rows:
        if etype != "task.completed":
            continue
        hour = (minute // 3_600_000) % 24
        per = out.setdefault(wh, {})
        per[hour] = per.get(hour, 0) + count
    return out
