"""Control page, events: the injection editor (form ⇄ raw JSON), one-click scenarios and what this tab sent.

One server callback owns the editor: it fills a template from the live floor (engine/control/service.py),
switches between form and JSON, and sends through the same steps as POST /api/events (strict JSON parse,
`validate_batch`, the live model's cardinality gate, the writer's queue, the audit log: engine/ingest/accept.py),
so every message shown inline is the API's own. Operator role, checked by each callback.
"""
from __future__ import annotations

import json
import time
from typing import Any

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from components.control_ui import Wiring, address, capital, engine, field, field_class, guard, when
from components.panel import create_panel
from engine.control.service import SCENARIOS, run_scenario as run_scenario_service, templates
from engine.core.jsonparse import JSONBodyError, loads
from engine.core.schema import iso_ms
from engine.ingest.accept import Refused, accept
from engine.web.api import _parse_error_detail

CALLBACKS = Wiring()
wire = CALLBACKS.wire

TEXT_FIELDS = ("timestamp", "warehouse_id", "worker_id", "task_id", "status")
FIELDS = ("timestamp", "severity", "warehouse_id", "worker_id", "task_id", "status", "metrics", "payload")  # the form's, in output order
FORM_KEYS = {"type", *FIELDS}
SEVERITIES = [{"label": "(default for the type)", "value": ""}, *({"label": s, "value": s} for s in ("info", "warning", "critical"))]
SENT_MAX = 8


def _now() -> int:
    return int(time.time() * 1000)


def _ids(name: str) -> str:
    return f"ct-f-{name}"


# ---------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------


def _input(name: str, placeholder: str = "") -> dcc.Input:
    return dcc.Input(id=_ids(name), type="text", placeholder=placeholder, autoComplete="off", spellCheck=False, className="fp-input", debounce=False)


def _area(name: str, rows: int, placeholder: str) -> dcc.Textarea:
    return dcc.Textarea(id=_ids(name), rows=rows, placeholder=placeholder, spellCheck=False, className="fp-input fp-textarea fp-mono")


def inject_section(event_types: list[str]) -> html.Div:
    default = "task.completed" if "task.completed" in event_types else event_types[0]
    toolbar = html.Div(
        [
            field(_ids("type"), "Event type", dcc.Dropdown(id=_ids("type"), options=event_types, value=default, clearable=False, searchable=True,
                                                           className="fp-ct-type-select"), cls="fp-ct-type"),
            dcc.RadioItems(id="ct-mode", options=[{"label": "Form", "value": "form"}, {"label": "Raw JSON", "value": "json"}], value="form",
                           inline=True, className="fp-seg fp-ct-mode", inputClassName="fp-ct-mode-input"),
            html.Button("Fresh template", id="ct-fresh", className="fp-button fp-button-sm", type="button",
                        title="Refill the form from the live floor (new ids, time = now)"),
        ],
        className="fp-ct-toolbar",
    )
    form = html.Div(
        [
            html.Div(
                [
                    field(_ids("timestamp"), "Timestamp", _input("timestamp", "2025-01-01T12:00:00.000Z"),
                          hint="ISO-8601 with a zone; follows the send time until you edit it", cls="fp-span-2"),
                    field(_ids("severity"), "Severity", dcc.Dropdown(id=_ids("severity"), options=SEVERITIES, value="", clearable=False, searchable=False)),
                    field(_ids("warehouse_id"), "Warehouse", _input("warehouse_id", "e.g. W1")),
                    field(_ids("worker_id"), "Worker", _input("worker_id", "none")),
                    field(_ids("task_id"), "Task", _input("task_id", "none")),
                    field(_ids("status"), "Status", _input("status", "none")),
                ],
                className="fp-ct-fields",
            ),
            field(_ids("metrics"), "Metrics (JSON object of numbers)", _area("metrics", 3, '{"units": 12}'),
                  hint="what the event measured: units, duration_s, …"),
            field(_ids("payload"), "Payload (JSON object)", _area("payload", 5, '{"message": "…"}'),
                  hint="free-form details, at most 4 KiB; a task's kind, priority and sla_due_ms live here"),
        ],
        id="ct-form",
        className="fp-ct-form",
    )
    raw = html.Div(
        [
            html.Label("Event as JSON (an object, or a list to send several)", htmlFor="ct-json"),
            dcc.Textarea(id="ct-json", rows=18, spellCheck=False, className="fp-input fp-textarea fp-mono fp-ct-json"),
            html.Div("", id="ct-json-err", className="fp-field-error fp-ct-json-errors", role="alert"),
        ],
        id="ct-json-field",
        className="fp-field",
        hidden=True,
    )
    editor = html.Div(
        [
            toolbar,
            html.Div(id="ct-general-errors", className="fp-ct-errors", role="alert", hidden=True),
            html.Div(id="ct-extra-note", className="fp-ct-note", hidden=True),
            form,
            raw,
            html.Div(
                [html.Button("Send event", id="ct-send", className="fp-button fp-button-primary", type="button"),
                 html.Div("", id="ct-send-status", className="fp-ct-status", role="status", **{"aria-live": "polite"})],
                className="fp-ct-actions",
            ),
            html.Span("", id="ct-template", hidden=True),  # the type the editor holds (tests wait on it)
            dcc.Store(id="ct-extra", data={}),
            dcc.Store(id="ct-ts-auto", data=None),
            dcc.Store(id="ct-sent-store", data=[]),
        ],
        id="ct-inject",
    )
    inject = create_panel(
        "Inject an event",
        editor,
        subtitle="a template per type with real ids from the live floor · edit in the form or as raw JSON · goes through the normal ingest path",
    )
    scenarios = create_panel(
        "Scenarios",
        html.Div(
            [
                html.Div(
                    [html.Button([html.Span(s.label, className="fp-ct-scn-label"), html.Span(s.description, className="fp-ct-scn-desc")],
                                 id={"type": "ct-scn", "id": s.id}, className="fp-ct-scenario", type="button", **{"data-scenario": s.id})
                     for s in SCENARIOS.values()],
                    className="fp-ct-scenarios",
                ),
                html.Div("", id="ct-scn-status", className="fp-ct-status", role="status", **{"aria-live": "polite"}),
            ],
            id="ct-scenarios",
        ),
        subtitle="one click, a few realistic events at once",
    )
    sent = create_panel("Sent from this page", html.Div(html.Div("Nothing sent from this tab yet.", className="fp-ct-empty"), id="ct-sent"),
                        subtitle="newest first · links open the event in the timeline")
    return html.Div([inject, html.Div([scenarios, sent], className="fp-ct-stack")], className="fp-grid fp-ct-grid-main")


