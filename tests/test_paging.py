"""History paging (issue 11 item 5): `before=<next>` walks the sort order (timestamp, then id) exactly once."""
from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from conftest import authed_client

N = 30


@pytest.fixture
def client(app_on_each_database):
    return authed_client(app_on_each_database[0].server, "viewer")


def post_shuffled(client) -> dict[str, str]:
    """N events whose timestamps are out of insertion order, two by two equal (so the id must break ties)."""
    rng = random.Random(11)
    base = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    offsets = [i // 2 for i in range(N)]
    rng.shuffle(offsets)
    events = [
        {"event_id": f"ev-{i:02d}", "type": "scan", "warehouse_id": "W1", "worker_id": "K1",
         "timestamp": (base + timedelta(seconds=s)).isoformat()}
        for i, s in enumerate(offsets)
    ]
    operator = authed_client(client.application, "operator")
    for i in range(0, N, 7):  # several requests: several batches, row ids in posting order
        r = operator.post("/api/events", data=json.dumps(events[i : i + 7]), content_type="application/json")
        assert r.status_code == 202, r.json
    return {e["event_id"]: e["timestamp"] for e in events}


def test_every_page_size_sees_each_event_once(client):
    posted = post_shuffled(client)
    for size in range(1, 6):
        seen: list[dict] = []
        url = f"/api/events?limit={size}"
        for _ in range(N + 2):  # at most N pages (+1 empty after a full last page)
            page = client.get(url).json
            seen += page["events"]
            if page["next"] is None:
                break
            url = f"/api/events?limit={size}&before={page['next']}"
        ids = [e["event_id"] for e in seen]
        assert sorted(ids) == sorted(posted), f"page size {size}: missing {set(posted) - set(ids)}, repeated {len(ids) - len(set(ids))}"
        stamps = [e["timestamp"] for e in seen]
        assert stamps == sorted(stamps, reverse=True), f"page size {size}"


@pytest.mark.parametrize(
    "cursor",
    ["x", "123", "-", base64.urlsafe_b64encode(b"abc.def").decode(), base64.urlsafe_b64encode(b"1.2.3").decode(),
     base64.urlsafe_b64encode(b"99999999999999999999.1").decode(), base64.urlsafe_b64encode(b"1.-2").decode(), "%FF%FE"],
)
def test_a_malformed_cursor_is_a_400(client, cursor):
    r = client.get(f"/api/events?limit=5&before={cursor}")
    assert r.status_code == 400 and r.json["details"][0]["field"] == "before"
