"""Standard gRPC errors: a real grpc.aio server (the platform's interceptor) answers with the
status code and ``grpc-status-details-bin`` (google.rpc.Status: ErrorInfo, BadRequest field
violations, RetryInfo), read back with grpcio-status as Go and Java clients read it; the
deprecated ``ecomops-problem`` trailer is still sent, and the platform's client reads the
problem from the standard details first."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pydantic import BaseModel, Field, ValidationError

from ecomops_platform.auth import Role, TokenVerifier, mint_token
from ecomops_platform.errors import DependencyUnavailable, Unprocessable
from ecomops_platform.grpc_client import problem_of, rich_status_of
from ecomops_platform.grpc_server import (
    ERROR_DOMAIN,
    PROBLEM_METADATA_KEY,
    STATUS_DETAILS_METADATA_KEY,
    GrpcServer,
    error_trailers,
    invalid_request,
    metadata_value,
)
from ecomops_platform.settings import CommonSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
SETTINGS = CommonSettings(jwt_secret=SECRET, env="test")


class _Line(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class _Order(BaseModel):
    email: str = Field(max_length=5)
    lines: list[_Line]


def _pydantic_refusal() -> BaseException:
    try:
        _Order.model_validate({"email": "far-too-long", "lines": [{"sku": "", "quantity": 0}]})
    except ValidationError as exc:
        return invalid_request(exc)
    raise AssertionError("the model accepted it")


class OutOfRangeTestError(Exception):
    """What the database driver raises for a value out of its column's range."""

    sqlstate = "22003"


# What the servicer raises, chosen by the request's "raise" field.
ERRORS: dict[str, Callable[[], BaseException]] = {
    "field": lambda: Unprocessable("quantity must be positive", field="lines.0.quantity"),
    "errors": lambda: Unprocessable(
        "email: at most 320 characters; ip: an IPv4 or IPv6 address",
        errors=["email: at most 320 characters", "ip: an IPv4 or IPv6 address"],
    ),
    "shortages": lambda: Unprocessable(
        "not enough stock",
        code="out-of-stock",
        shortages=[{"sku": "sku-1", "requested": 2, "available": 1}],
        sku="12345",
        note="plain text",
        limit=5,
    ),
    "pydantic": _pydantic_refusal,
    "unavailable": lambda: DependencyUnavailable("pricing is unavailable", retry_after=3),
    "database": lambda: OutOfRangeTestError(),
    "bug": lambda: RuntimeError("secret internals"),
}