# ---------------------------------------------------------------------------------------------
# the editor: events ⇄ form values
# ---------------------------------------------------------------------------------------------


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def form_values(ev: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event → (form field values, the keys the form does not show, kept for the round trip)."""
    values = {k: "" if ev.get(k) is None else str(ev[k]) for k in TEXT_FIELDS}
    values["severity"] = ev.get("severity") if ev.get("severity") in ("info", "warning", "critical") else ""
    metrics = ev.get("metrics")
    values["metrics"] = _pretty(metrics) if isinstance(metrics, dict) and metrics else ""
    values["payload"] = _pretty(ev.get("payload"))
    extra = {k: v for k, v in ev.items() if k not in FORM_KEYS}
    if ev.get("severity") not in (None, "", "info", "warning", "critical"):
        extra["severity"] = ev["severity"]
    if metrics is not None and not isinstance(metrics, dict):
        extra["metrics"] = metrics
    return values, extra


def form_event(type_: str | None, values: dict[str, Any], extra: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The form as an event, values sent as typed so the API judges them in its own words; metrics and payload
    are parsed by the API's own strict parser (a problem there is reported at that field)."""
    ev: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    if type_:
        ev["type"] = type_
    for k in TEXT_FIELDS:
        v = (values.get(k) or "").strip()
        if v:
            ev[k] = v
    if values.get("severity"):
        ev["severity"] = values["severity"]
    for k in ("metrics", "payload"):
        text = (values.get(k) or "").strip()
        if text:
            try:
                ev[k] = loads(text)
            except JSONBodyError as exc:
                problems.append({"index": 0, "field": k, "message": f"invalid JSON: {exc}"[:300]})
    for k, v in (extra or {}).items():
        ev.setdefault(k, v)
    return ev, problems


def inject(body: Any, who) -> tuple[int, str, list[dict[str, Any]], list[str], int]:
    """POST /api/events without HTTP (engine/ingest/accept.py): (status, message, details, event ids, duplicates)."""
    try:
        done = accept(engine(), body, who, address())
    except Refused as no:
        return no.status, f"{no.message} (retry in {no.retry_after} s)" if no.status == 429 else no.message, no.details, [], 0
    return 202, "", [], done.event_ids, done.duplicates


def place_errors(details: list[dict[str, Any]], mode: str) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Each detail at its field ("worker_id", "metrics.units", "payload.x" → that field); the rest in a general list."""
    at: dict[str, list[str]] = {k: [] for k in FIELDS}
    general: list[tuple[str, str]] = []
    for d in details:
        f = d.get("field") or ""
        msg = d.get("message") or "invalid"
        if d.get("index"):
            f = f"[{d['index']}] {f}".strip()
        base = f.split(".")[0]
        if mode == "form" and base in at and not d.get("index"):
            at[base].append(msg if base == f else f"{f[len(base) + 1:]}: {msg}")
        elif mode == "form" and base == "type":
            general.append((f, msg))
        else:
            general.append((f, msg))
    return at, general


# ---------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------

_FIELD_OUTPUTS = [o for k in FIELDS for o in (Output(_ids(k), "value"), Output(f"{_ids(k)}-err", "children"), Output(f"{_ids(k)}-field", "className"))]
_FIELD_STATES = [State(_ids(k), "value") for k in FIELDS]


@wire(
    *_FIELD_OUTPUTS,
    Output("ct-json", "value"), Output("ct-json-err", "children"), Output("ct-json-field", "className"),
    Output("ct-general-errors", "children"), Output("ct-general-errors", "hidden"),
    Output("ct-extra", "data"), Output("ct-ts-auto", "data"), Output("ct-mode", "value"), Output("ct-template", "children"),
    Output("ct-send-status", "children"), Output("ct-send-status", "className"), Output("ct-sent-store", "data"),
    Input(_ids("type"), "value"), Input("ct-fresh", "n_clicks"), Input("ct-mode", "value"), Input("ct-send", "n_clicks"),
    *_FIELD_STATES,
    State("ct-json", "value"), State("ct-extra", "data"), State("ct-ts-auto", "data"), State("ct-sent-store", "data"),
)
def editor(type_, _fresh, mode, _send, *rest):
    who = guard("operator")
    values = dict(zip(FIELDS, rest[: len(FIELDS)]))
    json_text, extra, ts_auto, sent = rest[len(FIELDS):]
    trigger = ctx.triggered_id
    now = _now()
    out_values: dict[str, Any] = {k: no_update for k in FIELDS}
    errors: dict[str, list[str]] = {k: [] for k in FIELDS}
    general: list[tuple[str, str]] = []
    headline = "Not stored"
    json_out: Any = no_update
    json_errors: list[tuple[str, str]] = []
    extra_out: Any = no_update
    ts_out: Any = no_update
    mode_out: Any = no_update
    template_out: Any = no_update
    status: tuple[Any, str] = ("", "fp-ct-status")
    sent_out: Any = no_update

    if trigger in (None, _ids("type"), "ct-fresh"):
        eng = engine()
        tpl = templates(eng.live, eng.config.event_types, now).get(type_) or {"type": type_, "warehouse_id": ""}
        ev = {k: v for k, v in tpl.items() if k != "event_id"}  # a template sent twice must make two events
        ev["type"], ev["timestamp"] = type_, iso_ms(now)
        ts_out = ev["timestamp"]
        template_out = type_
        if mode == "json":
            json_out = _pretty(ev)
            extra_out = {}
        else:
            vals, extra_out = form_values(ev)
            out_values.update(vals)
    elif trigger == "ct-mode":
        if mode == "json":  # form → JSON
            ev, problems = form_event(type_, values, extra)
            if problems:
                errors, general = place_errors(problems, "form")
                headline, mode_out = "Fix the form first", "form"
            else:
                json_out = _pretty(ev)
        else:  # JSON → form
            try:
                parsed = loads(json_text or "{}")
            except JSONBodyError as exc:
                parsed, json_errors = None, [("", f"invalid JSON: {exc}")]
            if parsed is not None and not isinstance(parsed, dict):
                parsed, json_errors = None, [("", "the form edits one event object; a list can be sent from JSON mode as it is")]
            if parsed is None:
                mode_out = "json"
            else:
                vals, extra_out = form_values(parsed)
                out_values.update(vals)
                ts_out = None  # a time written in JSON is meant
    elif trigger == "ct-send":
        if mode == "json":
            try:
                body, problems = loads(json_text or ""), []
            except JSONBodyError as exc:
                body, problems = None, [_parse_error_detail(exc)]
                problems[0]["message"] = f"invalid JSON: {exc}"[:300]
        else:
            if ts_auto and values.get("timestamp") == ts_auto:  # untouched: the send time
                values["timestamp"] = out_values["timestamp"] = ts_out = iso_ms(now)
            body, problems = form_event(type_, values, extra)
        if problems:
            code, message, details, ids, dup = 400, "not sent", problems, [], 0
        else:
            code, message, details, ids, dup = inject(body, who)
        if code == 202:
            first = ids[0]
            accepted = len(ids) - dup
            text = "Already stored (same event_id), nothing new · " if dup and not accepted else f"Stored{f' {len(ids)} events' if len(ids) > 1 else ''} as "
            status = ([html.Span("✓", className="fp-ct-ok-mark", **{"aria-hidden": "true"}), text,
                       html.Code(first, className="fp-ct-event-id", title=first), " · ",
                       dcc.Link("View in timeline →", href=f"/?event={first}", className="fp-ct-link")], "fp-ct-status is-ok")
            what = (body[0] if isinstance(body, list) and body else body).get("type", "event") if isinstance(body, (dict, list)) else "event"
            sent_out = remember(sent, what, accepted, first, now)
        elif details:
            if mode == "json":
                json_errors = [(d.get("field") if not d.get("index") else f"[{d['index']}] {d.get('field') or ''}".strip(), d.get("message", "")) for d in details]
            else:
                errors, general = place_errors(details, "form")
            headline = capital(message)
            n = len(details)
            status = (f"Not stored: {'1 problem, shown at the field' if n == 1 else f'{n} problems, shown at the fields'}.", "fp-ct-status is-error")
        else:
            status = (f"Not stored: {message}", "fp-ct-status is-error")

    field_out: list[Any] = []
    for k in FIELDS:
        msg = " · ".join(errors[k])
        field_out += [out_values[k], msg, field_class(msg, "fp-span-2" if k == "timestamp" else "")]
    general_children = [html.Strong(headline), html.Ul([html.Li([html.Code(f), " " + m] if f else m) for f, m in general])] if general else []
    json_children = [html.Div([html.Code(f), " " + m] if f else m) for f, m in json_errors]
    return (
        *field_out,
        json_out, json_children, "fp-field has-error" if json_errors else "fp-field",
        general_children, not general,
        extra_out, ts_out, mode_out, template_out,
        *status, sent_out,
    )


def remember(sent: list[dict] | None, what: str, count: int, first: str | None, now: int) -> list[dict]:
    return ([{"at": now, "what": what, "count": count, "first": first}] + list(sent or []))[:SENT_MAX]


@wire(Output("ct-form", "hidden"), Output("ct-json-field", "hidden"), Output("ct-extra-note", "children"), Output("ct-extra-note", "hidden"),
      Input("ct-mode", "value"), Input("ct-extra", "data"))
def show_mode(mode, extra):
    guard("operator")
    keys = sorted(extra or {})
    note = ["Also sent as written in JSON (the form does not show them): ", html.Code(", ".join(keys))] if keys else []
    return mode != "form", mode != "json", note, not keys or mode != "form"


@wire(
    Output("ct-scn-status", "children"), Output("ct-scn-status", "className"), Output("ct-sent-store", "data", allow_duplicate=True),
    Input({"type": "ct-scn", "id": ALL}, "n_clicks"), State("ct-sent-store", "data"),
    prevent_initial_call=True,
)
def run_scenario(clicks, sent):
    """A scenario's events through the writer, as POST /api/scenarios/<id> does."""
    who = guard("operator")
    trigger = ctx.triggered_id
    if not trigger or not any(clicks):
        return no_update, no_update, no_update
    now = _now()
    try:
        scenario, ids = run_scenario_service(engine(), trigger["id"], who.name, address())
    except Refused as no:
        found = "; ".join(f"{d['field']}: {d['message']}" for d in no.details[:3])
        return capital(no.message) + (f": {found}" if found else "") + (f" (retry in {no.retry_after} s)" if no.status == 429 else ""), \
            "fp-ct-status is-error", no_update
    text = [f"{scenario.label}: sent {len(ids):,} {'event' if len(ids) == 1 else 'events'} · first ",
            html.Code(ids[0][:8] + "…" + ids[0][-4:] if len(ids[0]) > 13 else ids[0], className="fp-ct-event-id", title=ids[0]), " · ",
            dcc.Link("Timeline →", href=f"/?event={ids[0]}", className="fp-ct-link")]
    return text, "fp-ct-status is-ok", remember(sent, scenario.label, len(ids), ids[0], now)


@wire(Output("ct-sent", "children"), Input("ct-sent-store", "data"))
def show_sent(sent):
    guard("operator")
    if not sent:
        return html.Div("Nothing sent from this tab yet.", className="fp-ct-empty")
    now = _now()
    return html.Ul(
        [html.Li([html.Span(when(s["at"], now), className="fp-ct-sent-time"), html.Span(s["what"], className="fp-ct-sent-what"),
                  html.Span(f"{s['count']:,} {'event' if s['count'] == 1 else 'events'}", className="fp-ct-sent-count"),
                  dcc.Link("Timeline →", href=f"/?event={s['first']}", className="fp-ct-link") if s.get("first") else None])
         for s in sent],
        className="fp-ct-sent",
    )
