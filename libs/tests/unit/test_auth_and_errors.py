from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from ecomops_platform.auth import Caller, Role, TokenVerifier, mint_token
from ecomops_platform.errors import Conflict, DependencyUnavailable, Forbidden, Unauthenticated
from ecomops_platform.idempotency import check_key, fingerprint
from ecomops_platform.logging import redact
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor
from ecomops_platform.settings import CommonSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def verifier() -> TokenVerifier:
    return TokenVerifier(CommonSettings(jwt_secret=SECRET, env="test"))


def test_valid_token_gives_the_caller() -> None:
    caller = verifier().verify(mint_token(SECRET, "cust-1", "customer"))
    assert caller == Caller("cust-1", Role.CUSTOMER)
    assert caller.may_see("cust-1") and not caller.may_see("cust-2")
    assert Caller("ops-1", Role.OPS).may_see("cust-2")


def test_account_created_at_claim_is_read_when_it_is_a_past_numeric_date() -> None:
    def caller_with(value: object) -> Caller:
        token = mint_token(SECRET, "cust-1", "customer", extra_claims={"account_created_at": value})
        return verifier().verify(token)

    assert caller_with(1_700_000_000).account_created_at == datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=UTC
    )
    assert verifier().verify(mint_token(SECRET, "c", "customer")).account_created_at is None
    for bad in ("2023-01-01", True, None, time.time() + 86400, 1e300):
        assert caller_with(bad).account_created_at is None, bad


def test_hs384_is_refused_even_with_the_right_secret() -> None:
    now = int(time.time())
    tok = jwt.encode(
        {
            "sub": "a",
            "role": "ops",
            "iss": "ecomops",
            "aud": "ecomops",
            "iat": now,
            "exp": now + 60,
        },
        SECRET,
        algorithm="HS384",
    )
    with pytest.raises(Unauthenticated, match="HS384"):
        verifier().verify(tok)


def test_missing_exp_is_refused() -> None:
    tok = jwt.encode(
        {"sub": "a", "role": "ops", "iss": "ecomops", "aud": "ecomops", "iat": 1},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated):
        verifier().verify(tok)


def test_header_must_be_bearer() -> None:
    with pytest.raises(Unauthenticated):
        verifier().verify_header("Basic abc")
    with pytest.raises(Unauthenticated):
        verifier().verify_header(None)


def test_role_check_names_the_roles_needed() -> None:
    with pytest.raises(Forbidden, match="needs one of: ops, service"):
        Caller("c", Role.CUSTOMER).require(Role.OPS, Role.SERVICE)


def test_production_refuses_placeholder_and_short_secrets() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        CommonSettings(env="production", jwt_secret="change-me")
    with pytest.raises(ValueError, match="ECOMOPS_JWT_JWKS_URL"):
        CommonSettings(env="local", jwt_secret=None, jwt_jwks_url=None)
    assert CommonSettings(env="production", jwt_secret="x" * 40).env == "production"


def test_problem_documents_carry_extra_fields_and_headers() -> None:
    err = Conflict("short", code="insufficient-stock", shortages=[{"sku": "A", "requested": 2}])
    doc = err.problem("/v1/reservations")
    assert doc["type"] == "https://ecomops.dev/problems/insufficient-stock"
    assert doc["status"] == 409 and doc["shortages"][0]["sku"] == "A"
    assert DependencyUnavailable("pricing down", retry_after=3).headers == {"Retry-After": "3"}


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor({"id": "x", "n": 3})) == {"id": "x", "n": 3}
    assert decode_cursor(None) is None
    with pytest.raises(Exception, match="cursor"):
        decode_cursor("!!!not-base64")
    with pytest.raises(Exception, match="limit"):
        check_limit(0)
    assert check_limit(None) == 50


def test_idempotency_key_rules() -> None:
    with pytest.raises(Exception, match="Idempotency-Key"):
        check_key(None)
    with pytest.raises(Exception, match="printable"):
        check_key("a\nb")
    assert check_key("abc") == "abc"
    assert fingerprint("op", {"a": 1, "b": 2}) == fingerprint("op", {"b": 2, "a": 1})
    assert fingerprint("op", {"a": 1}) != fingerprint("op", {"a": 2})


def test_logs_mask_card_numbers() -> None:
    assert redact("pan 4111 1111 1111 1111 end") == "pan [REDACTED] end"
    assert redact("order 12345 qty 3") == "order 12345 qty 3"


def test_a_verified_token_is_remembered_but_never_past_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v = verifier()
    decoded: list[str] = []
    real_decode = v._decode

    def counting_decode(token: str, key: object, alg: str) -> dict[str, object]:
        decoded.append(token)
        return real_decode(token, key, alg)

    monkeypatch.setattr(v, "_decode", counting_decode)
    token = mint_token(SECRET, "cust-1", "customer", ttl_seconds=3)
    for _ in range(3):  # the rate limiter, the route, the next request
        assert v.verify_header(f"Bearer {token}") == Caller("cust-1", Role.CUSTOMER)
    assert len(decoded) == 1

    # Not a bearer header: refused as before, although the token itself is remembered.
    with pytest.raises(Unauthenticated, match="Bearer"):
        v.verify_header(token)

    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 4)  # past the token's exp
    v.verify(token)  # PyJWT's own clock (and leeway) decide now, not the memory
    assert len(decoded) == 2


async def test_a_refused_token_is_never_remembered() -> None:
    v = verifier()
    forged = mint_token("another-secret-that-is-long-enough-0123456789", "ops-1", "ops")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await v.verify_header_async(f"Bearer {forged}")
