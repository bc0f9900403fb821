"""Rules files: parsing and validation (with the messages an operator reads), evaluation, de-duplication."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.intel.rules import Deduper, Facts, RulesError, evaluate, parse_rules, render

ROOT = Path(__file__).resolve().parent.parent


def wh(id, capacity=100, open=0, waiting=None, idle=0, history=(), due=(), forecast=(), name=None) -> Facts:
    return Facts(id, name or f"{id} DC", capacity, open, open if waiting is None else waiting, idle, tuple(history), tuple(due), tuple(forecast))


def rules(body: str):
    return parse_rules(body)


def test_the_shipped_default_file_parses():
    rs = parse_rules((ROOT / "rules" / "default.toml").read_text())
    assert {r.kind for r in rs.rules} == {"rebalance", "idle_with_backlog", "sla_risk", "overload_forecast"}
    assert len(rs.version) == 8


@pytest.mark.parametrize(
    "body, message",
    [
        ("[[rule]\nid = 'x'", "not valid TOML"),
        ("title = 'x'", "unknown top-level"),
        ("[[rule]]\nkind = 'rebalance'", "rule 1: id"),
        ("[[rule]]\nid = 'a b'\nkind = 'rebalance'", "rule 1: id"),
        ("[[rule]]\nid = 'x'\nkind = 'magic'", "rule 1 (x): kind must be one of"),
        ("[[rule]]\nid = 'x'\nkind = 'rebalance'\n[[rule]]\nid = 'x'\nkind = 'sla_risk'", "rule 2 (x): id is used twice"),
        ("[[rule]]\nid = 'x'\nkind = 'rebalance'\nload_abov = 0.9", "unknown field(s) load_abov"),
        ("[[rule]]\nid = 'x'\nkind = 'rebalance'\nload_above = 'high'", "load_above must be a number"),
        ("[[rule]]\nid = 'x'\nkind = 'rebalance'\nload_above = 0.4", "load_below must be lower"),
        ("[[rule]]\nid = 'x'\nkind = 'rebalance'\ntarget_load = 0.95", "target_load must lie between"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nwithin_min = 2.5", "within_min must be a whole number"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\ntasks_min = 0", "tasks_min must be from 1"),
        ("[[rule]]\nid = 'x'\nkind = 'idle_with_backlog'\nacross = 'yes'", "across must be true or false"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nseverity = 'urgent'", "severity must be one of"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nsuggestion = 'Do {thing}'", "unknown placeholder {thing}"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nreason = '{name.__class__}'", "unknown placeholder"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nreason = '{count'", "not a valid template"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nreason = ''", "reason must be text"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nwarehouses = 'W1'", "warehouses must be a list"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nrepeat_after_min = -1", "repeat_after_min"),
        ("[[rule]]\nid = 'x'\nkind = 'sla_risk'\nenabled = 1", "enabled must be true or false"),
        ("rule = 5", "must be [[rule]] tables"),
    ],
)
def test_broken_files_are_rejected_with_a_message_naming_the_place(body, message):
    with pytest.raises(RulesError) as exc:
        parse_rules(body)
    assert message in str(exc.value)


def test_an_empty_file_is_an_empty_rule_set_and_versions_follow_the_content():
    assert parse_rules("").rules == ()
    assert parse_rules("# nothing").version != parse_rules("# something").version


def test_templates_format_numbers_and_refuse_attribute_access():
    assert render("{load:.0%} in {name}", {"load": 0.934, "name": "W1"}) == "93% in W1"
    with pytest.raises(KeyError):
        render("{name.upper}", {"name": "W1"})
    with pytest.raises(KeyError):
        render("{name[0]}", {"name": "W1"})


REBALANCE = "[[rule]]\nid = 'rb'\nkind = 'rebalance'\nload_above = 0.9\nload_below = 0.5\ntarget_load = 0.7\n"


@pytest.mark.parametrize(
    "facts, expected",
    [
        # 95 open of 100, 40 of 100 elsewhere: move until W1 is at 70 (25) or W2 at 70 (30) → 25
        ([wh("W1", open=95), wh("W2", open=40)], [("rb:W1", ("W1", "W2"), 25)]),
        # only 10 tasks are still waiting (the rest are assigned): 10 can move
        ([wh("W1", open=95, waiting=10), wh("W2", open=40)], [("rb:W1", ("W1", "W2"), 10)]),
        # the emptiest partner is chosen; the capacity is what counts, not the task count
        ([wh("W1", open=190, capacity=200), wh("W2", open=40), wh("W3", open=10, capacity=50)], [("rb:W1", ("W1", "W3"), 25)]),
        ([wh("W1", open=95), wh("W2", open=60)], []),  # nobody below 50 %
        ([wh("W1", open=85), wh("W2", open=0)], []),  # nobody above 90 %
        ([wh("W1", open=95, waiting=0), wh("W2", open=0)], []),  # nothing can move
        ([wh("W1", open=95, capacity=0), wh("W2", open=0)], []),  # no capacity known: no load
    ],
)
def test_rebalance(facts, expected):
    got = evaluate(rules(REBALANCE), facts)
    assert [(f.key, f.warehouse_ids, f.values["n"]) for f in got] == expected
    for f in got:
        assert f.suggestion.startswith(f"Move {f.values['n']} waiting tasks from")
        assert "%" in f.reason and 0.5 <= f.score <= 1.0


def test_rebalance_score_is_half_on_the_thresholds_and_grows():
    r = rules(REBALANCE)
    near = evaluate(r, [wh("W1", open=91), wh("W2", open=49)])[0].score
    far = evaluate(r, [wh("W1", open=130), wh("W2", open=5)])[0].score
    assert 0.5 <= near < 0.55 and far == 1.0


IDLE = "[[rule]]\nid = 'idle'\nkind = 'idle_with_backlog'\nidle_workers_min = 3\nbacklog_growth_min = 10\nwindow_min = 5\n"


@pytest.mark.parametrize(
    "body, facts, expected",
    [
        # W2's backlog grew 20 → 35 over 5 minutes with 15 waiting, W1 has 4 idle and nothing waiting
        (IDLE, [wh("W1", idle=4, open=0), wh("W2", open=35, waiting=15, history=[20, 22, 25, 28, 31, 33])], [("idle:W1>W2", 4)]),
        # same warehouse: people idle while its own backlog grows (a dispatch problem)
        (IDLE + "across = false\n", [wh("W2", idle=3, open=35, waiting=15, history=[20, 22, 25, 28, 31, 33])], [("idle:W2>W2", 3)]),
        (IDLE + "across = false\n", [wh("W1", idle=4), wh("W2", open=35, waiting=15, history=[20, 22, 25, 28, 31, 33])], []),
        (IDLE, [wh("W1", idle=4), wh("W2", open=35, waiting=15, history=[30, 31, 32, 33, 34, 35])], []),  # grew 5 only
        (IDLE, [wh("W1", idle=2), wh("W2", open=35, waiting=15, history=[20, 22, 25, 28, 31, 33])], []),  # too few idle
        (IDLE, [wh("W1", idle=4), wh("W2", open=35, waiting=15, history=[20, 22])], []),  # not enough history to judge
        # idle people whose own warehouse has waiting work are not lent out
        (IDLE, [wh("W1", idle=4, open=4, waiting=4), wh("W2", open=35, waiting=15, history=[20, 22, 25, 28, 31, 33])], []),
    ],
)
def test_idle_with_backlog(body, facts, expected):
    got = evaluate(rules(body), facts)
    assert [(f.key, f.values["n"]) for f in got] == expected


SLA = "[[rule]]\nid = 'sla'\nkind = 'sla_risk'\nwithin_min = 10\ntasks_min = 3\n"


@pytest.mark.parametrize(
    "due, expected",
    [
        ([-5, -1, 3, 9, 30, 60], (4, 2)),  # overdue ones count, and are counted apart
        ([3, 9, 30], None),
        ([], None),
        ([10, 10, 10], (3, 0)),  # "within 10" includes 10
    ],
)
def test_sla_risk(due, expected):
    got = evaluate(rules(SLA), [wh("W1", due=due)])
    if expected is None:
        assert got == []
    else:
        (f,) = got
        assert (f.values["count"], f.values["overdue"]) == expected
        assert f"{expected[0]} open tasks in W1 are due within 10 min ({expected[1]} already overdue)" == f.reason


OVER = "[[rule]]\nid = 'over'\nkind = 'overload_forecast'\nhorizon_min = 30\nload_above = 1.0\n"


@pytest.mark.parametrize(
    "forecast, expected",
    [
        ([0.8 + 0.01 * i for i in range(60)], (20, 1.09, 9)),  # crosses 1.0 at minute 20; the peak within 30 min is 1.09
        ([0.8 + 0.01 * i for i in range(15)], None),  # a short forecast that stays below
        ([0.5] * 29 + [2.0] * 31, (29, 2.0, 100)),  # the 30th minute is still inside the horizon
        ([0.5] * 30 + [2.0] * 30, None),  # beyond it: not yet
        ([], None),  # no load forecast (yet): nothing to say
    ],
)
def test_overload_forecast(forecast, expected):
    assert evaluate(rules(OVER), [wh("W1", open=100, capacity=100, forecast=[1.2] * 60)]) == []  # already over: not a forecast
    got = evaluate(rules(OVER), [wh("W1", open=80, capacity=100, forecast=forecast)])
    if expected is None:
        assert got == []
    else:
        (f,) = got
        assert (f.values["in_min"], f.values["peak_load"], f.values["n"]) == (expected[0], pytest.approx(expected[1]), expected[2])
        assert f.reason == f"W1 is forecast to reach {expected[1]:.0%} of capacity in {expected[0]} min (now 80%)"


def test_warehouse_filter_and_disabled_rules():
    body = SLA.replace("tasks_min = 3", "tasks_min = 1") + "warehouses = ['W2']\n"
    facts = [wh("W1", due=[1]), wh("W2", due=[1])]
    assert [f.warehouse_id for f in evaluate(rules(body), facts)] == ["W2"]
    assert evaluate(rules(body + "enabled = false\n"), facts) == []


def test_deduper_fires_once_while_the_condition_holds():
    rs = rules(SLA + "repeat_after_min = 10\n")
    d = Deduper()
    repeat = {"sla": 10}
    holding = evaluate(rs, [wh("W1", due=[1, 2, 3])])
    assert len(d.new(holding, 0, repeat)) == 1
    assert d.new(holding, 60_000, repeat) == []  # still holds: no second action
    assert d.new([], 120_000, repeat) == []  # cleared
    assert d.new(holding, 180_000, repeat) == []  # back, but within 10 minutes of the last one
    assert len(d.new(holding, 11 * 60_000, repeat)) == 1  # back after 10 minutes: fires again
    d.forget({"sla"})
    assert d.active == {} and d.last_fired == {}
