"""Recommendation rules (micro-policies): parse a TOML rules file, evaluate it over the live facts. Pure.

A rule names one of four patterns (`kind`) with its thresholds, and the words an operator reads:

    [[rule]]
    id = "rebalance"                 # unique, letters/digits/-/_
    kind = "rebalance"               # rebalance | idle_with_backlog | sla_risk | overload_forecast
    load_above = 0.9                 # thresholds of the kind (see KINDS below and docs/intelligence.md)
    load_below = 0.5
    severity = "warning"             # info | warning | critical
    reason = "{from} is at {from_load:.0%}, {to} at {to_load:.0%}"     # optional: placeholders of the kind
    suggestion = "Move {n} waiting tasks from {from} to {to}"

Every firing carries a score from 0 to 1: 0.5 when the numbers sit exactly on the thresholds, rising to
1 as they go 50 % (relative) beyond them. A firing is de-duplicated while its condition holds and fires
again only after the condition cleared and `repeat_after_min` passed.
"""
from __future__ import annotations

import hashlib
import math
import re
import string
import tomllib
from dataclasses import dataclass, field
from typing import Any, Sequence

SEVERITIES = ("info", "warning", "critical")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
COMMON = {"id", "kind", "enabled", "severity", "reason", "suggestion", "warehouses", "repeat_after_min", "description"}


@dataclass(frozen=True)
class Param:
    default: float | int | bool | None
    lo: float = 0.0
    hi: float = math.inf
    integer: bool = False
    flag: bool = False


# kind → (parameters, placeholders, default reason, default suggestion)
KINDS: dict[str, tuple[dict[str, Param], tuple[str, ...], str, str]] = {
    "rebalance": (
        {"load_above": Param(0.9, 0, 10), "load_below": Param(0.5, 0, 10), "target_load": Param(None, 0, 10), "min_tasks": Param(1, 1, 10_000, integer=True)},
        ("from", "from_name", "to", "to_name", "from_load", "to_load", "n", "load_above", "load_below", "target_load", "waiting"),
        "{from} is at {from_load:.0%} of capacity (above {load_above:.0%}) while {to} is at {to_load:.0%} (below {load_below:.0%})",
        "Move {n} waiting tasks from {from_name} to {to_name}",
    ),
    "idle_with_backlog": (
        {"idle_workers_min": Param(3, 1, 10_000, integer=True), "backlog_growth_min": Param(10, 1, 100_000, integer=True),
         "window_min": Param(15, 1, 240, integer=True), "across": Param(True, flag=True)},
        ("from", "from_name", "to", "to_name", "idle", "n", "growth", "waiting", "window_min"),
        "{idle} workers are idle in {from} while the backlog in {to} grew by {growth} tasks in {window_min} min ({waiting} waiting)",
        "Send {n} idle workers from {from_name} to {to_name}",
    ),
    "sla_risk": (
        {"within_min": Param(15, 1, 24 * 60, integer=True), "tasks_min": Param(5, 1, 100_000, integer=True)},
        ("warehouse", "name", "count", "overdue", "within_min", "tasks_min"),
        "{count} open tasks in {warehouse} are due within {within_min} min ({overdue} already overdue)",
        "Prioritise the {count} tasks due within {within_min} min in {name}",
    ),
    "overload_forecast": (
        {"horizon_min": Param(30, 1, 60, integer=True), "load_above": Param(1.0, 0, 10)},
        ("warehouse", "name", "load", "peak_load", "in_min", "n", "horizon_min", "load_above"),
        "{warehouse} is forecast to reach {peak_load:.0%} of capacity in {in_min} min (now {load:.0%})",
        "Divert about {n} tasks from {name} or add staff before it overflows",
    ),
}


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    params: dict[str, Any]
    severity: str = "warning"
    reason: str = ""
    suggestion: str = ""
    warehouses: tuple[str, ...] | None = None
    repeat_after_min: float = 15.0
    enabled: bool = True


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str  # content hash


class _SafeFormatter(string.Formatter):
    """str.format without attribute or index access: a rules file must not reach into Python objects."""

    def get_field(self, field_name, args, kwargs):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name):
            raise KeyError(field_name)
        return kwargs[field_name], field_name


