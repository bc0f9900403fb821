"""Kiosk tokens: the long-lived, revocable, read-only credential of a wall screen (SPEC 8, 9).

An admin creates a named token and gets two ways onto a TV: a URL that carries the token
(`/tv?k=fpk_…`), and a short activation code, typed once on the TV's `/tv` page, good for one
use within `CODE_TTL_MS`. Either one sets the `fp_kiosk` cookie and is gone from the address
bar; from then on the screen never meets a login page or a session expiry. Only SHA-256
hashes of tokens and codes are stored. A small in-memory view answers the per-request
check without a query; every change goes through here, so the view stays current (with
several processes, engine/core/sharing.py brings the others' changes in).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import insert, select, update

from ..storage.models import KioskTokenRow
from ..core.schema import epoch_ms
from ..storage.database import Database

if TYPE_CHECKING:
    from ..auth.accounts import Audit

TOKEN_PREFIX = "fpk_"
VIEWS = ("timeline", "throughput", "workers", "load")
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off one screen, typed on another
CODE_LEN = 8
CODE_TTL_MS = 24 * 3600 * 1000
ROTATE_MIN_S, ROTATE_MAX_S = 5, 3600
DEFAULT_ROTATE_S = 30
NAME_RE = re.compile(r"[^\x00-\x1f]{1,64}")
WAREHOUSE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class KioskError(ValueError):
    """A kiosk request that cannot be honoured; the message is shown to the admin who asked."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_code(code: str) -> str:
    """What a person typed → the code as issued: case, spaces and dashes do not matter."""
    return re.sub(r"[\s-]", "", code or "").upper()


def format_code(code: str) -> str:
    return code[:4] + "-" + code[4:]


def parse_views(value: Any) -> list[str]:
    """A list or comma-separated string of view names → a validated, de-duplicated list in the given order."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise KioskError(f"views must be a non-empty list of {', '.join(VIEWS)}", "views")
    out: list[str] = []
    for v in items:
        v = v.strip().lower() if isinstance(v, str) else v
        if v not in VIEWS:
            raise KioskError(f"unknown view {v!r}: use {', '.join(VIEWS)}", "views")
        if v not in out:
            out.append(v)
    return out


def parse_rotate(value: Any) -> int:
    """Seconds per view; 0 holds the first view (no rotation)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise KioskError(f"rotate_s must be a whole number of seconds ({ROTATE_MIN_S}–{ROTATE_MAX_S}, or 0 for none)", "rotate_s") from None
    if isinstance(value, bool) or (n != 0 and not ROTATE_MIN_S <= n <= ROTATE_MAX_S):
        raise KioskError(f"rotate_s must be {ROTATE_MIN_S}–{ROTATE_MAX_S} seconds, or 0 for none", "rotate_s")
    return n


def parse_warehouses(value: Any) -> list[str] | None:
    if value in (None, "", []):
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(w, str) and WAREHOUSE_RE.fullmatch(w.strip()) for w in items):
        raise KioskError("warehouses must be a list of warehouse ids, or empty for all", "warehouses")
    return [w.strip() for w in items][:64]


def parse_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The screen's settings from a create request; anything left out takes the default."""
    return {
        "views": parse_views(body["views"]) if body.get("views") not in (None, "") else list(VIEWS),
        "rotate_s": parse_rotate(body["rotate_s"]) if body.get("rotate_s") is not None else DEFAULT_ROTATE_S,
        "warehouses": parse_warehouses(body.get("warehouses")),
    }


