from __future__ import annotations

import pytest
from starlette.requests import Request

from ecomops_platform.auth import TokenVerifier, mint_token
from ecomops_platform.errors import RateLimited
from ecomops_platform.rest import RateLimiter, _rate_limit_key
from ecomops_platform.settings import CommonSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def _request(auth: str | None) -> Request:
    headers = [(b"authorization", auth.encode())] if auth else []
    return Request({"type": "http", "headers": headers, "client": ("10.0.0.7", 1234)})


def test_bucket_refuses_past_the_rate_with_retry_after() -> None:
    limiter = RateLimiter(per_minute=3)
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(RateLimited) as err:
        limiter.check("a")
    assert int(err.value.headers["Retry-After"]) >= 1
    limiter.check("b")  # another caller has its own bucket


def test_callers_are_keyed_by_verified_subject_and_services_are_exempt() -> None:
    verifier = TokenVerifier(CommonSettings(jwt_secret=SECRET, env="test"))
    customer = mint_token(SECRET, "cust-1", "customer")
    service = mint_token(SECRET, "service:order", "service")
    forged = mint_token("another-secret-entirely-0123456789abcdef", "service:x", "service")
    assert _rate_limit_key(_request(f"Bearer {customer}"), verifier) == "sub:customer:cust-1"
    assert _rate_limit_key(_request(f"Bearer {service}"), verifier) is None
    assert _rate_limit_key(_request(f"Bearer {forged}"), verifier) == "ip:10.0.0.7"
    assert _rate_limit_key(_request(None), verifier) == "ip:10.0.0.7"


async def test_a_request_s_token_is_verified_once_and_only_that_header_is_reused() -> None:
    from types import SimpleNamespace

    from ecomops_platform.errors import Unauthenticated
    from ecomops_platform.rest import authenticated

    verifier = TokenVerifier(CommonSettings(jwt_secret=SECRET, env="test"))
    calls: list[str | None] = []
    real = verifier.verify_header_async

    async def counting(authorization: str | None) -> object:
        calls.append(authorization)
        return await real(authorization)

    verifier.verify_header_async = counting  # type: ignore[method-assign,assignment]
    app = SimpleNamespace(state=SimpleNamespace(verifier=verifier))
    customer = f"Bearer {mint_token(SECRET, 'cust-1', 'customer')}"
    scope = {
        "type": "http",
        "headers": [(b"authorization", customer.encode())],
        "client": ("10.0.0.7", 1234),
        "app": app,
    }
    assert _rate_limit_key(scope, verifier) == "sub:customer:cust-1"
    caller = await authenticated(Request(scope), customer)
    assert (caller.subject, calls) == ("cust-1", [])  # the limiter's verification, reused
    # another header than the one verified is verified itself (and refused when bad)
    with pytest.raises(Unauthenticated):
        await authenticated(Request(scope), "Bearer not-a-token")
    assert calls == ["Bearer not-a-token"]
    # a request whose token the limiter could not verify keeps no verdict
    bad = {**scope, "headers": [(b"authorization", b"Bearer forged")], "state": {}}
    assert _rate_limit_key(bad, verifier) == "ip:10.0.0.7"
    assert bad["state"] == {}