_FMT = _SafeFormatter()


def render(template: str, values: dict[str, Any]) -> str:
    return _FMT.vformat(template, (), values)


def _sample_values(kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in KINDS[kind][1]:
        out[name] = "W1" if name in ("from", "to", "warehouse", "from_name", "to_name", "name") else 1
    return out


def parse_rules(text: str) -> RuleSet:
    """Parse and validate a rules file. Raises RulesError naming the rule and field at fault."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"not valid TOML: {exc}") from None
    unknown = set(doc) - {"rule"}
    if unknown:
        raise RulesError(f"unknown top-level key(s): {', '.join(sorted(unknown))} (rules are [[rule]] tables)")
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RulesError("rules must be [[rule]] tables")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules, 1):
        where = f"rule {i}"
        if not isinstance(raw, dict):
            raise RulesError(f"{where}: must be a table")
        rid = raw.get("id")
        if not isinstance(rid, str) or not ID_RE.match(rid):
            raise RulesError(f"{where}: id must be 1-48 letters, digits, - or _")
        where = f"rule {i} ({rid})"
        if rid in seen:
            raise RulesError(f"{where}: id is used twice")
        seen.add(rid)
        kind = raw.get("kind")
        if kind not in KINDS:
            raise RulesError(f"{where}: kind must be one of {', '.join(KINDS)}, is {kind!r}")
        spec, placeholders, reason_default, suggestion_default = KINDS[kind]
        extra = set(raw) - COMMON - set(spec)
        if extra:
            raise RulesError(f"{where}: unknown field(s) {', '.join(sorted(extra))} for kind {kind} (known: {', '.join(sorted(spec))})")
        params: dict[str, Any] = {}
        for name, p in spec.items():
            v = raw.get(name, p.default)
            if p.flag:
                if not isinstance(v, bool):
                    raise RulesError(f"{where}: {name} must be true or false")
            elif v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise RulesError(f"{where}: {name} must be a number")
                if p.integer and v != int(v):
                    raise RulesError(f"{where}: {name} must be a whole number")
                if not p.lo <= v <= p.hi:
                    raise RulesError(f"{where}: {name} must be from {p.lo:g} to {p.hi:g}, is {v}")
                v = int(v) if p.integer else float(v)
            params[name] = v
        if kind == "rebalance":
            if params["load_below"] >= params["load_above"]:
                raise RulesError(f"{where}: load_below must be lower than load_above")
            if params["target_load"] is None:
                params["target_load"] = round((params["load_above"] + params["load_below"]) / 2, 4)
            if not params["load_below"] <= params["target_load"] <= params["load_above"]:
                raise RulesError(f"{where}: target_load must lie between load_below and load_above")
        severity = raw.get("severity", "warning")
        if severity not in SEVERITIES:
            raise RulesError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        texts = {}
        for name, default in (("reason", reason_default), ("suggestion", suggestion_default)):
            t = raw.get(name, default)
            if not isinstance(t, str) or not t.strip() or len(t) > 500:
                raise RulesError(f"{where}: {name} must be text of 1-500 characters")
            try:
                render(t, _sample_values(kind))
            except KeyError as exc:
                raise RulesError(f"{where}: {name} uses unknown placeholder {{{exc.args[0]}}} (known: {', '.join(placeholders)})") from None
            except (ValueError, IndexError) as exc:
                raise RulesError(f"{where}: {name} is not a valid template: {exc}") from None
            texts[name] = t
        whs = raw.get("warehouses")
        if whs is not None and (not isinstance(whs, list) or not all(isinstance(w, str) and w for w in whs)):
            raise RulesError(f"{where}: warehouses must be a list of warehouse ids")
        repeat = raw.get("repeat_after_min", 15)
        if isinstance(repeat, bool) or not isinstance(repeat, (int, float)) or not 0 <= repeat <= 24 * 60:
            raise RulesError(f"{where}: repeat_after_min must be a number of minutes from 0 to 1440")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RulesError(f"{where}: enabled must be true or false")
        if "description" in raw and not isinstance(raw["description"], str):
            raise RulesError(f"{where}: description must be text")
        rules.append(Rule(rid, kind, params, severity, texts["reason"], texts["suggestion"],
                          tuple(whs) if whs is not None else None, float(repeat), enabled))
    return RuleSet(tuple(rules), hashlib.sha256(text.encode()).hexdigest()[:8])


# ---- evaluation ----


@dataclass(frozen=True)
class Facts:
    """What the rules look at, for one warehouse (built by engine/intel/rules_runner.py from the live model and forecasts)."""

    id: str
    name: str
    capacity: int
    open: int
    waiting: int  # open and not yet assigned: the tasks that can still move
    idle_workers: int
    open_history: tuple[float, ...] = ()  # open tasks at the end of each recent minute, oldest first
    sla_due_min: tuple[float, ...] = ()  # minutes until due, per open task with an SLA (negative = overdue)
    forecast_load: tuple[float, ...] = ()  # forecast load per minute from now (yhat)

    @property
    def load(self) -> float:
        return self.open / self.capacity if self.capacity else 0.0

    def growth(self, minutes: int) -> int | None:
        """How much the open tasks grew over the last `minutes` (None: not that much history)."""
        if len(self.open_history) < minutes:
            return None
        return int(round(self.open - self.open_history[-minutes]))


@dataclass(frozen=True)
class Firing:
    rule: str
    key: str  # what is de-duplicated: the rule plus the warehouse(s) concerned
    warehouse_id: str
    warehouse_ids: tuple[str, ...]
    severity: str
    score: float
    reason: str
    suggestion: str
    values: dict[str, Any]


def _score(exceed: Sequence[float]) -> float:
    """0.5 on the thresholds, 1.0 when they are crossed by 50 % on average (relative exceedance)."""
    e = [max(0.0, x) for x in exceed] or [0.0]
    return round(min(1.0, 0.5 + sum(e) / len(e)), 3)


def _rel(value: float, threshold: float) -> float:
    return abs(value - threshold) / threshold if threshold else abs(value - threshold)


def evaluate(ruleset: RuleSet, facts: Sequence[Facts]) -> list[Firing]:
    """Every rule against every warehouse; one firing per condition that holds."""
    out: list[Firing] = []
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        scope = [f for f in facts if rule.warehouses is None or f.id in rule.warehouses]
        out.extend(_EVAL[rule.kind](rule, scope))
    return out


def _fire(rule: Rule, key: str, whs: tuple[str, ...], score: float, values: dict[str, Any]) -> Firing:
    return Firing(rule.id, f"{rule.id}:{key}", whs[0], whs, rule.severity, score,
                  render(rule.reason, values)[:500], render(rule.suggestion, values)[:500], values)


def _rebalance(rule: Rule, facts: Sequence[Facts]) -> list[Firing]:
    p = rule.params
    out = []
    spare = sorted((f for f in facts if f.capacity and f.load < p["load_below"]), key=lambda f: f.load)
    for src in sorted((f for f in facts if f.capacity and f.load > p["load_above"]), key=lambda f: -f.load):
        for dst in spare:
            if dst.id == src.id:
                continue
            # move until the source is down to the target or the destination is up to it, whichever first
            n = min(src.waiting, math.floor(src.open - p["target_load"] * src.capacity), math.floor(p["target_load"] * dst.capacity - dst.open))
            if n < p["min_tasks"]:
                continue
            values = {"from": src.id, "from_name": src.name, "to": dst.id, "to_name": dst.name,
                      "from_load": round(src.load, 3), "to_load": round(dst.load, 3), "n": int(n), "waiting": src.waiting,
                      "load_above": p["load_above"], "load_below": p["load_below"], "target_load": p["target_load"]}
            out.append(_fire(rule, src.id, (src.id, dst.id), _score([_rel(src.load, p["load_above"]), _rel(dst.load, p["load_below"])]), values))
            break
    return out


def _idle_with_backlog(rule: Rule, facts: Sequence[Facts]) -> list[Firing]:
    p = rule.params
    out = []
    growth = {f.id: f.growth(p["window_min"]) for f in facts}
    growing = sorted((f for f in facts if (growth[f.id] or 0) >= p["backlog_growth_min"] and f.waiting > 0), key=lambda f: -(growth[f.id] or 0))
    idle = sorted((f for f in facts if f.idle_workers >= p["idle_workers_min"]), key=lambda f: -f.idle_workers)
    for dst in growing:
        for src in idle:
            if src.id != dst.id and not p["across"]:
                continue
            # keep the idle crew's own waiting work covered; send at most what the backlog can use
            spare = src.idle_workers - (src.waiting if src.id != dst.id else 0)
            n = min(spare, dst.waiting)
            if n < 1:
                continue
            values = {"from": src.id, "from_name": src.name, "to": dst.id, "to_name": dst.name, "idle": src.idle_workers,
                      "n": int(n), "growth": growth[dst.id], "waiting": dst.waiting, "window_min": p["window_min"]}
            score = _score([_rel(src.idle_workers, p["idle_workers_min"]), _rel(growth[dst.id] or 0, p["backlog_growth_min"])])
            out.append(_fire(rule, f"{src.id}>{dst.id}", (src.id, dst.id) if src.id != dst.id else (src.id,), score, values))
            break
    return out


def _sla_risk(rule: Rule, facts: Sequence[Facts]) -> list[Firing]:
    p = rule.params
    out = []
    for f in facts:
        due = [d for d in f.sla_due_min if d <= p["within_min"]]
        if len(due) < p["tasks_min"]:
            continue
        overdue = sum(1 for d in due if d < 0)
        values = {"warehouse": f.id, "name": f.name, "count": len(due), "overdue": overdue, "within_min": p["within_min"], "tasks_min": p["tasks_min"]}
        out.append(_fire(rule, f.id, (f.id,), _score([_rel(len(due), p["tasks_min"])]), values))
    return out


def _overload_forecast(rule: Rule, facts: Sequence[Facts]) -> list[Firing]:
    p = rule.params
    out = []
    for f in facts:
        ahead = list(f.forecast_load[: p["horizon_min"]])
        if not ahead or not f.capacity or f.load >= p["load_above"]:
            continue  # a prediction: a warehouse already over the line is the other rules' business
        peak_i = max(range(len(ahead)), key=lambda i: ahead[i])
        peak = ahead[peak_i]
        if peak < p["load_above"]:
            continue
        first = next(i for i, v in enumerate(ahead) if v >= p["load_above"])
        n = max(1, math.ceil(round((peak - p["load_above"]) * f.capacity, 6)))  # round: 0.09 × 100 is 9.000000000000009
        values = {"warehouse": f.id, "name": f.name, "load": round(f.load, 3), "peak_load": round(peak, 3), "in_min": first,
                  "n": n, "horizon_min": p["horizon_min"], "load_above": p["load_above"]}
        out.append(_fire(rule, f.id, (f.id,), _score([_rel(peak, p["load_above"])]), values))
    return out


_EVAL = {"rebalance": _rebalance, "idle_with_backlog": _idle_with_backlog, "sla_risk": _sla_risk, "overload_forecast": _overload_forecast}


@dataclass
class Deduper:
    """Fires a key once while its condition holds; again only after it cleared and `repeat_after_min` passed."""

    active: dict[str, int] = field(default_factory=dict)  # key → when it fired (ms)
    last_fired: dict[str, int] = field(default_factory=dict)

    def new(self, firings: Sequence[Firing], now_ms: int, repeat_after_min: dict[str, float]) -> list[Firing]:
        holding = {f.key for f in firings}
        for key in [k for k in self.active if k not in holding]:
            del self.active[key]  # the condition cleared
        fresh = []
        for f in firings:
            if f.key in self.active:
                continue
            last = self.last_fired.get(f.key)
            if last is not None and now_ms - last < repeat_after_min.get(f.rule, 15) * 60_000:
                continue
            self.active[f.key] = now_ms
            self.last_fired[f.key] = now_ms
            fresh.append(f)
        return fresh

    def forget(self, rule_ids: set[str]) -> None:
        """Rules that were removed or changed: their firings may fire anew under the new definition."""
        for d in (self.active, self.last_fired):
            for key in [k for k in d if k.split(":", 1)[0] in rule_ids]:
                del d[key]
