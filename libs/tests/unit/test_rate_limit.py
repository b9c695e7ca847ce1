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
