"""Figure factories: every chart starts here, on the shared template, with titled axes and units.

Each factory fixes the trace structure the browser bridge relies on (one trace
per warehouse with `meta` = warehouse id, one per severity, ...). The bridge
then extends traces (`extendData`) or swaps the arrays of small figures; it
never changes their styling, so the look is decided here only.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from .theme import (
    LOAD_COLORS,
    MUTED,
    PRIORITY_COLORS,
    SEVERITY_COLORS,
    TARGET_COLOR,
    TEMPLATE_NAME,
    warehouse_color,
)

GRAPH_CONFIG = {"displayModeBar": False, "responsive": True, "displaylogo": False}
TIME_AXIS = dict(
    type="date",
    title=dict(text="Time (UTC)"),
    hoverformat="%H:%M:%S",
    tickformatstops=[
        dict(dtickrange=[None, 60_000], value="%H:%M:%S"),
        dict(dtickrange=[60_000, 86_400_000 - 1], value="%H:%M"),  # a day apart: the date, not "00:00" on every tick
        dict(dtickrange=[86_400_000, None], value="%d %b"),
    ],
)
LATENCY_TARGET_MS = 100  # p95 push-latency objective drawn on the throughput view
TIMELINE_MAX_POINTS = 3000
TIMELINE_WINDOW_MIN = 10
SEVERITIES = ("info", "warning", "critical")


def _figure(data: Sequence[go.BaseTraceType], **layout: Any) -> go.Figure:
    return go.Figure(data=list(data), layout=go.Layout(template=TEMPLATE_NAME, **layout))


def _empty_note(text: str) -> dict:
    return dict(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font=dict(size=13, color=MUTED), name="empty")


# ---- timeline ----


def timeline_figure(event_types: Sequence[str], *, now_ms: int) -> go.Figure:
    """Time × event type, one marker trace per severity (filled by the bridge from its event buffer)."""
    sizes = {"info": 6, "warning": 10, "critical": 12}
    traces = [
        go.Scatter(
            x=[], y=[], customdata=[], mode="markers", name=sev.capitalize(), meta=sev,
            marker=dict(
                color=SEVERITY_COLORS[sev], size=sizes[sev], opacity=0.55 if sev == "info" else 0.95,
                line=dict(width=0 if sev == "info" else 1, color="white"),
                symbol="circle" if sev == "info" else "diamond",
            ),
            hovertemplate="<b>%{y}</b> · " + sev + "<br>%{x|%H:%M:%S.%L} UTC<br>%{customdata}<extra></extra>",
        )
        for sev in SEVERITIES
    ]
    n = len(event_types)
    return _figure(
        traces,
        xaxis=dict(**TIME_AXIS, range=[now_ms - TIMELINE_WINDOW_MIN * 60_000, now_ms], autorange=False),
        yaxis=dict(
            type="category", categoryorder="array", categoryarray=list(event_types), range=[n - 0.5, -0.5],
            autorange=False, showgrid=True, title=dict(text="Event type"), tickfont=dict(size=11),
        ),
        legend=dict(title=dict(text="Severity  ")),
        uirevision="timeline",
    )


def timeline_counts_figure(counts: Mapping[str, Any]) -> go.Figure:
    """The timeline over a range (engine.event_counts): events per bucket and severity, as bars from each bucket's
    start (`customdata`) across the bucket, one trace per severity (`meta`). Warnings and critical events have their
    own strip above the info events, on their own scale: a handful of them would not show on top of thousands.
    `layout.meta.range` is the range; a live one grows on the right as the browser adds the events it receives."""
    rng = counts["range"]
    bucket = counts["bucket_ms"]
    starts = list(counts["starts"])
    traces = [
        go.Bar(
            x=starts, y=list(counts["counts"].get(sev, [])), customdata=starts, name=sev.capitalize(), meta=sev,
            yaxis="y" if sev == "info" else "y2", offset=0, width=bucket, marker=dict(color=SEVERITY_COLORS[sev], line=dict(width=0)),
            hovertemplate=f"%{{y:,}} {sev}<extra></extra>",
        )
        for sev in reversed(SEVERITIES)
    ]
    end = max(rng["until"], starts[-1] + bucket) if starts else rng["until"]
    return _figure(
        traces,
        barmode="stack",
        bargap=0,
        xaxis=dict(**{**TIME_AXIS, "hoverformat": "%a %d %b %H:%M"}, range=[rng["since"], end], autorange=False),
        yaxis=dict(title=dict(text="Info"), rangemode="tozero", domain=[0, 0.6]),
        yaxis2=dict(title=dict(text="Warning, critical"), rangemode="tozero", domain=[0.7, 1], anchor="x"),
        hovermode="x unified",
        legend=dict(title=dict(text="Severity  "), traceorder="reversed"),
        meta=dict(range=dict(rng)),
        uirevision=f"timeline-{rng['name']}-{rng['since']}",
    )


# ---- throughput ----


def warehouse_lines(
    x: Sequence[int],
    series: Mapping[str, Sequence[float]],
    warehouses: Sequence[str],
    names: Mapping[str, str],
    *,
    y_title: str,
    unit: str,
    stacked: bool = False,
    decimals: int = 1,
    span: tuple[int, int] | None = None,
    forecast: bool = False,
    learning_min: int | None = None,
    time_range: Mapping[str, Any] | None = None,
    yesterday: Mapping[str, Any] | None = None,
    raw: Mapping[str, Sequence[float]] | None = None,
) -> go.Figure:
    """One line per warehouse (`meta` = warehouse id), in the order given: the bridge extends by index.

    `raw` (with `series` the smoothed lines): each warehouse's unsmoothed series as a thin, lighter line of its colour
    (`meta` = {"wh", "part": "raw"}), hidden until the view's "Raw per minute" checkbox shows it.

    `time_range` (TimeRange.to_json()): the x axis is that range (a range in the past is fixed to it, one ending now
    grows with the live points) and `layout.meta.range` tells the bridge whether to append live points.
    `yesterday` ({"x", <series>}: the same series 24 h earlier, x moved onto this range): a dashed line per warehouse
    (`meta` = {"wh", "part": "yesterday"}), hidden until the view's checkbox shows it (assets/26_range.js).

    `forecast=True` appends, after the live lines, each warehouse's forecast band and line and one
    anomaly marker trace (`meta` = a dict, see forecast_traces); assets/25_intel_charts.js fills them.
    `learning_min`: minutes of history the engine needs first, for the note shown until a forecast arrives.
    """
    traces = []
    for i, wh in enumerate(warehouses):
        color = warehouse_color(i)
        extra = dict(stackgroup="total", line=dict(width=1, color=color), fillcolor=_alpha(color, 0.55)) if stacked else dict(line=dict(width=2, color=color))
        if forecast or yesterday is not None or raw is not None:
            extra["legendgroup"] = f"fc-{wh}"  # the legend hides a warehouse's line and its forecast (yesterday, raw) together
        traces.append(
            go.Scatter(
                x=list(x), y=list(series.get(wh, [])), mode="lines", name=names.get(wh, wh), meta=wh,
                hovertemplate=f"%{{y:.{decimals}f}} {unit}<extra>{names.get(wh, wh)}</extra>", **extra,
            )
        )
    layout = dict(xaxis=dict(**TIME_AXIS), yaxis=dict(title=dict(text=y_title), rangemode="tozero"), hovermode="x unified", uirevision="wh")
    if raw is not None:
        for i, wh in enumerate(warehouses):
            traces.append(raw_trace(wh, names.get(wh, wh), warehouse_color(i), x, raw.get(wh, []), unit=unit, decimals=decimals))
    if yesterday is not None:
        for i, wh in enumerate(warehouses):
            traces.append(yesterday_trace(wh, names.get(wh, wh), warehouse_color(i), yesterday["x"], yesterday["series"].get(wh, []),
                                          unit=unit, decimals=decimals))
    if time_range is not None:
        layout["meta"] = dict(range=dict(time_range))
        layout["uirevision"] = f"wh-{time_range['name']}"  # a new range is a new view: no zoom carried over
        if not time_range["live"]:
            layout["xaxis"] = dict(**TIME_AXIS, range=[time_range["since"], time_range["until"]], autorange=False)
    if forecast:
        for i, wh in enumerate(warehouses):
            traces.extend(forecast_traces(wh, names.get(wh, wh), warehouse_color(i), unit=unit, decimals=decimals))
        traces.append(anomaly_trace(unit))
        layout["annotations"] = [_forecast_note(FORECAST_WAITING)]
        layout["meta"] = dict(layout.get("meta") or {}, learning_min=learning_min)
    if not warehouses:
        layout["annotations"] = [_empty_note("No warehouse has reported yet")]
        if span:
            layout["xaxis"] = dict(**TIME_AXIS, range=list(span), autorange=False)
    return _figure(traces, **layout)


def raw_trace(wh: str, name: str, color: str, x: Sequence[int], y: Sequence[float], *, unit: str, decimals: int = 1) -> go.Scatter:
    """A warehouse's unsmoothed series beside its smoothed line: thin and light, hidden until asked for."""
    return go.Scatter(
        x=list(x), y=list(y), mode="lines", name=f"{name} raw", meta=dict(wh=wh, part="raw"), legendgroup=f"fc-{wh}",
        showlegend=False, visible=False, line=dict(width=1, color=color), opacity=0.45,
        hovertemplate=f"%{{y:.{decimals}f}} {unit} raw<extra>{name}</extra>",
    )


