"""The engine's intelligence: forecasts, drift, anomalies, rules and hot-reload (docs/intelligence.md).

`Intel` (service.py) composes the parts — `ModelRegistry` (registry.py), `DriftMonitor` (monitor.py),
`RulesRunner` (rules_runner.py) — over the shared `Floor`, `DriftBook` (history.py) and `Outbox`
(outbox.py); its HTTP routes are in api.py.
"""
from .service import Intel

__all__ = ["Intel"]
