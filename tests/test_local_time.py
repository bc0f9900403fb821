"""Local time (issue 13): each warehouse's time zone from configuration, stored with it, sent in `hello`, and the
simulator's day following each site's local day. The browser side is test_browser_local_time.py."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, inspect, text

from conftest import make_config
from engine.core.config import Config, parse_time_zones
from engine.simulator.floor import HOUR, MINUTE, Simulator, WarehouseSpec, demand_level, shift_at
from engine.storage.database import Database

DAY0 = int(datetime(2026, 7, 14, tzinfo=timezone.utc).timestamp() * 1000)  # a midnight UTC in summer (DST on)


# ---- configuration ----


def test_warehouse_tz_is_read_per_warehouse_with_a_default():
    c = Config.from_env({"WAREHOUSE_TZ": " W1=Europe/Berlin , W2=America/Chicago,", "DEFAULT_TZ": "Asia/Tokyo"})
    assert c.time_zones == {"W1": "Europe/Berlin", "W2": "America/Chicago"}
    assert (c.tz_for("W1"), c.tz_for("W2"), c.tz_for("W9")) == ("Europe/Berlin", "America/Chicago", "Asia/Tokyo")
    assert Config().tz_for("W1") == "UTC"  # nothing configured: every site in UTC
    assert c.with_(port=1).time_zones == c.time_zones


@pytest.mark.parametrize(
    "env, named",
    [
        ({"WAREHOUSE_TZ": "W1=Mars/Olympus"}, "'Mars/Olympus' (for W1)"),
        ({"WAREHOUSE_TZ": "W1=Europe/Berlin,W2=CEST"}, "'CEST' (for W2)"),
        ({"WAREHOUSE_TZ": "W1=../../etc/passwd"}, "'../../etc/passwd' (for W1)"),
        ({"WAREHOUSE_TZ": "W1"}, "'W1' is not <warehouse id>=<time zone>"),
        ({"WAREHOUSE_TZ": "=Europe/Berlin"}, "'=Europe/Berlin' is not"),
        ({"WAREHOUSE_TZ": "W1=Europe/Berlin,W1=Europe/Paris"}, "W1 is given two time zones"),
        ({"DEFAULT_TZ": "Nowhere/City"}, "DEFAULT_TZ: 'Nowhere/City'"),
    ],
)
def test_a_bad_zone_stops_the_start_with_its_name(env, named):
    with pytest.raises(ValueError) as err:
        Config.from_env(env)
    assert named in str(err.value)


def test_parse_time_zones_alone():
    assert parse_time_zones("") == {}
    assert parse_time_zones("A=UTC;B=Pacific/Auckland") == {"A": "UTC", "B": "Pacific/Auckland"}


# ---- stored with the warehouse ----


def _old_warehouses_table(url: str) -> None:
    """The warehouses table as releases before issue 13 made it (no tz column), with one row."""
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE warehouses (id VARCHAR(64) PRIMARY KEY, name VARCHAR(128) NOT NULL, capacity INTEGER NOT NULL, "
            "zones TEXT, created_at BIGINT NOT NULL)"
        )
        conn.exec_driver_sql("INSERT INTO warehouses VALUES ('W1', 'Old site', 50, NULL, 0)")
    eng.dispose()


def _check_zone_column_added(url: str) -> None:
    _old_warehouses_table(url)
    db = Database(url)
    db.zone_of = {"W1": "Europe/Berlin", "W2": "America/Chicago"}.get
    db.create_schema()
    db.create_schema()  # a second start finds the column and leaves it
    assert "tz" in {c["name"] for c in inspect(db.engine).get_columns("warehouses")}
    assert db.warehouse_zones() == {"W1": None}
    assert db.set_warehouse_zones(lambda wid: db.zone_of(wid) or "UTC") == {"W1": "Europe/Berlin"}
    db.upsert_warehouses([("W2", "Chicago DC", 100)])
    db.store_batch([], new_warehouses=[("W3", "W3", 10)])
    assert db.warehouse_zones() == {"W1": "Europe/Berlin", "W2": "America/Chicago", "W3": None}
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name, capacity FROM warehouses WHERE id = 'W1'")).one() == ("Old site", 50)
    db.dispose()


def test_an_older_sqlite_database_gets_the_tz_column(tmp_path):
    _check_zone_column_added(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.services
def test_an_older_postgresql_database_gets_the_tz_column(pg_url):
    eng = create_engine(pg_url)
    with eng.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS warehouses")
    eng.dispose()
    _check_zone_column_added(pg_url)


# ---- in hello ----


def test_hello_carries_each_warehouses_zone_and_the_database_keeps_it(tmp_path):
    from app import create_app

    config = make_config(tmp_path, simulator=True, simulator_backfill_min=0, warehouse_tz="W1=Europe/Berlin,W3=Pacific/Auckland",
                         default_tz="America/Chicago")
    dash_app = create_app(config)
    engine = dash_app.server.extensions["floorpulse"].engine
    try:
        whs = {w["id"]: w["tz"] for w in engine.hello()["snapshot"]["warehouses"]}
        assert whs == {"W1": "Europe/Berlin", "W2": "America/Chicago", "W3": "Pacific/Auckland", "W4": "America/Chicago",
                       "W5": "America/Chicago"}
        assert engine.db.warehouse_zones() == whs
        # a warehouse first seen in a feed gets its configured zone in the live model and in the database
        assert engine.inject({"type": "scan", "warehouse_id": "W9", "worker_id": "K9"})["ok"]
        assert {w["id"]: w["tz"] for w in engine.live.warehouse_load()}["W9"] == "America/Chicago"
        assert engine.db.warehouse_zones()["W9"] == "America/Chicago"
    finally:
        engine.stop()


# ---- the simulator's local day ----


def test_demand_curve_and_shifts_follow_the_local_day():
    # Berlin is UTC+2 in July, Chicago UTC-5: the 11:00 peak is 09:00 UTC in Berlin and 16:00 UTC in Chicago
    peak_utc = {tz: max(range(24), key=lambda h: demand_level(DAY0 + h * HOUR, tz)) for tz in ("Europe/Berlin", "America/Chicago")}
    assert peak_utc == {"Europe/Berlin": 9, "America/Chicago": 16}
    assert demand_level(DAY0 + 11 * HOUR) == demand_level(DAY0 + 11 * HOUR, "UTC") == 1.0
    # the day shift starts at 06:00 local
    assert shift_at(DAY0 + 12 * HOUR, "America/Chicago") == (0, DAY0 + 11 * HOUR)
    assert shift_at(DAY0 + 10 * HOUR, "Europe/Berlin") == (0, DAY0 + 4 * HOUR)
    assert shift_at(DAY0 + 12 * HOUR, "Europe/Berlin") == (1, DAY0 + 12 * HOUR)  # 14:00 local: the evening shift
    assert shift_at(DAY0 + 3 * HOUR, "Europe/Berlin") == (2, DAY0 - 4 * HOUR)  # 05:00 local: last night's shift


def test_a_simulated_day_is_busy_in_each_sites_own_daytime():
    """Two identical sites nine hours apart: each one's task arrivals peak in its own late morning, and its day crew
    signs in around 06:00 local."""
    sites = [WarehouseSpec("B", "Berlin", 400, 30, 3.0, tz="Europe/Berlin"), WarehouseSpec("C", "Chicago", 400, 30, 3.0, tz="America/Chicago")]
    sim = Simulator(sites, seed=7, start_ms=DAY0, warm_up_ms=0)
    created: dict[str, Counter] = {"B": Counter(), "C": Counter()}
    logins: dict[str, Counter] = {"B": Counter(), "C": Counter()}
    for t in range(DAY0 + 10 * MINUTE, DAY0 + 24 * HOUR + 1, 10 * MINUTE):
        for e in sim.step(t):
            ts = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
            hour = int((ts.timestamp() * 1000 - DAY0) // HOUR)
            if e["type"] == "task.created":
                created[e["warehouse_id"]][hour] += 1
            elif e["type"] == "worker.login":
                logins[e["warehouse_id"]][hour] += 1

    def busiest(c: Counter) -> int:  # the three-hour window with the most arrivals, by its middle hour (UTC)
        return max(range(1, 23), key=lambda h: c[h - 1] + c[h] + c[h + 1])

    assert 7 <= busiest(created["B"]) <= 14, created["B"]  # 09:00–16:00 Berlin time
    assert 14 <= busiest(created["C"]) <= 21, created["C"]  # 09:00–16:00 Chicago time
    night = {"B": sum(created["B"][h] for h in (0, 1, 2)), "C": sum(created["C"][h] for h in (7, 8, 9))}  # 02:00–05:00 local
    day = {"B": sum(created["B"][h] for h in (8, 9, 10)), "C": sum(created["C"][h] for h in (15, 16, 17))}  # 10:00–13:00 local
    assert all(day[s] > 3 * night[s] for s in "BC"), (day, night)
    # the day crew comes in around 06:00 local: 04:00 UTC in Berlin, 11:00 UTC in Chicago (the hour before, early birds)
    assert logins["B"][3] + logins["B"][4] >= 25 and logins["C"][10] + logins["C"][11] >= 25, logins