def yesterday_trace(wh: str, name: str, color: str, x: Sequence[int], y: Sequence[float], *, unit: str, decimals: int = 1) -> go.Scatter:
    """A warehouse's series 24 h earlier drawn over this range: thin, dashed, hidden until asked for."""
    return go.Scatter(
        x=list(x), y=list(y), mode="lines", name=f"{name} yesterday", meta=dict(wh=wh, part="yesterday"), legendgroup=f"fc-{wh}",
        showlegend=False, visible=False, line=dict(width=1.5, color=color, dash="longdash"), opacity=0.7,
        hovertemplate=f"%{{y:.{decimals}f}} {unit} yesterday<extra>{name}</extra>",
    )


# ---- forecasts (issue 5): band traces the browser fills from forecast:update ----

FORECAST_WAITING = "Forecast: waiting for the engine's first forecast"
ANOMALY_COLORS = {"up": "#d64541", "down": "#e3a21a"}


def forecast_traces(wh: str, name: str, color: str, *, unit: str, decimals: int = 1, scale: float = 1.0) -> list[go.Scatter]:
    """A warehouse's 95 % band (lower edge, then upper edge filled to it) and its dashed forecast line.

    `meta` = {"wh", "part": "lo" | "hi" | "yhat", "scale"}: the bridge swaps x/y of each part
    (y × scale) and hides the three together. Empty until the first forecast arrives.
    """
    common = dict(x=[], y=[], mode="lines", legendgroup=f"fc-{wh}", visible=False)
    hover = f"%{{y:.{decimals}f}} {unit}"
    return [
        go.Scatter(**common, name=f"{name} 95 % low", meta=dict(wh=wh, part="lo", scale=scale), line=dict(width=0, color=color),
                   showlegend=False, hoverinfo="skip"),
        go.Scatter(**common, name=f"{name} 95 % band", meta=dict(wh=wh, part="hi", scale=scale), line=dict(width=0, color=color),
                   fill="tonexty", fillcolor=_alpha(color, 0.13), showlegend=False, hoverinfo="skip"),
        go.Scatter(**common, name=f"{name} forecast", meta=dict(wh=wh, part="yhat", scale=scale), line=dict(width=2, color=color, dash="dash"),
                   showlegend=False, customdata=[], hovertemplate=f"{hover} forecast<br>95 %: %{{customdata}}<extra>{name}</extra>"),
    ]


