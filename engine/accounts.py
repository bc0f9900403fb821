"""Users, revoked tokens and the audit log: the database side of sign-in.

Passwords are stored as Werkzeug scrypt hashes. A small in-memory view of every
user (role, disabled, generation) answers the per-request checks without a query;
every change goes through here, so the view is always current in this process.

Every token carries the account's session generation (`gen` claim, engine/auth.py); a change
to the account bumps it, which ends every session issued before the change and none issued
after it, whatever the clock says (a time comparison in whole seconds refused a sign-in made
in the same second as the change, on every use).
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .models import AuditEntry, RevokedToken, User
from .schema import epoch_ms as _now_ms
from .storage import Database

ROLES = ("viewer", "operator", "admin", "kiosk")
USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
MIN_PASSWORD = 8
# checked when the user does not exist, so a wrong name costs as much as a wrong password
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A user change that is not allowed; the message is shown to the person who asked."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class UserView:
    username: str
    role: str
    disabled: bool
    created_at: int
    generation: int  # session generation: tokens carrying another one are refused (the users.valid_after column)

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "disabled": self.disabled, "created_at": self.created_at}



def check_password_rules(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters", "password")
    if len(password) > 256:
        raise AccountError("password must be at most 256 characters", "password")
    return password


class Accounts:
    def __init__(self, db: Database):
        self.db = db
        self._users: dict[str, UserView] = {}
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read users and revoked token ids into memory (at start, after create_schema)."""
        now_s = int(time.time())
        with self.db.engine.begin() as conn:
            conn.execute(delete(RevokedToken).where(RevokedToken.expires_at < now_s))
            rows = conn.execute(select(User.username, User.role, User.disabled, User.created_at, User.valid_after)).all()
            revoked = conn.execute(select(RevokedToken.jti)).scalars().all()
        with self._lock:
            self._users = {r[0]: UserView(r[0], r[1], bool(r[2]), r[3], r[4] or 0) for r in rows}
            self._revoked = set(revoked)

    # ---- reads (memory) ----

    def get(self, username: str) -> UserView | None:
        return self._users.get(username)

    def list(self) -> list[UserView]:
        return sorted(self._users.values(), key=lambda u: u.username)

    def is_revoked(self, jti: str | None) -> bool:
        return jti in self._revoked

    def token_valid(self, username: str, jti: str | None, generation: int) -> UserView | None:
        """The user a token speaks for, or None when the user is gone or disabled, the token revoked or of an older generation."""
        user = self._users.get(username)
        if user is None or user.disabled or (jti and jti in self._revoked) or generation != user.generation:
            return None
        return user

    # ---- writes ----

    def add(self, username: Any, password: Any, role: Any) -> UserView:
        if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
            raise AccountError("username must be 2-64 characters of A-Z a-z 0-9 _ . @ -", "username")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
        check_password_rules(password)
        if username in self._users:
            raise AccountError(f"user {username!r} exists", "username")
        view = UserView(username, role, False, _now_ms(), 0)
        with self.db.engine.begin() as conn:
            conn.execute(
                insert(User).values(
                    username=username, password_hash=generate_password_hash(password), role=role,
                    disabled=False, created_at=view.created_at, valid_after=0,
                )
            )
        with self._lock:
            self._users[username] = view
        return view

    def update(self, username: str, *, role: Any = None, password: Any = None, disabled: Any = None) -> UserView:
        """Change role, password or disabled; any change ends the user's existing sessions."""
        user = self._users.get(username)
        if user is None:
            raise AccountError(f"no user {username!r}", "username")
        values: dict[str, Any] = {}
        if role is not None:
            if role not in ROLES:
                raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
            values["role"] = role
        if password is not None:
            values["password_hash"] = generate_password_hash(check_password_rules(password))
        if disabled is not None:
            if not isinstance(disabled, bool):
                raise AccountError("disabled must be true or false", "disabled")
            values["disabled"] = disabled
        if not values:
            raise AccountError("nothing to change: give role, password or disabled")
        demoted = values.get("role", user.role) != "admin" or values.get("disabled", user.disabled)
        if user.role == "admin" and not user.disabled and demoted and self._active_admins() <= 1:
            raise AccountError("this is the last active admin; add another admin first", "role" if "role" in values else "disabled")
        # tokens issued up to now stop working: they carry the old generation
        values["valid_after"] = user.generation + 1
        with self.db.engine.begin() as conn:
            conn.execute(update(User).where(User.username == username).values(**values))
        view = UserView(username, values.get("role", user.role), values.get("disabled", user.disabled), user.created_at, values["valid_after"])
        with self._lock:
            self._users[username] = view
        return view

    def _active_admins(self) -> int:
        return sum(1 for u in self._users.values() if u.role == "admin" and not u.disabled)

    def verify(self, username: Any, password: Any) -> UserView | None:
        """The user when the password matches and the account is enabled; same cost for unknown names."""
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 256:
            return None
        with self.db.engine.connect() as conn:
            row = conn.execute(select(User.password_hash).where(User.username == username)).first()
        ok = check_password_hash(row[0] if row else _DUMMY_HASH, password)
        user = self._users.get(username)
        return user if ok and row and user and not user.disabled else None

    def revoke(self, jti: str, expires_at_s: int) -> None:
        with self._lock:
            if jti in self._revoked:
                return
            self._revoked.add(jti)
        with self.db.engine.begin() as conn:
            conn.execute(insert(RevokedToken).values(jti=jti, expires_at=expires_at_s))

    def ensure_first_admin(self, password: str = "") -> str | None:
        """On an empty user table create `admin`; returns the generated password (to print once) or None."""
        if self._users:
            return None
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(12)
        self.add("admin", password, "admin")
        return generated


class Audit:
    """Who did what, when, from where. Written synchronously: these are human-rate actions."""

    def __init__(self, db: Database):
        self.db = db
        self._counts: dict[tuple[str, str], list[int]] = {}  # (actor, action) → [requests, events]
        self._lock = threading.Lock()

    def count(self, actor: str, action: str, events: int) -> None:
        """Machine-rate actions (API ingest) are summed and written once a minute by `flush_counts`."""
        with self._lock:
            c = self._counts.setdefault((actor, action), [0, 0])
            c[0] += 1
            c[1] += events

    def flush_counts(self) -> int:
        with self._lock:
            counts, self._counts = self._counts, {}
        for (actor, action), (requests, events) in counts.items():
            self.write(actor, action, None, {"requests": requests, "events": events, "per": "minute"})
        return len(counts)

    def write(self, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None, address: str | None = None) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                insert(AuditEntry).values(
                    ts=_now_ms(), actor=actor[:64], action=action[:32], target=(target or "")[:128] or None,
                    detail=json.dumps(detail, separators=(",", ":"), default=str) if detail else None,
                    address=(address or "")[:64] or None,
                )
            )

    def recent(self, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        t = AuditEntry.__table__
        q = select(t).order_by(t.c.id.desc()).limit(limit)
        if before_id:
            q = q.where(t.c.id < before_id)
        with self.db.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{**r, "detail": json.loads(r["detail"]) if r["detail"] else None} for r in rows]
