"""Kiosk tokens over HTTP, and how a wall screen gets in (SPEC 8; engine/kiosk/tokens.py).

    POST   /api/kiosk-tokens {"name", "views"?, "rotate_s"?, "warehouses"?}  (admin) → 201 {id, token, url, code, ...}
    GET    /api/kiosk-tokens                                                 (admin) → {kiosks: [...]}
    DELETE /api/kiosk-tokens/<id>                                            (admin) → revoked; its screens are told and disconnected
    GET    /tv?k=<token>   or   /tv?code=<code>   or   POST /tv/activate {code}  → the `fp_kiosk` cookie, then /tv

A TV never sees the login page: `/tv` without any sign-in shows the activation page (type the
code), and a revoked token shows a "revoked" page. `?kiosk=1` on any view opens that view on the TV.
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlencode

from flask import Blueprint, Flask, after_this_request, jsonify, make_response, redirect, render_template, request

from ..web.api import error
from ..auth.gate import KIOSK_COOKIE, auth_state, client_address, require_role, resolve_identity
from .tokens import KioskAdmin, KioskError

if TYPE_CHECKING:
    from ..runtime.engine import Engine

TV_PATH = "/tv"
COOKIE_MAX_AGE = timedelta(days=400)  # the longest a browser keeps a cookie; renewed on every page load
VIEW_PATHS = {"/": "timeline", "/throughput": "throughput", "/workers": "workers", "/load": "load"}


def _tv_url(args: dict[str, str]) -> str:
    return TV_PATH + ("?" + urlencode(args) if args else "")


def _activated(token: str, args: dict[str, str], secure: bool):
    """Set the screen's cookie and show /tv without the secret in the address bar."""
    resp = redirect(_tv_url(args), code=303)
    resp.set_cookie(KIOSK_COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax", secure=secure, path="/")
    return resp


def _page(state: str, status: int, **extra):
    """The TV's own pages: activation (type the code), revoked, unknown."""
    resp = make_response(render_template("tv_activate.html", state=state, **extra), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def create_kiosk_api(engine: "Engine", screens: KioskAdmin, online: Callable[[], dict[int, int]]) -> Blueprint:
    bp = Blueprint("kiosk", __name__)
    kiosks = engine.kiosks
    secure = engine.config.cookie_secure

    @bp.post("/api/kiosk-tokens")
    @require_role("admin")
    def create_token():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, 'send JSON {"name": "Dock 3 TV", "views"?: [...], "rotate_s"?: 30}')
        try:
            kiosk, token, code = screens.create(resolve_identity().name, client_address(), body)
        except KioskError as exc:
            return error(400, str(exc), [{"index": 0, "field": exc.field, "message": str(exc)}])
        base = request.host_url.rstrip("/")
        return jsonify(
            **kiosk.to_json(), token=token, url=f"{base}{TV_PATH}?k={token}", code=code,
            activate_url=f"{base}{TV_PATH}",
        ), 201

    @bp.get("/api/kiosk-tokens")
    @require_role("admin")
    def list_tokens():
        counts = online()
        return jsonify(kiosks=[k.to_json(counts.get(k.id, 0)) for k in kiosks.list()])

    @bp.delete("/api/kiosk-tokens/<int:kiosk_id>")
    @require_role("admin")
    def revoke_token(kiosk_id: int):
        try:
            kiosk, ended = screens.revoke(resolve_identity().name, client_address(), kiosk_id)
        except KioskError as exc:
            return error(404, str(exc))
        return jsonify(**kiosk.to_json(), disconnected=ended)

    @bp.post("/tv/activate")
    def activate():
        code = request.form.get("code") or (request.get_json(silent=True) or {}).get("code") or ""
        return _redeem(str(code)[:64], {})

    def _redeem(code: str, args: dict[str, str]):
        st = auth_state()
        address = client_address()
        key = "kiosk-code:" + address
        wait = st.throttle.retry_after(key, address)
        if wait:
            return _page("activate", 429, message=f"Too many wrong codes from this screen. Try again in {wait} s.")
        token = kiosks.redeem_code(code)
        if token is None:
            st.throttle.failed(key, address)
            return _page("activate", 400, message="That code is not valid: it may be mistyped, used already or expired (codes last 24 h).")
        engine.audit.write("kiosk", "kiosk_activate", None, {"via": "code"}, address)
        return _activated(token, args, secure)

    def tv_entry():
        """Runs before the auth gate: activation links, `?kiosk=1` on a view, and the TV's landing pages."""
        path = request.path
        if request.method != "GET":
            return None
        if request.args.get("kiosk") in ("1", "true", "yes") and path in VIEW_PATHS:
            args = {k: v for k, v in request.args.items() if k != "kiosk"}
            args.setdefault("views", VIEW_PATHS[path])
            return redirect(_tv_url(args))
        if path != TV_PATH:
            return None
        args = {k: v for k, v in request.args.items() if k not in ("k", "code")}
        if "k" in request.args:
            kiosk = kiosks.validate(request.args["k"])
            if kiosk is None:
                return _page("revoked" if kiosks.was_revoked(request.args["k"]) else "unknown", 403)
            kiosks.url_used(kiosk)
            return _activated(request.args["k"], args, secure)
        if "code" in request.args:
            return _redeem(request.args["code"][:64], args)
        identity = resolve_identity()
        if identity is not None:
            if identity.via == "kiosk":  # renew the cookie's life on every page load
                token = request.cookies[KIOSK_COOKIE]

                @after_this_request
                def renew(resp):
                    resp.set_cookie(KIOSK_COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax", secure=secure, path="/")
                    return resp
            return None
        if request.cookies.get(KIOSK_COOKIE):
            return _page("revoked", 403)
        return _page("activate", 200)

    bp.tv_entry = tv_entry  # installed in front of the auth gate by install_tv_entry
    return bp


def install_tv_entry(server: Flask, bp: Blueprint) -> None:
    """The TV's entry runs before the auth gate, which would send a stranger to the login page."""
    server.before_request_funcs.setdefault(None, []).insert(0, bp.tv_entry)