def anomaly_trace(unit: str) -> go.Scatter:
    """Anomalies as triangles at the observed value (▲ above the baseline, ▼ below); filled by the bridge."""
    return go.Scatter(
        x=[], y=[], customdata=[], mode="markers", name="Anomaly", meta=dict(part="anomaly"), visible=False,
        marker=dict(size=13, symbol=[], color=[], line=dict(width=1.5, color="white")),
        hovertemplate="<b>Anomaly</b> %{customdata}<extra></extra>",
    )


def _forecast_note(text: str) -> dict:
    """The forecast's empty state, top left inside the plot (the live lines keep the middle)."""
    return dict(text=text, xref="paper", yref="paper", x=0.01, y=0.98, xanchor="left", yanchor="top", showarrow=False,
                font=dict(size=12, color=MUTED), bgcolor="rgba(255,255,255,0.85)", name="forecast")


def load_forecast_figure(
    warehouses: Sequence[str], names: Mapping[str, str], *, learning_min: int | None = None,
    history: Mapping[str, Any] | None = None, time_range: Mapping[str, Any] | None = None,
) -> go.Figure:
    """Load (open tasks as % of capacity) per warehouse: over the range (`history`, Engine.open_over_range: x,
    load_pct and open_tasks per warehouse), then live points the browser appends, then the forecast of the next 60
    minutes with its 95 % band; the capacity line at 100 %. A range in the past is fixed to its axis, without
    live points or forecast (`layout.meta.range`)."""
    history = history or {}
    x = list(history.get("x", []))
    traces: list[go.Scatter] = []
    for i, wh in enumerate(warehouses):
        color = warehouse_color(i)
        traces.append(go.Scatter(x=x, y=list(history.get("load_pct", {}).get(wh, [])), customdata=list(history.get("open_tasks", {}).get(wh, [])),
                                 mode="lines", name=names.get(wh, wh), meta=dict(wh=wh, part="live"), line=dict(width=2, color=color),
                                 legendgroup=f"fc-{wh}", hovertemplate=f"%{{y:.0f}} % of capacity · %{{customdata}} open<extra>{names.get(wh, wh)}</extra>"))
        traces.extend(forecast_traces(wh, names.get(wh, wh), color, unit="% of capacity", decimals=0, scale=100.0))
    xaxis = dict(**TIME_AXIS)
    if time_range is not None and not time_range["live"]:
        xaxis.update(range=[time_range["since"], time_range["until"]], autorange=False)
    return _figure(
        traces,
        xaxis=xaxis,
        yaxis=dict(title=dict(text="Load (% of capacity)"), rangemode="tozero", ticksuffix=" %"),
        hovermode="x unified",
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=100, y1=100, line=dict(color=TARGET_COLOR, width=1.5, dash="dash"), name="capacity")],
        annotations=[dict(text="capacity", xref="paper", x=1, xanchor="right", y=100, yanchor="bottom", showarrow=False, font=dict(size=11, color=MUTED)),
                     _forecast_note(FORECAST_WAITING if warehouses else "No warehouse has reported yet")],
        uirevision="load-forecast" + (f"-{time_range['name']}" if time_range else ""),
        meta=dict(learning_min=learning_min, range=dict(time_range) if time_range else None),
    )


