"""Users, revoked tokens and the audit log: the database side of sign-in.

Passwords are stored as Werkzeug scrypt hashes. A small in-memory view of every
user (role, disabled, generation) answers the per-request checks without a query;
every change goes through here, so the view is always current in this process. With
several processes (REDIS_URL), each change is announced (`changed`) and the others reload
(engine/core/sharing.py); changes are judged on the stored row, not on this process's view.

Every token carries the account's session generation (`gen` claim, engine/auth/gate.py); a change
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
from typing import Any, Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..storage.models import AuditEntry, RevokedToken, User
from ..core.schema import epoch_ms as _now_ms
from ..storage.database import Database

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


_USER_COLUMNS = (User.username, User.role, User.disabled, User.created_at, User.valid_after)


def _view(row) -> UserView:
    return UserView(row[0], row[1], bool(row[2]), row[3], row[4] or 0)


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
        self._lock = threading.RLock()
        # several processes (engine/core/sharing.py): each change is announced, and a token newer than this
        # process's view of its account makes it read that account again before refusing it
        self.changed: Callable[[str], None] = lambda what: None  # "users" | "revoked"
        self.shared = False

    def load(self) -> None:
        """Read users and revoked token ids into memory (at start, after create_schema)."""
        now_s = int(time.time())
        with self.db.engine.begin() as conn:
            conn.execute(delete(RevokedToken).where(RevokedToken.expires_at < now_s))
        self.reload_users()
        self.reload_revoked()

    def reload_users(self) -> set[str]:
        """Read every user again (another process changed one); returns the names whose role, state or generation
        changed or that are gone, whose sessions and sockets must end here too.

        The query runs under the lock: a change made here meanwhile installs its view after this one, never
        before it (an older read must not undo a newer change)."""
        with self._lock:
            with self.db.engine.connect() as conn:
                rows = conn.execute(select(*_USER_COLUMNS)).all()
            old, self._users = self._users, {r[0]: _view(r) for r in rows}
        return {name for name, view in old.items() if self._users.get(name) != view}

    def reload_revoked(self) -> None:
        with self._lock:
            with self.db.engine.connect() as conn:
                self._revoked = set(conn.execute(select(RevokedToken.jti)).scalars().all())

    def _refresh_user(self, username: str) -> UserView | None:
        """One user from the database, installed in memory (a token newer than what this process knows)."""
        with self._lock:
            with self.db.engine.connect() as conn:
                row = conn.execute(select(*_USER_COLUMNS).where(User.username == username)).first()
            if row is None:
                self._users.pop(username, None)
                return None
            return self._install(_view(row))

    def _install(self, view: UserView) -> UserView:
        """Put a view read from the database in memory unless a newer one is there already (every change bumps the
        generation): a read that raced with a change must not bring back the sessions the change ended."""
        with self._lock:
            current = self._users.get(view.username)
            if current is None or view.generation >= current.generation:
                self._users[view.username] = current = view
            return current

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
        if self.shared and (user is None or generation > user.generation):
            user = self._refresh_user(username)  # issued by another process after a change not applied here yet
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
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    insert(User).values(
                        username=username, password_hash=generate_password_hash(password), role=role,
                        disabled=False, created_at=view.created_at, valid_after=0,
                    )
                )
        except IntegrityError:  # added by another process a moment ago
            raise AccountError(f"user {username!r} exists", "username") from None
        with self._lock:
            self._users[username] = view
        self.changed("users")
        return view

    def update(self, username: str, *, role: Any = None, password: Any = None, disabled: Any = None) -> UserView:
        """Change role, password or disabled; any change ends the user's existing sessions.

        Judged on the account as stored, not as this process remembers it: another process may have changed
        it (or demoted another admin) a moment ago. The active admins' rows are locked first, then this one,
        always in that order, so two changes at once cannot both remove the last admin, nor deadlock."""
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
        active_admin = (User.role == "admin") & (User.disabled.is_(False))
        with self.db.engine.begin() as conn:
            admins = conn.execute(select(User.username).where(active_admin).order_by(User.username).with_for_update()).scalars().all()
            row = conn.execute(select(*_USER_COLUMNS).where(User.username == username).with_for_update()).first()
            if row is None:
                raise AccountError(f"no user {username!r}", "username")
            user = _view(row)
            demoted = values.get("role", user.role) != "admin" or values.get("disabled", user.disabled)
            if user.role == "admin" and not user.disabled and demoted and len(admins) <= 1:
                raise AccountError("this is the last active admin; add another admin first", "role" if "role" in values else "disabled")
            # tokens issued up to now stop working: they carry the old generation
            values["valid_after"] = user.generation + 1
            conn.execute(update(User).where(User.username == username).values(**values))
        view = UserView(username, values.get("role", user.role), values.get("disabled", user.disabled), user.created_at, values["valid_after"])
        self._install(view)
        self.changed("users")
        return view

    def verify(self, username: Any, password: Any) -> UserView | None:
        """The user when the password matches and the account is enabled; same cost for unknown names."""
        if not isinstance(username, str) or not isinstance(password, str) or len(password) > 256:
            return None
        with self.db.engine.connect() as conn:
            row = conn.execute(select(User.password_hash, *_USER_COLUMNS).where(User.username == username)).first()
        ok = check_password_hash(row[0] if row else _DUMMY_HASH, password)
        if not (ok and row):
            return None
        user = _view(row[1:])  # as stored and checked: the account may have changed in another process a moment ago
        self._install(user)
        return user if not user.disabled else None

    def revoke(self, jti: str, expires_at_s: int) -> None:
        with self._lock:
            if jti in self._revoked:
                return
            self._revoked.add(jti)
        try:
            with self.db.engine.begin() as conn:
                conn.execute(insert(RevokedToken).values(jti=jti, expires_at=expires_at_s))
        except IntegrityError:  # revoked by another process a moment ago (the same token signed out twice)
            pass
        self.changed("revoked")

    def ensure_first_admin(self, password: str = "") -> str | None:
        """On an empty user table create `admin`; returns the generated password (to print once) or None."""
        if self._users:
            return None
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(12)
        try:
            self.add("admin", password, "admin")
        except AccountError:  # several processes starting on one empty database: another one made it first
            self.reload_users()
            return None
        return generated


class UserAdmin:
    """An admin's changes to users, whoever asks (POST/PATCH /api/users, the control page): the change, its one audit
    entry, and after an update the user's sockets here ended, so they sign in again under the new terms (other
    processes end theirs when they reload the account, engine/core/sharing.py)."""

    def __init__(self, accounts: Accounts, audit: "Audit", end_sockets: Callable[[str], Any] = lambda username: 0):
        self.accounts, self.audit, self.end_sockets = accounts, audit, end_sockets

    def add(self, actor: str, address: str | None, username: Any, password: Any, role: Any) -> UserView:
        user = self.accounts.add(username, password, role)
        self.audit.write(actor, "user_add", user.username, {"role": user.role}, address)
        return user

    def update(self, actor: str, address: str | None, username: str, *, role: Any = None, password: Any = None, disabled: Any = None) -> UserView:
        user = self.accounts.update(username, role=role, password=password, disabled=disabled)
        logged = {k: v for k, v in (("role", role), ("disabled", disabled)) if v is not None}
        if password is not None:
            logged["password"] = "changed"
        self.audit.write(actor, "user_update", username, logged, address)
        self.end_sockets(username)
        return user


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
