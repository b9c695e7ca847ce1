"""Issue 19, findings 4, 5, 6, 9 at the platform level: the REST screen (card numbers,
duplicate Authorization), the gRPC interceptor (undecodable bytes, duplicate metadata, card
numbers, NUL), Timestamp conversion, and the maximum token lifetime per role."""

from __future__ import annotations

import time
from typing import Any

import grpc
import httpx
import jwt
import pytest
from fastapi import APIRouter, FastAPI, Request
from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from ecomops_platform.auth import Role, TokenVerifier, mint_token
from ecomops_platform.errors import Unauthenticated, Unprocessable
from ecomops_platform.grpc_server import GrpcServer, grpc_code_of, to_datetime
from ecomops_platform.rest import AnyCaller, create_app
from ecomops_platform.settings import CommonSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
PAN = "4111111111111111"


def _verifier(**settings: Any) -> TokenVerifier:
    return TokenVerifier(CommonSettings(jwt_secret=SECRET, env="test", **settings))


async def _always_ready() -> dict[str, Any]:
    return {"status": "ready", "ready": True, "checks": {"database": True}}


def _platform_app(router: APIRouter) -> FastAPI:
    """The platform app (middleware, error handlers) around one test router."""
    return create_app(
        service="unit",
        title="t",
        description="d",
        version="1",
        verifier=_verifier(),
        readiness=_always_ready,
        routers=[router],
        max_body_bytes=65536,
        rate_limit_per_minute=10_000,
    )


def _signed(role: str, *, lifetime: int, issued_ago: int = 0, **drop: bool) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "someone",
        "role": role,
        "iss": "ecomops",
        "aud": "ecomops",
        "iat": now - issued_ago,
        "exp": now - issued_ago + lifetime,
    }
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, SECRET, algorithm="HS256")


# --- token age (finding 9) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [("customer", 86_400, 86_400 + 60), ("ops", 43_200, 43_200 + 60), ("partner", 3_600, 7_200)],
)
def test_token_lifetime_is_bounded_per_role(role: str, allowed: int, refused: int) -> None:
    verifier = _verifier()
    assert verifier.verify(_signed(role, lifetime=allowed)).role == Role(role)
    with pytest.raises(Unauthenticated, match="lifetime exceeds"):
        verifier.verify(_signed(role, lifetime=refused))


def test_a_ten_year_token_is_refused_for_every_role() -> None:
    for role in Role:
        with pytest.raises(Unauthenticated):
            _verifier().verify(_signed(role.value, lifetime=10 * 365 * 86_400))


def test_a_token_without_iat_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        _verifier().verify(_signed("ops", lifetime=60, iat=True))


def test_the_limit_is_configurable_and_zero_turns_it_off() -> None:
    token = _signed("ops", lifetime=3600)
    with pytest.raises(Unauthenticated):
        _verifier(jwt_max_age_seconds={"ops": 600}).verify(token)
    long_lived = _signed("ops", lifetime=30 * 86_400)
    assert _verifier(jwt_max_age_seconds={"ops": 0}).verify(long_lived).role is Role.OPS


def test_platform_minted_tokens_fit_their_limits() -> None:
    for role in Role:
        assert _verifier().verify(mint_token(SECRET, "x", role)).role is role


# --- REST screen (findings 4, 5, 9) ------------------------------------------------------------
def _app() -> Any:
    router = APIRouter(prefix="/v1")
    stored: list[Any] = []

    @router.post("/things/{thing_id}")
    async def create_thing(thing_id: str, request: Request, caller: AnyCaller) -> Any:
        stored.append(await request.json())
        return {"id": thing_id}

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: str, caller: AnyCaller, q: str = "") -> Any:
        return {"id": thing_id, "q": q}

    app = _platform_app(router)
    app.state.stored = stored
    return app


def _auth() -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(SECRET, "ops-1", "ops")}


async def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _assert_refused_without_echo(resp: httpx.Response) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    doc = resp.json()
    assert doc["type"].endswith("/card-number-refused")
    assert "instance" not in doc
    digits = "".join(c for c in resp.text if c.isdigit())
    assert "4111" not in digits and "6967" not in digits


