"""Sign-in state: the user's bearer token in an HttpOnly, SameSite=Strict cookie, and the CSRF
defence of every state-changing call.

The session cookie holds the token itself (no server-side store, so replicas need nothing
shared but ``CONSOLE_SESSION_SECRET``); it is HttpOnly, so page scripts never read it, and
SameSite=Strict, so a cross-site request never carries it. On top of that every POST, PUT, PATCH
and DELETE under ``/api`` must carry ``X-CSRF-Token``: a signed double-submit token (a nonce and
the HMAC of the nonce and the session token under the console's key), which the page gets from
``GET /api/session`` or the readable ``ecomops_console_csrf`` cookie. A request with an
``Origin`` other than the console's own is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import jwt
from fastapi import Request, Response

from ecomops_platform.auth import Caller, Role, TokenVerifier
from ecomops_platform.errors import Forbidden, Unauthenticated

SESSION_COOKIE = "ecomops_console_session"
CSRF_COOKIE = "ecomops_console_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token(secret: str, session_token: str, nonce: str | None = None) -> str:
    nonce = nonce or secrets.token_urlsafe(16)
    mac = hmac.new(secret.encode(), f"{nonce}.{session_token}".encode(), hashlib.sha256)
    return f"{nonce}.{mac.hexdigest()}"


def csrf_valid(secret: str, session_token: str, presented: str | None) -> bool:
    if not presented or "." not in presented:
        return False
    nonce = presented.split(".", 1)[0]
    return hmac.compare_digest(csrf_token(secret, session_token, nonce), presented)


def token_expiry(token: str) -> int | None:
    """The token's exp (already verified by the TokenVerifier), for the cookie's lifetime."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return int(exp) if isinstance(exp, int | float) else None


async def ops_caller(verifier: TokenVerifier, token: str) -> Caller:
    """The verified caller of ``token``: 401 when it is not valid, 403 unless the role is ops."""
    caller = await verifier.verify_async(token)
    if caller.role is not Role.OPS:
        raise Forbidden(f"role '{caller.role.value}' may not use the console; it needs ops")
    return caller


def start_session(response: Response, token: str, *, secret: str, secure: bool) -> str:
    exp = token_expiry(token)
    max_age = max(1, exp - int(time.time())) if exp else None
    csrf = csrf_token(secret, token)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure, httponly=False,
        samesite="strict",
    )  # fmt: skip
    return csrf


def end_session(response: Response, *, secure: bool) -> None:
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")


def session_token(request: Request) -> str:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthenticated("not signed in: POST /api/session with a bearer token first")
    return token


def check_csrf(request: Request, token: str, secret: str) -> None:
    """Refuse (403) a state-changing request without the session's CSRF token, or from a page
    of another origin."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise Forbidden("cross-origin request refused", code="csrf-refused")
    if not csrf_valid(secret, token, request.headers.get(CSRF_HEADER)):
        raise Forbidden(
            f"missing or wrong {CSRF_HEADER} header (the page's CSRF token)", code="csrf-refused"
        )
