"""The anomalies list: throughput far from its recent baseline (z-score), newest first.

A shell; `assets/25_intel_lists.js` renders `#ld-anoms` from `hello.intel.anomalies` and each
`anomaly:alert` (bounded, filtered by the warehouse filter). The same anomalies are drawn as
▲▼ markers on the throughput chart and as marked lines on the timeline.
"""
from __future__ import annotations

from dash import html

from .panel import create_panel

LIST_ID = "ld-anoms"


def create_anomalies_panel(z_threshold: float | None = None) -> html.Section:
    rule = f"|z| ≥ {z_threshold:g}" if z_threshold else "z-score"
    body = html.Div(html.Div("Waiting for the anomaly detector…", className="fp-empty"), id=LIST_ID, className="fp-intel-list")
    return create_panel(
        "Anomalies",
        body,
        subtitle=f"throughput against its recent baseline · {rule} · newest first",
        extra=html.Span("", id=f"{LIST_ID}-meta", className="fp-panel-meta"),
        class_name="fp-anoms",
    )