@pytest.mark.parametrize(
    "body",
    [
        {"note": PAN},
        {"line1": "4303.6967.6287.0492"},
        {"a": [{"b": "pay \uff14\uff11\uff11\uff11 1111 1111 1111"}]},
        {"session": "4111\u200b1111\u200b1111\u200b1111"},
        {PAN: 1},
        {"n": int(PAN)},
    ],
)
async def test_a_card_number_in_a_body_is_refused_and_nothing_runs(body: Any) -> None:
    app = _app()
    async with await _client(app) as client:
        resp = await client.post("/v1/things/t1", json=body, headers=_auth())
    _assert_refused_without_echo(resp)
    assert app.state.stored == []


async def test_card_numbers_in_path_query_and_idempotency_key_are_refused() -> None:
    async with await _client(_app()) as client:
        _assert_refused_without_echo(await client.get(f"/v1/things/{PAN}", headers=_auth()))
        _assert_refused_without_echo(
            await client.get("/v1/things/x%204111%201111%201111%201111", headers=_auth())
        )
        _assert_refused_without_echo(
            await client.get("/v1/things/t1", params={"q": "4111-1111-1111-1111"}, headers=_auth())
        )
        _assert_refused_without_echo(
            await client.post("/v1/things/t1", json={}, headers={**_auth(), "Idempotency-Key": PAN})
        )


async def test_our_own_ids_and_plain_text_pass() -> None:
    app = _app()
    async with await _client(app) as client:
        resp = await client.post(
            "/v1/things/015505bc53065827920520589b8bbdb2",
            json={"when": "2026-12-01T17:21:15Z", "id": "015505bc53065827920520589b8bbdb2"},
            headers={**_auth(), "Idempotency-Key": "015505bc-5306-5827-9205-20589b8bbdb2"},
        )
    assert resp.status_code == 200, resp.text
    assert app.state.stored


async def test_duplicate_authorization_headers_are_refused() -> None:
    token = _auth()["Authorization"]
    async with await _client(_app()) as client:
        resp = await client.get(
            "/v1/things/t1", headers=[("Authorization", token), ("Authorization", token)]
        )
    assert resp.status_code == 401, resp.text
    assert resp.json()["type"].endswith("/unauthenticated")


async def test_a_non_json_body_is_screened_as_text() -> None:
    async with await _client(_app()) as client:
        resp = await client.post(
            "/v1/things/t1",
            content=b"[" * 5000 + PAN.encode(),
            headers={**_auth(), "Content-Type": "application/json"},
        )
    _assert_refused_without_echo(resp)


