"""What the intelligence concludes (alerts, `ai.action`) goes through ingest like any other source: validated,
stored, pushed. Also the files it watches (models, rules): when one is still being written, and one alert
per bad version of a file.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from . import forecast as fc
from ..ingest.writer import IngestClosed, QueueFull
from ..core.schema import Event, validate_batch

log = logging.getLogger("engine.intel")  # the logger the service always logged under: log filters keep working
SETTLE_S = 1.0  # a watched file modified more recently than this is still being written: look again next time


def file_hash(path: Path, missing: str) -> str:
    """The content hash of a file, or `missing` when it cannot be read (gone, or not ours to read)."""
    try:
        return fc.content_hash(path.read_bytes())
    except OSError:
        return missing


class Outbox:
    """Events waiting to be stored: sent on `flush`; kept for the next flush while the ingest queue is full."""

    def __init__(self, *, submit: Callable[[list[Event]], Any], types: Iterable[str]):
        """`submit(events)` queues events for the writer (raises QueueFull / IngestClosed as Ingest.submit does)."""
        self._submit = submit
        self._types = frozenset(types)
        self._lock = threading.Lock()
        self._pending: list[dict] = []
        self._bad: set[tuple[str, str]] = set()  # (file, content hash) already alerted

    def store(self, raw: dict) -> None:
        with self._lock:
            self._pending.append(raw)

    def flush(self) -> None:
        with self._lock:
            raws, self._pending = self._pending, []
        if not raws:
            return
        events, errors = validate_batch(raws, types=self._types, max_events=len(raws))
        if errors:
            log.error("intel made invalid events: %s", [e.to_json() for e in errors[:3]])
            return
        try:
            self._submit(events)
        except QueueFull:
            with self._lock:
                self._pending = raws + self._pending  # back-pressure: next run
        except IngestClosed:
            pass

    def alert_rejected(self, path: Path, digest: str, *, warehouse_id: str, status: str, error: str, message: str) -> None:
        """A watched file (model or rules) that hot-reload refused: logged and stored as one `system.alert`
        per bad version of the file (path and content hash), not one per poll."""
        if (str(path), digest) in self._bad:
            return
        self._bad.add((str(path), digest))
        log.warning(message)
        self.store({
            "type": "system.alert", "warehouse_id": warehouse_id, "severity": "warning", "status": status,
            "payload": {"source": "hot-reload", "file": str(path), "error": error[:500], "message": message[:800]},
        })

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