def latency_figure(points: Sequence[tuple[int, float | None, float | None]] = ()) -> go.Figure:
    """Ingest → push latency p50 / p95 (ms), with the p95 objective as a dashed line."""
    xs = [p[0] for p in points]
    traces = [
        go.Scatter(x=xs, y=[p[1] for p in points], mode="lines", name="p50", meta="p50", line=dict(width=2, color="#7d93b8"),
                   hovertemplate="%{y:.1f} ms<extra>p50</extra>"),
        go.Scatter(x=xs, y=[p[2] for p in points], mode="lines", name="p95", meta="p95", line=dict(width=2.5, color="#3566c8"),
                   hovertemplate="%{y:.1f} ms<extra>p95</extra>"),
    ]
    return _figure(
        traces,
        xaxis=dict(**TIME_AXIS),
        yaxis=dict(title=dict(text="Latency (ms)"), rangemode="tozero"),
        hovermode="x unified",
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=LATENCY_TARGET_MS, y1=LATENCY_TARGET_MS,
                     line=dict(color=TARGET_COLOR, width=1, dash="dash"), opacity=0.45)],
        annotations=[dict(text=f"p95 target {LATENCY_TARGET_MS} ms", xref="paper", x=1, xanchor="right", y=LATENCY_TARGET_MS,
                          yanchor="bottom", showarrow=False, font=dict(size=11, color=MUTED))],
        uirevision="latency",
    )


