"""Who is asking, and may they? The one place identities and roles are resolved.

Sign-in (flask-jwt-extended, issue 3) replaces `resolve_identity`; every HTTP
route and Socket.IO handler already asks through `require_role` / `has_role`.
Until then everyone is a local admin on the embedded default.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable

from flask import jsonify

ROLE_RANK = {"kiosk": 0, "viewer": 0, "operator": 1, "admin": 2}


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


LOCAL_ADMIN = Identity("local", "admin")


def resolve_identity(auth: dict[str, Any] | None = None) -> Identity | None:
    """The current user from the request (cookie / bearer) or a Socket.IO `auth` dict; None = not signed in."""
    return LOCAL_ADMIN


def has_role(identity: Identity | None, role: str) -> bool:
    if identity is None:
        return False
    if role == "viewer":
        return True
    if identity.role == "kiosk":
        return False  # read-only, whatever the rank
    return ROLE_RANK.get(identity.role, -1) >= ROLE_RANK[role]


def require_role(role: str) -> Callable:
    """Flask view decorator: 401 without an identity, 403 without the role."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            identity = resolve_identity()
            if identity is None:
                return jsonify(error="sign-in required", details=[]), 401
            if not has_role(identity, role):
                return jsonify(error=f"needs the {role} role", details=[]), 403
            return view(*args, **kwargs)

        return wrapper

    return decorate
