"""Who is asking, and may they? The one place identities and roles are resolved.

Tokens are flask-jwt-extended JWTs, from the `Authorization: Bearer` header (API
clients), the HttpOnly `fp_access` cookie (browsers, with a double-submit CSRF
token on every unsafe method) or a Socket.IO `auth: {token}`. The role is read
from the user record, not the token, so a role change or a disabled account takes
effect at once; revoked token ids and `valid_after` end sessions early.
"""
from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from flask import Flask, current_app, g, has_request_context, jsonify, redirect, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    set_access_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError

from .keys import load_or_create
from .kiosk import TOKEN_PREFIX as KIOSK_PREFIX

if TYPE_CHECKING:
    from .accounts import Accounts, Audit
    from .kiosk import KioskTokens
    from .config import Config

ROLE_RANK = {"kiosk": 0, "viewer": 0, "operator": 1, "admin": 2}
EXTENSION = "floorpulse_auth"

# reachable without a token: the login page and its API, static files, and /health (status only)
PUBLIC_PATHS = {"/login", "/tv/activate", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/health", "/_favicon.ico", "/favicon.ico"}
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/")


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    jti: str | None = None
    expires_at: int | None = None  # epoch s
    via: str = "local"  # bearer | cookie | socket | local | kiosk
    kiosk_id: int | None = None  # set for a wall screen signed in with a kiosk token (engine/kiosk.py)


class LoginThrottle:
    """Failed sign-ins per user name and per address in a sliding window; over the limit → wait."""

    def __init__(self, per_user: int, per_address: int, window_s: float):
        self.per_user, self.per_address, self.window_s = per_user, per_address, window_s
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before another attempt may be checked; 0 = go ahead."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"u:{username}", self.per_user), (f"a:{address}", self.per_address)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[0] + self.window_s - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._fails[f"u:{username}"].append(now)
            self._fails[f"a:{address}"].append(now)
            if len(self._fails) > 10_000:  # bounded: forget quiet keys
                for k in [k for k, q in self._fails.items() if not self._recent(k, now)]:
                    del self._fails[k]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{username}", None)


@dataclass
class AuthState:
    accounts: "Accounts"
    audit: "Audit"
    throttle: LoginThrottle
    kiosks: "KioskTokens"
    metrics_token: str = ""


METRICS_PATH = "/metrics"
METRICS_TOKEN_MIN_LEN = 32
SCRAPER = Identity("metrics-scraper", "kiosk", None, None, "metrics")  # read-only, and resolved on METRICS_PATH only


def init_auth(server: Flask, config: "Config", accounts: "Accounts", audit: "Audit", kiosks: "KioskTokens") -> None:
    """JWT settings, the request gate and the shared state on `server.extensions`."""
    c = server.config
    c["SECRET_KEY"] = load_or_create(config.data_path, "secret_key", config.secret_key)
    c["JWT_SECRET_KEY"] = load_or_create(config.data_path, "jwt_secret_key", config.jwt_secret_key)
    c["JWT_TOKEN_LOCATION"] = ["headers", "cookies"]
    c["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=config.access_token_min)
    c["JWT_REFRESH_TOKEN_EXPIRES"] = timedelta(days=config.refresh_token_days)
    c["JWT_ACCESS_COOKIE_NAME"] = "fp_access"
    c["JWT_REFRESH_COOKIE_NAME"] = "fp_refresh"
    c["JWT_COOKIE_CSRF_PROTECT"] = True
    # Dash's renderer already sends the `_csrf_token` cookie back as X-CSRFToken on its callbacks
    c["JWT_ACCESS_CSRF_COOKIE_NAME"] = "_csrf_token"
    c["JWT_ACCESS_CSRF_HEADER_NAME"] = "X-CSRFToken"
    c["JWT_REFRESH_CSRF_COOKIE_NAME"] = "csrf_refresh_token"
    c["JWT_REFRESH_CSRF_HEADER_NAME"] = "X-CSRFToken"
    c["JWT_COOKIE_SAMESITE"] = "Lax"
    c["JWT_COOKIE_SECURE"] = config.cookie_secure
    c["JWT_SESSION_COOKIE"] = False  # survive a browser restart for the refresh token's life
    JWTManager(server)
    if config.metrics_token and len(config.metrics_token) < METRICS_TOKEN_MIN_LEN:
        raise ValueError(f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LEN} characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    server.extensions[EXTENSION] = AuthState(
        accounts, audit, LoginThrottle(config.login_max_failures, config.login_max_failures_address, config.login_window_s), kiosks,
        config.metrics_token,
    )
    server.before_request(_gate)
    server.after_request(_set_refreshed_cookie)


def auth_state() -> AuthState:
    return current_app.extensions[EXTENSION]


def _identity_from_claims(claims: dict[str, Any], via: str) -> Identity | None:
    if claims.get("type") != "access":
        return None
    user = auth_state().accounts.token_valid(str(claims.get("sub")), claims.get("jti"), int(claims.get("iat", 0)))
    if user is None:
        return None
    return Identity(user.username, user.role, claims.get("jti"), claims.get("exp"), via)


KIOSK_COOKIE = "fp_kiosk"


def kiosk_identity(token: str | None) -> Identity | None:
    """A kiosk token (`fpk_…`) → the read-only identity of that wall screen, or None when unknown or revoked."""
    kiosk = auth_state().kiosks.validate(token)
    if kiosk is None:
        return None
    return Identity(f"kiosk:{kiosk.name}"[:64], "kiosk", None, None, "kiosk", kiosk.id)


def identity_from_token(token: str) -> Identity | None:
    """A raw access token or kiosk token (Socket.IO `auth`, tests) → Identity, or None when invalid, expired or revoked."""
    if token.startswith(KIOSK_PREFIX):
        return kiosk_identity(token)
    try:
        claims = decode_token(token)
    except (JWTExtendedException, PyJWTError):
        return None
    return _identity_from_claims(claims, "socket")


def resolve_identity(auth: dict[str, Any] | None = None) -> Identity | None:
    """The current user from a Socket.IO `auth` dict, else the request's bearer header or cookie; None = not signed in."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"]:
        return identity_from_token(auth["token"])
    if not has_request_context():
        return None
    if "fp_identity" in g:
        return g.fp_identity
    identity = None
    bearer = request.headers.get("Authorization", "")
    if _is_metrics_token(bearer):  # the scrapers' token: /metrics and nothing else, not even a socket
        identity = SCRAPER if request.path == METRICS_PATH else None
        if identity is None:
            g.fp_auth_problem = "this token opens /metrics only"
        g.fp_identity = identity
        return identity
    if bearer.startswith("Bearer " + KIOSK_PREFIX):  # a kiosk token used as an API key (read-only)
        identity = kiosk_identity(bearer[7:].strip())
        if identity is None:
            g.fp_auth_problem = "kiosk token revoked or unknown"
        g.fp_identity = identity
        return identity
    try:
        verify_jwt_in_request(optional=True)
        claims = get_jwt()
        if claims:
            identity = _identity_from_claims(claims, "bearer" if request.headers.get("Authorization") else "cookie")
            if identity is None:
                g.fp_auth_problem = "token revoked or account disabled"
    except (JWTExtendedException, PyJWTError) as exc:
        g.fp_auth_problem = _describe(exc)
    if identity is None and request.cookies.get(KIOSK_COOKIE):  # a wall screen: no session to expire
        identity = kiosk_identity(request.cookies[KIOSK_COOKIE])
        g.fp_auth_problem = None if identity else "kiosk token revoked"
    g.fp_identity = identity
    return identity


def _is_metrics_token(authorization: str) -> bool:
    token = auth_state().metrics_token
    return bool(token) and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "ExpiredSignatureError":
        return "token expired"
    if name == "CSRFError":
        return "missing or wrong CSRF token (send the _csrf_token cookie's value as X-CSRFToken)"
    return "invalid token"


def has_role(identity: Identity | None, role: str) -> bool:
    if identity is None:
        return False
    if role in ("viewer", "kiosk"):
        return True
    if identity.role == "kiosk":
        return False  # read-only, whatever the rank
    return ROLE_RANK.get(identity.role, -1) >= ROLE_RANK[role]


def _unauthorized():
    problem = g.get("fp_auth_problem") or "sign-in required"
    return jsonify(error=problem, details=[]), 401


def require_role(role: str) -> Callable:
    """Flask view decorator: 401 without a valid token, 403 without the role."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            identity = resolve_identity()
            if identity is None:
                return _unauthorized()
            if not has_role(identity, role):
                return jsonify(error=f"needs the {role} role", details=[]), 403
            return view(*args, **kwargs)

        wrapper.required_role = role  # the route table test reads this
        return wrapper

    return decorate


def _gate():
    """Nothing but the login page, static files and /health is served without a valid token."""
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    if resolve_identity() is not None:
        return None
    if path.startswith(("/api/", "/_")) or path == "/metrics" or request.method != "GET":
        return _unauthorized()
    if _refresh_session():  # a page opened after the access cookie lapsed: renew it quietly
        return None
    target = request.full_path.rstrip("?") if request.query_string else path
    return redirect("/login?next=" + quote(target, safe="/?=&"))


def issue_tokens(username: str) -> tuple[str, str]:
    return create_access_token(identity=username), create_refresh_token(identity=username)


def _refresh_session() -> bool:
    """With a valid refresh cookie, mint a new access token for this request and set it on the response."""
    try:
        verify_jwt_in_request(refresh=True, locations=["cookies"])
        claims = get_jwt()
    except (JWTExtendedException, PyJWTError):
        return False
    user = auth_state().accounts.token_valid(str(claims.get("sub")), claims.get("jti"), int(claims.get("iat", 0)))
    if user is None:
        return False
    g.fp_new_access = create_access_token(identity=user.username)
    g.fp_identity = Identity(user.username, user.role, None, None, "cookie")
    return True


def _set_refreshed_cookie(response):
    token = g.get("fp_new_access")
    if token:
        set_access_cookies(response, token)
    return response


def client_address() -> str:
    return (request.remote_addr or "?")[:64] if has_request_context() else "-"