def type_mix_figure(by_type: Mapping[str, float], event_types: Sequence[str]) -> go.Figure:
    """Events per second by type (last 10 s), every configured type in a fixed order so bars never jump."""
    values = [by_type.get(t, 0.0) for t in event_types]
    trace = go.Bar(
        x=values, y=list(event_types), orientation="h", marker=dict(color="#3566c8"),
        text=[f"{v:.1f}" if v else "" for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2f} events/s<extra></extra>",
    )
    return _figure(
        [trace],
        xaxis=dict(title=dict(text="Events per second"), rangemode="tozero", showgrid=True),
        yaxis=dict(type="category", autorange="reversed", showgrid=False, tickfont=dict(size=11)),
        bargap=0.3,
    )


# ---- workers ----


def hbar_figure(
    keys: Sequence[str], values: Sequence[float], *, labels: Sequence[str] | None = None, x_title: str, color: str, unit: str,
    decimals: int = 0, empty: str = "No data yet", slots: int = 15
) -> go.Figure:
    """A ranked horizontal bar chart (largest on top), one bar per key (e.g. a worker id) shown by its label;
    the bridge swaps `x`, `y` (keys), `text`, `customdata` (labels) and the axis' `tickvals`/`ticktext`.

    `layout.meta.empty` is the note shown (axes hidden) while there is nothing to rank.
    """
    labels = list(keys if labels is None else labels)
    trace = go.Bar(
        x=list(values), y=list(keys), customdata=labels, orientation="h", marker=dict(color=color),
        text=[f"{v:.{decimals}f}" for v in values], textposition="outside", cliponaxis=False,
        hovertemplate=f"%{{customdata}}: %{{x:.{decimals}f}} {unit}<extra></extra>",
    )
    has = bool(keys)
    slots = max(len(keys), slots)
    return _figure(
        [trace],
        xaxis=dict(title=dict(text=x_title), range=[0, max(5.0, max(values, default=0) * 1.12)], autorange=False, showgrid=True, visible=has),
        # a fixed number of rows keeps bars the same thickness however many there are
        yaxis=dict(type="category", range=[slots - 0.5, -0.5], autorange=False, showgrid=False, tickfont=dict(size=11), visible=has,
                   tickmode="array", tickvals=list(keys), ticktext=labels),
        bargap=0.22,
        meta=dict(empty=empty),
        annotations=[] if has else [_empty_note(empty)],
    )


def utilisation_figure(names: Sequence[str], values: Sequence[float | None], color: str) -> go.Figure:
    """Average busy share per warehouse, as horizontal bars on a fixed 0–100 % scale."""
    trace = go.Bar(
        x=list(values), y=list(names), orientation="h", marker=dict(color=color),
        text=[("—" if v is None else f"{v:.0f} %") for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1f} % busy<extra></extra>",
    )
    return _figure(
        [trace],
        xaxis=dict(title=dict(text="Busy share of signed-in time (%)"), range=[0, 112], autorange=False, dtick=25, showgrid=True),
        yaxis=dict(type="category", range=[max(len(names), 5) - 0.5, -0.5], autorange=False, showgrid=False),
        bargap=0.35,
        annotations=[] if names else [_empty_note("No warehouse has reported yet")],
    )