def resolve_settings(token_settings: dict[str, Any] | None, query: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The kiosk token's settings, then the URL's; a bad URL value is ignored and reported, never fatal on a wall."""
    s = {"views": list(VIEWS), "rotate_s": DEFAULT_ROTATE_S, "warehouses": None, **(token_settings or {})}
    notes: list[str] = []
    for key, param, parse in (("views", "views", parse_views), ("rotate_s", "rotate", parse_rotate), ("warehouses", "warehouses", parse_warehouses)):
        if query.get(param) not in (None, ""):
            try:
                s[key] = parse(query[param])
            except KioskError as exc:
                notes.append(f"?{param}= ignored: {exc}")
    s["paused"] = str(query.get("pause", "")).lower() in ("1", "true", "yes") or s["rotate_s"] == 0 or len(s["views"]) == 1
    return s, notes


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    settings: dict[str, Any] = field(hash=False, compare=False)
    created_by: str = ""
    created_at: int = 0
    revoked_at: int | None = None
    last_seen_at: int | None = None
    code_expires_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self, online: int = 0) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "settings": self.settings, "created_by": self.created_by,
            "created_at": self.created_at, "revoked_at": self.revoked_at, "last_seen_at": self.last_seen_at,
            "code_expires_at": self.code_expires_at, "online": online,
        }


class KioskTokens:
    def __init__(self, db: Database):
        self.db = db
        self._by_hash: dict[str, Kiosk] = {}  # token hash → active kiosk
        self._all: dict[int, Kiosk] = {}
        self._codes: dict[str, int] = {}  # code hash → kiosk id (unused, unexpired)
        self._lock = threading.RLock()
        # several processes (engine/core/sharing.py): each change is announced, and a token or code this process does
        # not know is looked up in the database before it is refused (it may have been issued a moment ago elsewhere)
        self.changed: Callable[[str], None] = lambda what: None  # "kiosks"
        self.shared = False

    def load(self) -> set[int]:
        """Read every kiosk token (at start, or when another process changed one); returns the ids revoked since
        the last load, whose screens connected here must be told and dropped.

        The query runs under the lock, so a change made here meanwhile is installed after it, never undone by it."""
        with self._lock:
            with self.db.engine.connect() as conn:
                rows = conn.execute(select(KioskTokenRow.__table__)).all()
            was_active = {k.id for k in self._all.values() if k.active}
            self._all, self._by_hash, self._codes = {}, {}, {}
            for r in rows:
                self._install(r)
            return {i for i in was_active if not (i in self._all and self._all[i].active)}

    def _install(self, r) -> Kiosk:
        """One database row into the in-memory view (under the lock)."""
        now = epoch_ms()
        k = Kiosk(r.id, r.name, json.loads(r.settings), r.created_by, r.created_at, r.revoked_at, r.last_seen_at,
                  r.code_expires_at if r.code_hash and (r.code_expires_at or 0) > now else None)
        self._all[k.id] = k
        for th in [th for th, kk in self._by_hash.items() if kk.id == k.id]:
            del self._by_hash[th]
        for ch in [ch for ch, kid in self._codes.items() if kid == k.id]:
            del self._codes[ch]
        if k.active:
            self._by_hash[r.token_hash] = k
            if r.code_hash and k.code_expires_at:
                self._codes[r.code_hash] = k.id
        return k

    def _lookup(self, token_hash: str) -> Kiosk | None:
        """A token this process does not know, from the database: issued (or redeemed) in another process."""
        with self._lock:
            with self.db.engine.connect() as conn:
                row = conn.execute(select(KioskTokenRow.__table__).where(KioskTokenRow.token_hash == token_hash)).first()
            if row is None:
                return None
            k = self._install(row)
        return k if k.active else None

    # ---- reads (memory) ----

    def list(self) -> list[Kiosk]:
        return sorted(self._all.values(), key=lambda k: k.id, reverse=True)

    def get(self, kiosk_id: int) -> Kiosk | None:
        return self._all.get(kiosk_id)

    def validate(self, token: str | None) -> Kiosk | None:
        """The active kiosk a token speaks for, or None (unknown, malformed or revoked)."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        h = _hash(token)
        kiosk = self._by_hash.get(h)
        if kiosk is None and self.shared:
            kiosk = self._lookup(h)
        return kiosk

    def was_revoked(self, token: str | None) -> bool:
        """True when the token is well-formed but not active: the screen should say "revoked", not "sign in"."""
        return bool(token and token.startswith(TOKEN_PREFIX)) and self.validate(token) is None

    # ---- writes ----

    def create(self, name: Any, settings: dict[str, Any], created_by: str) -> tuple[Kiosk, str, str]:
        """A new kiosk → (kiosk, token, activation code). The token and code are shown once and never stored."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name.strip()):
            raise KioskError("name must be 1-64 printable characters, e.g. \"Dock 3 TV\"", "name")
        name = name.strip()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))
        now = epoch_ms()
        values = dict(name=name, token_hash=_hash(token), code_hash=_hash(code), code_expires_at=now + CODE_TTL_MS,
                      settings=json.dumps(settings, separators=(",", ":")), created_by=created_by[:64], created_at=now)
        with self.db.engine.begin() as conn:
            kiosk_id = conn.execute(insert(KioskTokenRow).values(**values)).inserted_primary_key[0]
        k = Kiosk(int(kiosk_id), name, settings, created_by, now, None, None, now + CODE_TTL_MS)
        with self._lock:
            self._all[k.id] = k
            self._by_hash[values["token_hash"]] = k
            self._codes[values["code_hash"]] = k.id
        self.changed("kiosks")
        return k, token, format_code(code)

    def redeem_code(self, code: str) -> str | None:
        """An activation code → the kiosk's token, or None when unknown, spent or expired.

        Only hashes are kept, so redeeming mints a new token for the kiosk: one kiosk is one screen,
        and the URL issued with the code stops working (opening that URL first spends the code instead)."""
        h = _hash(normalise_code(code))
        if self.shared and h not in self._codes:
            self.load()  # issued in another process a moment ago? (codes are typed by people: rare, and throttled)
        with self._lock:
            kiosk_id = self._codes.pop(h, None)
            k = self._all.get(kiosk_id) if kiosk_id is not None else None
        if k is None or not k.active or (k.code_expires_at or 0) <= epoch_ms():
            return None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        # only while the code is still unspent in the database: two processes cannot both redeem it
        changed = self._change(k.id, {"token_hash": _hash(token), "code_hash": None, "code_expires_at": None}, code_expires_at=None, if_code=h)
        return token if changed is not None else None

    def url_used(self, kiosk: Kiosk) -> None:
        """The token's URL was opened on a screen: its activation code is spent."""
        if kiosk.code_expires_at is not None:
            self._change(kiosk.id, {"code_hash": None, "code_expires_at": None}, code_expires_at=None)

    def revoke(self, kiosk_id: int) -> Kiosk:
        if self.shared and kiosk_id not in self._all:
            self.load()  # created in another process a moment ago?
        k = self._all.get(kiosk_id)
        if k is None:
            raise KioskError(f"no kiosk token {kiosk_id}", "id")
        if k.active:
            now = epoch_ms()
            k = self._change(kiosk_id, {"revoked_at": now, "code_hash": None, "code_expires_at": None}, revoked_at=now, code_expires_at=None)
        return k

    def seen(self, kiosk_id: int) -> None:
        """A screen connected: remember when (human rate, once per connection)."""
        if kiosk_id in self._all:
            now = epoch_ms()
            self._change(kiosk_id, {"last_seen_at": now}, last_seen_at=now)

    def _change(self, kiosk_id: int, row: dict[str, Any], *, if_code: str | None = None, **view: Any) -> Kiosk | None:
        """Write `row` to the kiosk's record and swap in its updated in-memory view (`view` = the changed fields).
        With `if_code`, only while the record still holds that activation code (else None, nothing changed)."""
        stmt = update(KioskTokenRow).where(KioskTokenRow.id == kiosk_id)
        if if_code is not None:
            stmt = stmt.where(KioskTokenRow.code_hash == if_code)
        with self.db.engine.begin() as conn:
            if conn.execute(stmt.values(**row)).rowcount == 0 and if_code is not None:
                return None
        with self._lock:
            new = replace(self._all[kiosk_id], **view)
            self._all[kiosk_id] = new
            old_hashes = [th for th, kk in self._by_hash.items() if kk.id == kiosk_id]
            for th in old_hashes:
                del self._by_hash[th]
            if new.active:
                for th in [row["token_hash"]] if "token_hash" in row else old_hashes:
                    self._by_hash[th] = new
            if "code_hash" in row:
                for ch in [ch for ch, kid in self._codes.items() if kid == kiosk_id]:
                    del self._codes[ch]
        self.changed("kiosks")
        return new


class KioskAdmin:
    """An admin's kiosk screens, whoever asks (/api/kiosk-tokens, the control page): the token, its one audit entry,
    and on revoking, its screens told and disconnected (`end_screens` → how many)."""

    def __init__(self, kiosks: KioskTokens, audit: "Audit", end_screens: Callable[[int], int] = lambda kiosk_id: 0):
        self.kiosks, self.audit, self.end_screens = kiosks, audit, end_screens

    def create(self, actor: str, address: str | None, body: dict[str, Any]) -> tuple[Kiosk, str, str]:
        """From `{name, views?, rotate_s?, warehouses?}` → (kiosk, token, code); KioskError names the field."""
        settings = parse_settings(body)
        kiosk, token, code = self.kiosks.create(body.get("name"), settings, actor)
        self.audit.write(actor, "kiosk_create", str(kiosk.id), {"name": kiosk.name, **settings}, address)
        return kiosk, token, code

    def revoke(self, actor: str, address: str | None, kiosk_id: int) -> tuple[Kiosk, int]:
        """→ (kiosk, screens disconnected)."""
        kiosk = self.kiosks.revoke(kiosk_id)
        screens = self.end_screens(kiosk_id)
        self.audit.write(actor, "kiosk_revoke", str(kiosk_id), {"name": kiosk.name, "screens": screens}, address)
        return kiosk, screens
