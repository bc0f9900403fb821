"""Who is asking, and may they? The one place identities and roles are resolved.

Tokens are flask-jwt-extended JWTs, from the `Authorization: Bearer` header (API
clients), the HttpOnly `fp_access` cookie (browsers, with a double-submit CSRF
token on every unsafe method) or a Socket.IO `auth: {token}`. The role is read
from the user record, not the token, so a role change or a disabled account takes
effect at once; revoked token ids and the account's session generation (`gen`) end sessions early.
"""
from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from flask import Flask, Response, current_app, g, has_request_context, jsonify, redirect, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    set_access_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_limiter import Limiter
from jwt import PyJWTError
from limits import RateLimitItemPerSecond

from .keys import load_or_create
from ..kiosk.tokens import TOKEN_PREFIX as KIOSK_PREFIX

if TYPE_CHECKING:
    from .accounts import Accounts, Audit, UserView
    from ..kiosk.tokens import KioskTokens
    from ..core.config import Config

ROLE_RANK = {"kiosk": 0, "viewer": 0, "operator": 1, "admin": 2}
EXTENSION = "floorpulse_auth"

# reachable without a token: the login page and its API, static files, and /health (status only)
PUBLIC_PATHS = {"/login", "/tv/activate", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/health", "/_favicon.ico", "/favicon.ico"}
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    jti: str | None = None
    expires_at: int | None = None  # epoch s
    via: str = "local"  # bearer | cookie | socket | local | kiosk
    kiosk_id: int | None = None  # set for a wall screen signed in with a kiosk token (engine/kiosk/tokens.py)


class LoginThrottle:
    """Failed sign-ins, counted where the attacker is: per user name *and* address, and (looser) per address.

    A victim signing in from anywhere else is never refused because of someone else's failures, and
    one person's typos do not lock out an office behind one NAT address. The counts live in
    flask-limiter's storage (memory, or Redis with REDIS_URL so that every instance shares them), in a
    moving window. A storage failure never refuses a sign-in (it is logged).
    """

    def __init__(self, limiter: Limiter, per_user: int, per_address: int, window_s: int):
        self.limiter = limiter
        self.per_user = RateLimitItemPerSecond(per_user, window_s)
        self.per_address = RateLimitItemPerSecond(per_address, window_s)

    def _keys(self, username: str, address: str) -> tuple[tuple[RateLimitItemPerSecond, tuple[str, ...]], ...]:
        return (self.per_user, ("login-user", username[:64], address)), (self.per_address, ("login-address", address))

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before another attempt may be checked; 0 = go ahead."""
        wait = 0.0
        try:
            for limit, key in self._keys(username, address):
                if not self.limiter.limiter.test(limit, *key):
                    wait = max(wait, self.limiter.limiter.get_window_stats(limit, *key).reset_time - time.time())
        except Exception:  # noqa: BLE001 - the throttle's storage is down: sign-in goes on without it
            log.exception("sign-in throttle storage failed; not throttling")
            return 0
        return max(1, math.ceil(wait)) if wait else 0

    def failed(self, username: str, address: str) -> None:
        try:
            for limit, key in self._keys(username, address):
                self.limiter.limiter.hit(limit, *key)
        except Exception:  # noqa: BLE001
            log.exception("sign-in throttle storage failed; failure not counted")

    def succeeded(self, username: str, address: str) -> None:
        """The right password: this user's failures from this address are forgotten (the address's are not)."""
        try:
            self.limiter.limiter.clear(self.per_user, *self._keys(username, address)[0][1])
        except Exception:  # noqa: BLE001
            log.exception("sign-in throttle storage failed")


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
    jwt = JWTManager(server)
    if config.metrics_token and len(config.metrics_token) < METRICS_TOKEN_MIN_LEN:
        raise ValueError(f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LEN} characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")

    @jwt.additional_claims_loader
    def _generation(username: str) -> dict[str, int]:
        """Every token carries the account's session generation (see engine/auth/accounts.py); issue_tokens pins it."""
        user = accounts.get(username)
        return {"gen": user.generation} if user else {}

    limiter = Limiter(
        client_address, app=server, storage_uri=config.redis_url or "memory://", strategy="moving-window", key_prefix="floorpulse",
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1} if config.redis_url else {},
    )
    throttle = LoginThrottle(limiter, config.login_max_failures, config.login_max_failures_address, config.login_window_s)
    server.extensions[EXTENSION] = AuthState(accounts, audit, throttle, kiosks, config.metrics_token)
    server.before_request(_gate)
    server.after_request(_set_refreshed_cookie)
    server.after_request(_security_headers)
    server.context_processor(lambda: {"csp_nonce": csp_nonce})


