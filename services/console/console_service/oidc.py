"""OpenID Connect sign-in for production (authorization code flow with PKCE).

``GET /api/oidc/login`` sends the browser to the provider; ``GET /api/oidc/callback`` exchanges
the code for tokens at the provider's token endpoint, checks the access token as the services
will (the platform's TokenVerifier: ``ECOMOPS_JWT_JWKS_URL``, issuer, audience; role ops) and
starts the same session as ``POST /api/session``. Settings: ``CONSOLE_OIDC_*`` (settings.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from ecomops_platform.auth import TokenVerifier
from ecomops_platform.errors import DependencyUnavailable, Unauthenticated

from . import session as sess
from .settings import ConsoleSettings

STATE_COOKIE = "ecomops_console_oidc"


def _http(timeout: float) -> httpx.AsyncClient:
    """The client of the provider's endpoints (tests stand a provider in here)."""
    return httpx.AsyncClient(timeout=timeout)


def build_oidc_router(settings: ConsoleSettings, verifier: TokenVerifier) -> APIRouter:
    router = APIRouter(prefix="/api/oidc", tags=["console"])
    discovered: dict[str, Any] = {}
    secure = bool(settings.cookie_secure)

    async def discovery() -> dict[str, Any]:
        if not discovered:
            url = f"{str(settings.oidc_issuer).rstrip('/')}/.well-known/openid-configuration"
            try:
                async with _http(settings.upstream_timeout_seconds) as client:
                    resp = await client.get(url)
                    resp.raise_for_status()
                    discovered.update(resp.json())
            except (httpx.HTTPError, ValueError) as exc:
                raise DependencyUnavailable(f"OIDC discovery failed: {exc}") from exc
        return discovered

    def sign(value: str) -> str:
        mac = hmac.new(settings.session_secret.encode(), value.encode(), hashlib.sha256)
        return f"{value}.{mac.hexdigest()}"

    @router.get("/login", include_in_schema=False)
    async def login() -> RedirectResponse:
        conf = await discovery()
        state = secrets.token_urlsafe(16)
        verifier_text = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier_text.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": settings.oidc_client_id,
                "redirect_uri": settings.oidc_redirect_url,
                "scope": settings.oidc_scopes,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        reply = RedirectResponse(f"{conf['authorization_endpoint']}?{query}", status_code=302)
        # Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
        reply.set_cookie(
            STATE_COOKIE, sign(f"{state}.{verifier_text}"), max_age=600, path="/api/oidc",
            secure=secure, httponly=True, samesite="lax",
        )  # fmt: skip
        return reply

    @router.get("/callback", include_in_schema=False)
    async def callback(
        request: Request,
        code: Annotated[str, Query(max_length=4096)],
        state: Annotated[str, Query(max_length=256)],
    ) -> RedirectResponse:
        cookie = request.cookies.get(STATE_COOKIE, "")
        value, _, _mac = cookie.rpartition(".")
        if not cookie or not hmac.compare_digest(sign(value), cookie):
            raise Unauthenticated("sign-in state missing or altered: start again")
        expected_state, _, code_verifier = value.partition(".")
        if not hmac.compare_digest(expected_state, state):
            raise Unauthenticated("sign-in state does not match: start again")
        conf = await discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": settings.oidc_redirect_url,
            "client_id": settings.oidc_client_id,
            "code_verifier": code_verifier,
        }
        if settings.oidc_client_secret:
            form["client_secret"] = settings.oidc_client_secret
        try:
            async with _http(settings.upstream_timeout_seconds) as client:
                resp = await client.post(conf["token_endpoint"], data=form)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"OIDC token endpoint: {exc}") from exc
        if resp.status_code != 200:
            raise Unauthenticated(f"the provider refused the code ({resp.status_code})")
        token = str(resp.json().get("access_token") or "")
        if not token:
            raise Unauthenticated("the provider gave no access token")
        await sess.ops_caller(verifier, token)
        reply = RedirectResponse("/", status_code=303)
        sess.start_session(reply, token, secret=settings.session_secret, secure=secure)
        reply.delete_cookie(STATE_COOKIE, path="/api/oidc")
        return reply

    return router
