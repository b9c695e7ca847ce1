"""RS256 keys from a JWKS endpoint: fetched asynchronously (the event loop keeps running),
cached per Cache-Control max-age or ECOMOPS_JWT_JWKS_CACHE_SECONDS, and an unknown ``kid``
refetches at most once a minute. Against a real local HTTP server that counts its fetches."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ecomops_platform.auth import Caller, Role, TokenVerifier
from ecomops_platform.errors import DependencyUnavailable, Unauthenticated
from ecomops_platform.settings import CommonSettings

KEYS = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in "abc"}


class Jwks:
    """The served key set and how it is served; ``fetches`` counts GETs."""

    def __init__(self) -> None:
        self.kids = ["a"]
        self.cache_control: str | None = None
        self.delay = 0.0
        self.status = 200
        self.fetches = 0

    def body(self) -> bytes:
        keys = []
        for kid in self.kids:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEYS[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return json.dumps({"keys": keys}).encode()


@pytest.fixture
def jwks() -> Iterator[tuple[Jwks, str]]:
    state = Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            time.sleep(state.delay)  # a slow identity provider (server thread, not the loop)
            body = state.body()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            if state.cache_control:
                self.send_header("Cache-Control", state.cache_control)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(url: str, clock: Clock, cache_seconds: int = 300) -> TokenVerifier:
    v = TokenVerifier(
        CommonSettings(env="test", jwt_jwks_url=url, jwt_jwks_cache_seconds=cache_seconds)
    )
    assert v._jwks is not None
    v._jwks.clock = clock
    return v


_fresh = iter(range(1_000_000))


def fresh_token(kid: str) -> str:
    """A token never verified before: the verifier remembers verified tokens (30 s), so a
    test of the key cache must not show it the same token twice."""
    return token(kid, sub=f"cust-{next(_fresh)}")


def token(kid: str | None, sub: str = "cust-1") -> str:
    now = int(time.time())
    claims = {
        "sub": sub,
        "role": "customer",
        "iss": "ecomops",
        "aud": "ecomops",
        "iat": now,
        "exp": now + 600,
    }
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, KEYS[kid or "a"], algorithm="RS256", headers=headers)


async def test_concurrent_requests_share_one_fetch_and_the_loop_keeps_running(
    jwks: tuple[Jwks, str],
) -> None:
    state, url = jwks
    state.delay = 0.3
    v = verifier(url, Clock())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.create_task(ticker())
    try:
        callers = await asyncio.gather(
            *(v.verify_header_async(f"Bearer {token('a', f'c{i}')}") for i in range(20))
        )
    finally:
        running.cancel()
    assert callers[0] == Caller("c0", Role.CUSTOMER) and len(set(callers)) == 20
    assert state.fetches == 1
    assert ticks >= 10  # the loop ran other work during the 0.3 s fetch


async def test_keys_are_cached_for_the_responses_max_age(jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    state.cache_control = "public, max-age=120"
    clock = Clock()
    v = verifier(url, clock, cache_seconds=30)
    for _ in range(5):
        await v.verify_async(fresh_token("a"))
    clock.now += 119
    await v.verify_async(fresh_token("a"))
    assert state.fetches == 1
    clock.now += 2
    await v.verify_async(fresh_token("a"))
    assert state.fetches == 2


async def test_without_cache_control_the_configured_ttl_applies(jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    clock = Clock()
    v = verifier(url, clock, cache_seconds=30)
    await v.verify_async(fresh_token("a"))
    clock.now += 29
    await v.verify_async(fresh_token("a"))
    assert state.fetches == 1
    clock.now += 2
    await v.verify_async(fresh_token("a"))
    assert state.fetches == 2


async def test_max_age_zero_does_not_fetch_on_every_request(jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    state.cache_control = "max-age=0"
    clock = Clock()
    v = verifier(url, clock)
    for _ in range(10):
        await v.verify_async(token("a"))
        clock.now += 0.5
    assert state.fetches == 1


async def test_unknown_kid_refetches_at_most_once_a_minute(jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    clock = Clock()
    v = verifier(url, clock)
    await v.verify_async(token("a"))
    assert state.fetches == 1
    state.kids = ["a", "b"]  # the issuer rotates in a new key
    for _ in range(50):  # unknown kids within the minute: 401, no fetch
        clock.now += 1
        with pytest.raises(Unauthenticated, match="kid"):
            await v.verify_header_async(f"Bearer {token('c')}")
    with pytest.raises(Unauthenticated):
        await v.verify_async(token("b"))
    assert state.fetches == 1
    clock.now += 10  # a minute since the last fetch: the next unknown kid refetches once
    assert (await v.verify_async(token("b"))).subject == "cust-1"
    assert state.fetches == 2
    for _ in range(20):
        with pytest.raises(Unauthenticated):
            await v.verify_async(token("c"))
    assert state.fetches == 2
    assert (await v.verify_async(token("a"))).subject == "cust-1"  # old key still valid
    assert state.fetches == 2


async def test_sync_verify_uses_cached_keys_only(jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    v = verifier(url, Clock())
    with pytest.raises(Unauthenticated):
        v.verify(token("a"))
    assert state.fetches == 0
    await v.verify_async(token("a"))
    assert v.verify(token("a")).subject == "cust-1"
    assert state.fetches == 1


async def test_an_unreachable_jwks_is_503_not_401(jwks: tuple[Jwks, str]) -> None:
    state, url = jwks
    state.status = 500
    clock = Clock()
    v = verifier(url, clock)
    with pytest.raises(DependencyUnavailable):
        await v.verify_async(token("a"))
    state.status = 200
    clock.now += 11  # failed fetches are retried after 10 s
    assert (await v.verify_async(token("a"))).subject == "cust-1"
    assert state.fetches == 2


async def test_a_token_without_kid_matches_a_single_key_set(jwks: tuple[Jwks, str]) -> None:
    _, url = jwks
    v = verifier(url, Clock())
    assert (await v.verify_async(token(None))).subject == "cust-1"