def auth_state() -> AuthState:
    return current_app.extensions[EXTENSION]


def token_user(claims: dict[str, Any]) -> "UserView | None":
    """The account a decoded token speaks for, or None (gone, disabled, revoked, or issued before a change to it)."""
    generation = claims.get("gen", 0)  # tokens from before generations: valid for accounts never changed
    if not isinstance(generation, int):
        return None
    return auth_state().accounts.token_valid(str(claims.get("sub")), claims.get("jti"), generation)


def _identity_from_claims(claims: dict[str, Any], via: str) -> Identity | None:
    if claims.get("type") != "access":
        return None
    user = token_user(claims)
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
        # its result, not get_jwt(): it checks nothing on OPTIONS (JWT_EXEMPT_METHODS) and then get_jwt() raises
        found = verify_jwt_in_request(optional=True)
        claims = found[1] if found else None
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
    if request.method == "OPTIONS":  # what a URL allows is no secret; there is no CORS here, so a preflight gets no Allow-Origin
        if request.routing_exception is not None:
            raise request.routing_exception  # 404 or 405
        resp = current_app.make_default_options_response()
        resp.status_code = 204
        return resp
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


def issue_tokens(user: "UserView") -> tuple[str, str]:
    """An access and a refresh token for the account as it was when it was checked: a change made between
    the password check and now has bumped the generation, so these are then refused, as they should be."""
    claims = {"gen": user.generation}
    return create_access_token(identity=user.username, additional_claims=claims), create_refresh_token(identity=user.username, additional_claims=claims)


def _refresh_session() -> bool:
    """With a valid refresh cookie, mint a new access token for this request and set it on the response."""
    try:
        found = verify_jwt_in_request(refresh=True, locations=["cookies"])
    except (JWTExtendedException, PyJWTError):
        return False
    user = token_user(found[1]) if found else None
    if user is None:
        return False
    g.fp_new_access = issue_tokens(user)[0]
    g.fp_identity = Identity(user.username, user.role, None, None, "cookie")
    return True


def _set_refreshed_cookie(response):
    token = g.get("fp_new_access")
    if token:
        set_access_cookies(response, token)
    return response


def client_address() -> str:
    return (request.remote_addr or "?")[:64] if has_request_context() else "-"


# ---- security headers on every response ----

# Dash renders from 'self' plus its own inline bootstrap script (hashed: Dash.csp_hashes); the login page's
# inline script carries a per-response nonce; styles are inline throughout (Dash, Plotly).
CSP = (
    "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SCRIPT_HASHES = "floorpulse_script_hashes"  # server.extensions: a callable → the inline-script hashes to allow


def csp_nonce() -> str:
    """The nonce of this response's inline scripts (templates: `<script nonce="{{ csp_nonce() }}">`)."""
    if "fp_csp_nonce" not in g:
        g.fp_csp_nonce = secrets.token_urlsafe(16)
    return g.fp_csp_nonce


def _security_headers(response: Response) -> Response:
    h = response.headers
    scripts = ["'self'", *current_app.extensions.get(SCRIPT_HASHES, list)()]
    if "fp_csp_nonce" in g:
        scripts.append(f"'nonce-{g.fp_csp_nonce}'")
    h["Content-Security-Policy"] = CSP.format(scripts=" ".join(scripts))
    h["X-Frame-Options"] = "DENY"
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "same-origin"
    if not request.path.startswith(PUBLIC_PREFIXES):  # pages and API answers may carry tokens or live data: never stored
        h["Cache-Control"] = "no-store"
    return response
