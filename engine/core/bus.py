"""The in-process bus: stored events fan out to whoever listens (push, and later forecasts and rules).

Handlers run in the publisher's thread and must be quick: append to a buffer, return.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger(__name__)
Handler = Callable[[Any], None]


class InProcessBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        with self._lock:
            self._handlers[topic].append(handler)

    def publish(self, topic: str, message: Any) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(message)
            except Exception:  # one bad listener must not stop ingest
                log.exception("bus handler for %s failed", topic)
