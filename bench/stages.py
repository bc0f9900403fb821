"""Where the ingest time goes, stage by stage, in one process (no HTTP, no threads): µs per event.

    /work/venv/bin/python bench/stages.py [--batches 60] [--reps 3]

Stages of one 1,000-event request as the product runs them (engine.api → ingest → storage → live),
each timed over the same batches on a fresh SQLite file; beside them the raw sqlite3 executemany of
the same rows, and (`--variants`) the events insert as one sqlite3 executemany of tuples for comparison
(monkeypatched on one Database instance; the engine is not edited).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import common as c
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.live.model import LiveModel
from engine.core.schema import validate_batch
from engine.storage.database import Database, task_updates

TYPES = frozenset(DEFAULT_EVENT_TYPES)


def _time(fn, items) -> float:
    t0 = time.perf_counter()
    for it in items:
        fn(it)
    return time.perf_counter() - t0


# ---- for comparison: the same SQL as one executemany of tuples straight to the driver ----

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_COLS = c.EVENT_COLUMNS


def fast_insert_events(self, conn, events) -> None:
    enc = _ENCODE
    sql = getattr(self, "_fast_sql", None)
    if sql is None:
        ph = "?" if self.is_sqlite else "%s"
        sql = self._fast_sql = f"INSERT INTO events ({', '.join(_COLS)}) VALUES ({', '.join([ph] * len(_COLS))})"
    conn.exec_driver_sql(
        sql,
        [
            (e.event_id, e.type, e.warehouse_id, e.worker_id, e.task_id, e.ts, e.status, e.severity,
             None if e.metrics is None else enc(e.metrics), None if e.payload is None else enc(e.payload), e.stress_run)
            for e in events
        ],
    )


def stage_times(batches: list[list[dict]], bodies: list[bytes], variant: str) -> dict[str, float]:
    """Seconds per stage over all batches, on a fresh database."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fp-stages-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'p.db'}")
        db.create_schema()
        if variant == "executemany_tuples":
            db._insert_events = fast_insert_events.__get__(db)
        live = LiveModel()
        parsed: list = []
        out["json.loads body"] = _time(lambda b: parsed.append(json.loads(b)), bodies)
        validated: list = []
        out["validate_batch"] = _time(lambda raw: validated.append(validate_batch(raw, types=TYPES, max_events=10_000)[0]), parsed)
        news: list = []
        out["live.unknown_entities"] = _time(lambda evs: news.append(live.unknown_entities(evs)), validated)
        # store_batch, split into its parts with the same calls it makes
        t = {"rows+insert": 0.0, "task upsert": 0.0, "entities+commit": 0.0}
        for evs, (wh, wk) in zip(validated, news):
            t0 = time.perf_counter()
            with db.engine.begin() as conn:
                fresh = db._dedupe(conn, evs)
                t1 = time.perf_counter()
                db._insert_events(conn, fresh)
                t2 = time.perf_counter()
                db._upsert_tasks(conn, task_updates(fresh))
                t3 = time.perf_counter()
                if wh or wk:  # as store_batch: only the first batch has any
                    from engine.storage.models import Warehouse, Worker

                    now = int(time.time() * 1000)
                    if wh:
                        conn.execute(db._insert(Warehouse).on_conflict_do_nothing(), [{"id": i, "name": n, "capacity": cap, "zones": None, "created_at": now} for i, n, cap in wh])
                    if wk:
                        conn.execute(db._insert(Worker).on_conflict_do_nothing(), [{"id": i, "name": n, "warehouse_id": w, "created_at": now} for i, n, w in wk])
            t4 = time.perf_counter()
            t["rows+insert"] += t2 - t1
            t["task upsert"] += t3 - t2
            t["entities+commit"] += (t4 - t3) + (t1 - t0)
        out.update({f"store_batch: {k}": v for k, v in t.items()})
        out["live.apply"] = _time(live.apply, validated)
        out["response json (event_ids)"] = _time(lambda evs: json.dumps({"accepted": len(evs), "duplicates": 0, "event_ids": [e.event_id for e in evs]}), validated)
        db.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", action="store_true", help="also time the insert as one executemany of tuples")
    args = ap.parse_args()
    n = args.batches * 1000
    batches = [c.make_events(1000, seed=i) for i in range(args.batches)]
    bodies = [c.dumps(b) for b in batches]
    variants = ["current"] + (["executemany_tuples"] if args.variants else [])
    per_variant = {}
    for variant in variants:
        runs = [stage_times(batches, bodies, variant) for _ in range(args.reps)]
        med = {k: c.median([r[k] / n * 1e6 for r in runs]) for k in runs[0]}
        med["TOTAL product"] = round(sum(med.values()), 2)
        per_variant[variant] = med
    rows = []
    for i, b in enumerate(batches):
        rows.extend(c.rows_for(b, now_ms=int(time.time() * 1000) + i * 30))
    raw = [c.raw_sqlite(rows, batch=1000) for _ in range(args.reps)]
    raw_us = c.median([r["seconds"] / r["rows"] * 1e6 for r in raw])
    result = {
        "bench": "stages",
        "machine": c.machine(),
        "events": n,
        "us_per_event_median": per_variant,
        "raw_sqlite_executemany_us_per_row": raw_us,
        "ratio_raw_over_product": {v: round(raw_us / m["TOTAL product"], 3) for v, m in per_variant.items()},
    }
    c.write_result("stages", result)


if __name__ == "__main__":
    main()