def completed_bars_figure(
    starts: Sequence[int], counts: Mapping[str, Sequence[int]], warehouses: Sequence[str], names: Mapping[str, str], *,
    bucket_ms: int, time_range: Mapping[str, Any], hour: Mapping[str, Any] | None = None,
) -> go.Figure:
    """Tasks completed per bar (`bucket_ms`: an hour, or longer), stacked by warehouse on the range's time axis: one bar
    trace per warehouse (`meta` = its id), each bar from its start (x) to just before the next.

    `layout.meta`: `range` (the view's TimeRange), `bucket_ms`, and for a live range `hour` = {start, completed}: the
    current hour's counts already in the last bar, which the browser replaces with each tick's `done_hour`."""
    traces = [
        go.Bar(
            x=list(starts), y=list(counts.get(wh, [0] * len(starts))), name=names.get(wh, wh), meta=wh, offset=0, width=bucket_ms * 0.92,
            marker=dict(color=warehouse_color(i), line=dict(width=0)),
            hovertemplate="from %{x|%d %b %H:%M} UTC<br>%{y} tasks<extra>" + names.get(wh, wh) + "</extra>",
        )
        for i, wh in enumerate(warehouses)
    ]
    return _figure(
        traces,
        annotations=[] if warehouses else [_empty_note("No warehouse has reported yet")],
        barmode="stack",
        xaxis=dict(**TIME_AXIS, range=[time_range["since"], time_range["until"]], autorange=False),
        yaxis=dict(title=dict(text="Completed tasks"), rangemode="tozero"),
        hovermode="closest",
        meta=dict(range=dict(time_range), bucket_ms=bucket_ms, hour=dict(hour) if hour else None),
        uirevision=f"done-{time_range['name']}",
    )


# ---- load ----


def load_figure(warehouses: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Open tasks as % of capacity per warehouse (the engine's `load_pct` and `level`), with the 100 % capacity line."""
    names = [w["name"] for w in warehouses]
    pct = [w["load_pct"] or 0 for w in warehouses]
    trace = go.Bar(
        x=names, y=pct, marker=dict(color=[LOAD_COLORS[w["level"]] for w in warehouses]),
        text=[f"{w['open_tasks']} / {w['capacity']}" for w in warehouses], textposition="outside", cliponaxis=False,
        customdata=[w["id"] for w in warehouses],
        hovertemplate="%{x}<br>%{y:.1f} % of capacity<br>%{text} open tasks<extra></extra>",
    )
    top = max([110.0, *(p * 1.15 for p in pct)])
    notes = [dict(text="capacity", xref="paper", x=1, xanchor="right", y=100, yanchor="bottom", showarrow=False, font=dict(size=11, color=MUTED))]
    return _figure(
        [trace],
        xaxis=dict(type="category", showgrid=False),
        yaxis=dict(title=dict(text="Open tasks (% of capacity)"), range=[0, top], autorange=False, ticksuffix=" %"),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=100, y1=100, line=dict(color=TARGET_COLOR, width=1.5, dash="dash"))],
        annotations=notes + ([] if warehouses else [_empty_note("No warehouse has reported yet")]),
        bargap=0.4,
    )


def backlog_figure(warehouses: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Open tasks by priority, stacked per warehouse (one trace per priority, `meta` = priority)."""
    names = [w["name"] for w in warehouses]
    traces = [
        go.Bar(
            x=names, y=[w["backlog"].get(p, 0) for w in warehouses], name=p.capitalize(), meta=p,
            marker=dict(color=PRIORITY_COLORS[p]), hovertemplate="%{x}: %{y} " + p + "-priority tasks<extra></extra>",
        )
        for p in ("high", "normal", "low")
    ]
    return _figure(
        traces, barmode="stack", xaxis=dict(type="category", showgrid=False), yaxis=dict(title=dict(text="Open tasks")), bargap=0.4,
        annotations=[] if warehouses else [_empty_note("No warehouse has reported yet")],
    )


def _alpha(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