@pytest.fixture
async def target() -> AsyncIterator[str]:
    async def fail(request: struct_pb2.Struct, context: Any) -> struct_pb2.Struct:
        raise ERRORS[request["raise"]]()

    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            fail,
            request_deserializer=struct_pb2.Struct.FromString,
            response_serializer=struct_pb2.Struct.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ecomops.unit.v1.Fail", {"Fail": handler}),)
        )

    server = GrpcServer(
        service="unit",
        verifier=TokenVerifier(SETTINGS),
        registrars=[register],
        service_names=["ecomops.unit.v1.Fail"],
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(0)


async def _fail(target: str, what: str | None = None, **fields: Any) -> grpc.aio.AioRpcError:
    message = struct_pb2.Struct()
    message.update({"raise": what, **fields} if what else fields)
    token = mint_token(SECRET, "partner-1", Role.PARTNER)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary("/ecomops.unit.v1.Fail/Fail")
        try:
            await call(
                message.SerializeToString(),
                metadata=[("authorization", f"Bearer {token}")],
                timeout=5,
            )
        except grpc.aio.AioRpcError as exc:
            return exc
    raise AssertionError("the call succeeded")


def _details(status: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for any_ in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if any_.Is(kind.DESCRIPTOR):
                found[kind.__name__] = kind()
                any_.Unpack(found[kind.__name__])
    return found


async def test_a_field_violation_travels_in_the_standard_status(target: str) -> None:
    err = await _fail(target, "field")
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)  # raises if code or message disagree with the call
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "quantity must be positive" == err.details()
    details = _details(status)
    info = details["ErrorInfo"]
    assert (info.reason, info.domain) == ("VALIDATION_ERROR", ERROR_DOMAIN)
    assert info.metadata["type"].endswith("/validation-error")
    assert info.metadata["status"] == "422" and info.metadata["service"] == "unit"
    (violation,) = details["BadRequest"].field_violations
    assert (violation.field, violation.description) == (
        "lines.0.quantity",
        "quantity must be positive",
    )
    # The deprecated trailer is still there, for one version.
    trailer = dict(err.trailing_metadata())[PROBLEM_METADATA_KEY]
    assert json.loads(trailer)["field"] == "lines.0.quantity"


async def test_errors_listed_as_text_become_one_violation_each(target: str) -> None:
    status = rpc_status.from_call(await _fail(target, "errors"))
    assert status is not None
    violations = [(v.field, v.description) for v in _details(status)["BadRequest"].field_violations]
    assert violations == [("email", "at most 320 characters"), ("ip", "an IPv4 or IPv6 address")]


async def test_a_request_model_refusal_names_every_field_as_rest_does(target: str) -> None:
    err = await _fail(target, "pydantic")
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    assert status is not None
    details = _details(status)
    assert details["ErrorInfo"].reason == "VALIDATION_ERROR"
    fields = [v.field for v in details["BadRequest"].field_violations]
    assert fields == ["email", "lines.0.sku", "lines.0.quantity"]
    assert err.details().startswith("email: String should have at most 5 characters")


async def test_the_screen_names_the_field_holding_a_nul_character(target: str) -> None:
    err = await _fail(target, None, comment="a\x00b")
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    assert status is not None
    details = _details(status)
    assert details["ErrorInfo"].reason == "VALIDATION_ERROR"
    assert [v.field for v in details["BadRequest"].field_violations] == ["fields.string_value"]


async def test_the_platform_client_rebuilds_the_problem_from_the_standard_details(
    target: str,
) -> None:
    err = await _fail(target, "shortages")
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    rich = rich_status_of(err)
    assert rich is not None and rich.error_info is not None
    assert rich.error_info.reason == "OUT_OF_STOCK"
    assert rich.error_info.metadata["shortages"] == (
        '[{"sku":"sku-1","requested":2,"available":1}]'
    )
    assert rich.error_info.metadata["note"] == "plain text"
    # Without the deprecated trailer: everything comes back exactly from the standard status.
    standard_only = _without_trailer(err, PROBLEM_METADATA_KEY)
    problem = problem_of(standard_only)
    assert problem == {
        "type": "https://ecomops.dev/problems/out-of-stock",
        "title": "Unprocessable request",
        "status": 422,
        "detail": "not enough stock",
        "shortages": [{"sku": "sku-1", "requested": 2, "available": 1}],
        "sku": "12345",
        "note": "plain text",
        "limit": 5,
    }
    # An older server (the trailer only): read from the trailer.
    legacy = _without_trailer(err, STATUS_DETAILS_METADATA_KEY)
    assert rich_status_of(legacy) is None
    legacy_problem = problem_of(legacy)
    assert legacy_problem is not None and legacy_problem["shortages"] == problem["shortages"]


async def test_retry_advice_and_unexpected_errors_carry_the_standard_status(target: str) -> None:
    err = await _fail(target, "unavailable")
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    rich = rich_status_of(err)
    assert rich is not None and rich.retry_delay_seconds == 3
    assert rich.error_info is not None and rich.error_info.reason == "DEPENDENCY_UNAVAILABLE"

    err = await _fail(target, "database")
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    rich = rich_status_of(err)
    assert rich is not None and rich.error_info is not None
    assert rich.error_info.reason == "VALUE_OUT_OF_RANGE"

    err = await _fail(target, "bug")
    assert err.code() is grpc.StatusCode.INTERNAL
    status = rpc_status.from_call(err)
    assert status is not None and "secret" not in status.message
    assert _details(status)["ErrorInfo"].reason == "INTERNAL_ERROR"


@pytest.mark.parametrize("value", ["12345", "plain", '"quoted"', "true", "null", "[1]", ""])
def test_metadata_values_read_back_exactly(value: str) -> None:
    from ecomops_platform.grpc_client import _metadata_value

    for original in (value, 12, 1.5, False, None, [value], {"k": value}):
        assert _metadata_value(metadata_value(original)) == original


def test_hostile_values_keep_the_trailers_under_the_metadata_limit() -> None:
    exc = Unprocessable(
        "unknown id " + "x" * 100_000,
        shortages=["y" * 100_000],
        errors=[f"f{i}: " + "z" * 5000 for i in range(500)],
    )
    trailers = error_trailers(exc, grpc.StatusCode.INVALID_ARGUMENT, "unit")
    details = dict(trailers)[STATUS_DETAILS_METADATA_KEY]
    problem = dict(trailers)[PROBLEM_METADATA_KEY]
    assert isinstance(details, bytes) and isinstance(problem, str)
    assert len(details) * 4 // 3 + len(problem) <= 7000


async def test_hostile_values_still_end_with_the_real_status(target: str) -> None:
    err = await _fail(target, None, comment="\x00" + "x" * 200_000)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_status.from_call(err) is not None


def _without_trailer(err: grpc.aio.AioRpcError, key: str) -> grpc.aio.AioRpcError:
    kept = tuple((k, v) for k, v in err.trailing_metadata() if k != key)
    return grpc.aio.AioRpcError(
        err.code(), err.initial_metadata(), grpc.aio.Metadata(*kept), details=err.details()
    )