# --- gRPC (findings 4, 5, 6, 9) -----------------------------------------------------------------
def test_timestamps_out_of_range_are_invalid_argument() -> None:
    assert to_datetime(Timestamp(seconds=-62_135_596_800), "t").year == 1
    assert to_datetime(Timestamp(seconds=253_402_300_799), "t").year == 9999
    for stamp in (
        Timestamp(seconds=-62_135_596_801),
        Timestamp(seconds=253_402_300_800),
        Timestamp(seconds=0, nanos=-1),
        Timestamp(seconds=0, nanos=10**9),
    ):
        with pytest.raises(Unprocessable, match="not a valid timestamp") as err:
            to_datetime(stamp, "from")
        assert grpc_code_of(err.value) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def echo_server() -> Any:
    calls: list[Any] = []

    async def echo(request: struct_pb2.Struct, context: Any) -> struct_pb2.Struct:
        calls.append(request)
        return request

    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            echo,
            request_deserializer=struct_pb2.Struct.FromString,
            response_serializer=struct_pb2.Struct.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ecomops.unit.v1.Echo", {"Echo": handler}),)
        )

    server = GrpcServer(
        service="unit",
        verifier=_verifier(),
        registrars=[register],
        service_names=["ecomops.unit.v1.Echo"],
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    try:
        yield f"127.0.0.1:{server.port}", calls
    finally:
        await server.stop(0)


async def _call(target: str, payload: bytes, metadata: list[tuple[str, str]]) -> grpc.aio.Call:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary("/ecomops.unit.v1.Echo/Echo")
        try:
            await call(payload, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc
    raise AssertionError("the call succeeded")


async def test_grpc_undecodable_bytes_are_invalid_argument(echo_server: Any) -> None:
    target, calls = echo_server
    err = await _call(target, b"\xff\xff\xff\xff", [("authorization", _auth()["Authorization"])])
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded as google.protobuf.Struct" in err.details()
    assert "Error" not in err.details() and "Exception" not in err.details()
    assert calls == []


async def test_grpc_card_numbers_anywhere_are_refused(echo_server: Any) -> None:
    target, calls = echo_server
    message = struct_pb2.Struct()
    message.update({"outer": {"inner": ["ok", "card 4303.6967.6287.0492"]}})
    err = await _call(
        target, message.SerializeToString(), [("authorization", _auth()["Authorization"])]
    )
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "card number" in err.details() and "4303" not in err.details()
    assert calls == []


async def test_grpc_duplicate_authorization_metadata_is_refused(echo_server: Any) -> None:
    target, calls = echo_server
    token = _auth()["Authorization"]
    err = await _call(target, b"", [("authorization", token), ("authorization", token)])
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert calls == []


async def test_grpc_a_long_lived_token_is_unauthenticated(echo_server: Any) -> None:
    target, calls = echo_server
    token = _signed("partner", lifetime=10 * 365 * 86_400)
    err = await _call(target, b"", [("authorization", f"Bearer {token}")])
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert calls == []


def test_grpc_error_details_stay_under_the_metadata_limit() -> None:
    from ecomops_platform.grpc_server import _bounded, _problem_metadata

    exc = Unprocessable("unknown id " + "x" * 100_000, shortages=["y" * 100_000])
    assert len(_bounded(exc.detail)) <= 1000
    encoded = _problem_metadata(exc)
    assert len(encoded) <= 8000 and "shortages" not in encoded
    small = Unprocessable("bad", shortages=[{"sku": "a"}])
    assert "shortages" in _problem_metadata(small)


@pytest.mark.parametrize(
    ("path", "params", "body"),
    [
        ("/v1/things/t1", {"q": "0001-01-01T00:00:00+14:00"}, None),
        ("/v1/things/t1", None, {"when": ["9999-12-31T23:59:59-14:00"]}),
    ],
)
async def test_date_times_outside_the_utc_range_are_422(
    path: str, params: dict[str, str] | None, body: Any
) -> None:
    app = _app()
    async with await _client(app) as client:
        if body is None:
            resp = await client.get(path, params=params, headers=_auth())
        else:
            resp = await client.post(path, json=body, headers=_auth())
    assert resp.status_code == 422, resp.text
    assert resp.json()["type"].endswith("/invalid-time")
    assert app.state.stored == []


def test_grpc_out_of_range_timestamps_anywhere_are_invalid_argument() -> None:
    from ecomops.recommendation.v1 import recommendation_service_pb2 as pb
    from ecomops_platform.grpc_server import screen_request

    for seconds, nanos in ((-62_135_596_801, 0), (253_402_300_800, 0), (0, -1)):
        request = pb.RecordBehaviorEventsRequest()
        event = request.events.add()
        event.occurred_at.seconds, event.occurred_at.nanos = seconds, nanos
        with pytest.raises(Unprocessable, match=r"events\.occurred_at is not a valid timestamp"):
            screen_request(request)
    fine = pb.RecordBehaviorEventsRequest()
    fine.events.add().occurred_at.seconds = 1_700_000_000
    screen_request(fine)


def test_values_the_database_refuses_are_the_callers_error() -> None:
    import asyncpg
    import sqlalchemy.exc

    from ecomops_platform.errors import is_bad_input

    too_long = asyncpg.exceptions.StringDataRightTruncationError("value too long")
    try:
        try:
            raise too_long
        except asyncpg.PostgresError as inner:
            raise sqlalchemy.exc.DBAPIError("INSERT", {}, inner) from inner
    except sqlalchemy.exc.DBAPIError as wrapped:
        assert is_bad_input(wrapped)
    assert is_bad_input(asyncpg.exceptions.DataError("invalid input for query argument $1"))
    assert not is_bad_input(asyncpg.exceptions.UniqueViolationError("duplicate"))
    assert not is_bad_input(RuntimeError("bug"))


async def test_rest_answers_422_when_the_database_refuses_a_value() -> None:
    import asyncpg

    router = APIRouter(prefix="/v1")

    @router.get("/overflow")
    async def overflow(caller: AnyCaller) -> Any:
        raise asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range")

    app = _platform_app(router)
    async with await _client(app) as client:
        resp = await client.get("/v1/overflow", headers=_auth())
    assert resp.status_code == 422, resp.text
    assert resp.json()["type"].endswith("/value-out-of-range")
