"""Taking events in from a person or an integration, one definition for POST /api/events and the control page's
Send: validate, the live model's cardinality gate, the writer's queue (waiting until stored), and the audit log —
one entry per injection by a person at a browser, a per-minute count for an integration."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.schema import validate_batch
from .writer import IngestClosed, QueueFull, submit_and_wait

if TYPE_CHECKING:
    from ..auth.gate import Identity
    from ..runtime.engine import Engine


class Refused(Exception):
    """Nothing was stored: an HTTP status, the message and field details in the API's words, and when to retry."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.details, self.retry_after = status, message, details or [], retry_after


@dataclass
class Accepted:
    event_ids: list[str]
    duplicates: int
    rejected: list[dict[str, Any]] = field(default_factory=list)  # with `partial`: the events left out


def accept(engine: "Engine", body: Any, who: "Identity", address: str | None, *, partial: bool = False) -> Accepted:
    """Store a parsed request body (one event or a list); `partial`: store the valid ones and list the rest."""
    cfg = engine.config
    events, errors = validate_batch(body, types=engine.types, max_events=cfg.max_batch_events)
    details = [e.to_json() for e in errors]
    if errors and (not partial or not events):
        raise Refused(400, "invalid events: nothing was stored", details)
    refused = engine.live.admit(events)
    if refused is not None:
        raise Refused(409, "too many warehouses or workers: nothing was stored", [refused.to_json()])
    try:
        ticket = submit_and_wait(engine.ingest, events, cfg.ingest_wait_s)
    except QueueFull as full:
        raise Refused(429, str(full), retry_after=full.retry_after_s) from None
    except IngestClosed as exc:
        raise Refused(503, str(exc), retry_after=5) from None
    except TimeoutError as exc:
        # still queued: the writer keeps it until it is stored, but it cannot be promised yet; the ids make a retry safe
        raise Refused(503, f"{exc}: still queued, kept until stored; retrying with the same event_ids is safe", retry_after=2) from None
    except Exception as exc:  # noqa: BLE001 - the database refused this request's own data (other requests are not affected)
        raise Refused(503, f"storage failed for this request, nothing was stored: {type(exc).__name__}", retry_after=2) from None
    if who.via == "cookie":  # a person at a browser (the control page): one entry per injection
        engine.audit.write(who.name, "inject", events[0].event_id, {"via": "page", "events": len(events), "type": events[0].type}, address)
    else:  # an integration: summed per minute
        engine.audit.count(who.name, "ingest", len(events))
    return Accepted([e.event_id for e in events], ticket.duplicates, details)
