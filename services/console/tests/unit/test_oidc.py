"""OIDC sign-in (authorization code + PKCE) against a stand-in provider: the login redirect,
the callback's state check, the code exchange (with the PKCE verifier) and the session it
starts; a provider token of another role is refused."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from console_service import oidc
from console_service.app import create_console
from console_service.settings import ConsoleSettings
from ecomops_platform.auth import mint_token
from ecomops_platform.settings import CommonSettings

SECRET = "console-oidc-test-secret-0123456789abcdef"
ISSUER = "https://id.example.test"


class Provider:
    def __init__(self) -> None:
        self.role = "ops"
        self.exchanged: dict[str, list[str]] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token"})  # fmt: skip
        if request.url.path == "/token":
            self.exchanged = parse_qs(request.content.decode())
            token = mint_token(SECRET, "analyst-7", self.role, ttl_seconds=600)
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer"})
        return httpx.Response(404)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    p = Provider()

    def client(timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout, transport=httpx.MockTransport(p.handler))

    monkeypatch.setattr(oidc, "_http", client)
    return p


@pytest.fixture
async def client(provider: Provider) -> AsyncIterator[httpx.AsyncClient]:
    settings = ConsoleSettings(
        env="test", session_secret="s" * 40, static_dir="/nonexistent", oidc_issuer=ISSUER,
        oidc_client_id="console", oidc_redirect_url="http://console.test/api/oidc/callback",
    )  # fmt: skip
    app = create_console(settings, CommonSettings(jwt_secret=SECRET, env="test", access_log=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        yield c


async def _login(client: httpx.AsyncClient) -> dict[str, list[str]]:
    resp = await client.get("/api/oidc/login")
    assert resp.status_code == 302, resp.text
    target = urlparse(resp.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{ISSUER}/authorize"
    query = parse_qs(target.query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["console"]
    return query


async def test_oidc_sign_in_starts_a_session(client: httpx.AsyncClient, provider: Provider) -> None:
    query = await _login(client)
    resp = await client.get(
        "/api/oidc/callback", params={"code": "abc", "state": query["state"][0]}
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    verifier = provider.exchanged["code_verifier"][0]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == [challenge.decode()]
    assert provider.exchanged["code"] == ["abc"]
    me = (await client.get("/api/session")).json()
    assert (me["signed_in"], me["subject"], me["oidc"]) == (True, "analyst-7", True)


async def test_a_wrong_state_is_refused(client: httpx.AsyncClient) -> None:
    await _login(client)
    resp = await client.get("/api/oidc/callback", params={"code": "abc", "state": "forged"})
    assert resp.status_code == 401
    assert (await client.get("/api/session")).json()["signed_in"] is False


async def test_a_provider_token_of_another_role_is_refused(
    client: httpx.AsyncClient, provider: Provider
) -> None:
    provider.role = "customer"
    query = await _login(client)
    resp = await client.get(
        "/api/oidc/callback", params={"code": "abc", "state": query["state"][0]}
    )
    assert resp.status_code == 403
    assert (await client.get("/api/session")).json()["signed_in"] is False
