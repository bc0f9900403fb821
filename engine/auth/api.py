"""Sign-in over HTTP: the login page, /api/auth/*, user management and the audit log (SPEC 6, 9)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
import re
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, render_template, request
from flask_jwt_extended import (
    decode_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from werkzeug.urls import iri_to_uri

from .accounts import AccountError, UserAdmin
from ..web.api import error
from .gate import (
    KIOSK_COOKIE,
    auth_state,
    client_address,
    issue_tokens,
    require_role,
    resolve_identity,
    token_user,
)

if TYPE_CHECKING:
    from ..runtime.engine import Engine


# what a browser's URL parser drops before reading a URL (WHATWG URL: leading/trailing C0 controls and
# spaces; tab, CR and LF anywhere), so `/\t//evil.example` is read as `//evil.example`
_EDGE = "".join(map(chr, range(0x21)))
_TAB_NEWLINE = str.maketrans("", "", "\t\r\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, judged as the browser will read it; anything else → `/`.

    The value is cleaned the way the browser's URL parser cleans it (control characters dropped,
    backslashes read as slashes), then refused when it is not a plain path: absolute (`https://x`,
    `javascript:`), scheme-relative (`//x`, `/\\x`), or still holding a control character. What is
    returned is the cleaned path, percent-encoded, so it is also always a valid `Location` header.
    """
    if not isinstance(value, str):
        return "/"
    path = value.strip(_EDGE).translate(_TAB_NEWLINE).replace("\\", "/")
    if not path.startswith("/") or path.startswith("//") or _CONTROL.search(path):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return iri_to_uri(path)


def _json_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def create_auth_api(engine: "Engine", users: UserAdmin) -> Blueprint:
    bp = Blueprint("auth", __name__)
    cfg = engine.config

    @bp.get("/login")
    def login_page():
        if resolve_identity() is not None and not request.args.get("switch"):
            return redirect(safe_next(request.args.get("next")))
        return render_template("login.html", next=safe_next(request.args.get("next")), error=request.args.get("error"))

    @bp.post("/api/auth/login")
    def login():
        st = auth_state()
        body = _json_body()
        if body is None:
            return error(400, "send JSON {username, password}")
        username, password = body.get("username"), body.get("password")
        details = [
            {"index": 0, "field": f, "message": "required"} for f, v in (("username", username), ("password", password)) if not isinstance(v, str) or not v
        ]
        if details:
            return error(400, "username and password are required", details)
        address = client_address()
        wait = st.throttle.retry_after(username, address)
        if wait:
            st.audit.write(username[:64], "login_throttled", username[:64], None, address)
            return error(429, f"too many failed sign-ins; try again in {wait} s", headers={"Retry-After": str(wait)})
        user = st.accounts.verify(username, password)
        if user is None:
            st.throttle.failed(username, address)
            st.audit.write(username[:64], "login_failed", username[:64], None, address)
            return error(401, "wrong user name or password")
        st.throttle.succeeded(username, address)
        access, refresh = issue_tokens(user)
        out: dict[str, Any] = {"user": {"username": user.username, "role": user.role}, "expires_in": cfg.access_token_min * 60}
        session = body.get("session") is True
        st.audit.write(user.username, "login", user.username, {"session": session}, address)
        if not session:
            out.update(access_token=access, refresh_token=refresh)
        resp = jsonify(out)
        if session:
            set_access_cookies(resp, access)
            set_refresh_cookies(resp, refresh)
        return resp

    @bp.post("/api/auth/refresh")
    def refresh():
        try:
            _, claims = verify_jwt_in_request(refresh=True)
        except (JWTExtendedException, PyJWTError) as exc:
            return error(401, f"refresh token missing, expired or invalid ({type(exc).__name__})")
        user = token_user(claims)
        if user is None:
            return error(401, "session ended: token revoked or account disabled")
        access, _ = issue_tokens(user)
        out: dict[str, Any] = {"expires_in": cfg.access_token_min * 60, "user": {"username": user.username, "role": user.role}}
        from_cookie = not request.headers.get("Authorization")
        if not from_cookie:
            out["access_token"] = access
        resp = jsonify(out)
        if from_cookie:
            set_access_cookies(resp, access)
        return resp

    @bp.post("/api/auth/logout")
    def logout():
        """Revoke what was presented (access and, from the cookie or body, refresh) and clear the cookies."""
        st = auth_state()
        who = None
        for kwargs in ({}, {"refresh": True}):
            try:
                found = verify_jwt_in_request(optional=True, **kwargs)
            except (JWTExtendedException, PyJWTError):
                continue
            claims = found[1] if found else {}
            if claims.get("jti"):
                st.accounts.revoke(claims["jti"], int(claims.get("exp", 0)))
                who = who or claims.get("sub")
        body = _json_body() or {}
        if isinstance(body.get("refresh_token"), str):
            try:
                claims = decode_token(body["refresh_token"])
                st.accounts.revoke(claims["jti"], int(claims.get("exp", 0)))
            except (JWTExtendedException, PyJWTError, KeyError):
                pass
        if who:
            st.audit.write(str(who), "logout", str(who), None, client_address())
        resp = jsonify(ok=True)
        unset_jwt_cookies(resp)
        if who:  # a person signing out of a browser that once opened a kiosk link: it stops being a wall screen too
            resp.delete_cookie(KIOSK_COOKIE, path="/")
        return resp

    @bp.get("/api/auth/me")
    @require_role("viewer")
    def me():
        who = resolve_identity()
        return jsonify(username=who.name, role=who.role, expires_at=who.expires_at, via=who.via)

    # ---- users (admin) ----

    @bp.get("/api/users")
    @require_role("admin")
    def list_users():
        return jsonify(users=[u.to_json() for u in auth_state().accounts.list()])

    @bp.post("/api/users")
    @require_role("admin")
    def add_user():
        body = _json_body()
        if body is None:
            return error(400, "send JSON {username, password, role}")
        try:
            user = users.add(resolve_identity().name, client_address(), body.get("username"), body.get("password"), body.get("role"))
        except AccountError as exc:
            return error(409 if "exists" in str(exc) else 400, str(exc), [{"index": 0, "field": exc.field, "message": str(exc)}])
        return jsonify(user.to_json()), 201

    @bp.patch("/api/users/<username>")
    @require_role("admin")
    def update_user(username: str):
        body = _json_body()
        if body is None:
            return error(400, "send JSON with role, password and/or disabled")
        unknown = sorted(set(body) - {"role", "password", "disabled"})
        if unknown:
            return error(400, f"unknown field(s): {', '.join(unknown)}", [{"index": 0, "field": f, "message": "unknown field"} for f in unknown])
        if users.accounts.get(username) is None:
            return error(404, f"no user {username!r}")
        try:
            user = users.update(resolve_identity().name, client_address(), username,
                                role=body.get("role"), password=body.get("password"), disabled=body.get("disabled"))
        except AccountError as exc:
            return error(400, str(exc), [{"index": 0, "field": exc.field, "message": str(exc)}])
        return jsonify(user.to_json())

    @bp.get("/api/audit")
    @require_role("admin")
    def audit():
        limit = request.args.get("limit", "100")
        before = request.args.get("before", "")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return error(400, "invalid query", [{"index": 0, "field": "limit", "message": "must be a whole number from 1 to 1000"}])
        if before and not before.isdigit():
            return error(400, "invalid query", [{"index": 0, "field": "before", "message": "must be the id of an entry"}])
        entries = auth_state().audit.recent(int(limit), int(before) if before else None)
        return jsonify(entries=entries, next=entries[-1]["id"] if len(entries) == int(limit) else None)

    return bp
