"""The web process's HTTP API: events in and out, stats, health, metrics, and the error shape every blueprint answers with."""
