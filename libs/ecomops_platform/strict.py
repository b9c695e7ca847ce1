"""Strict request types shared by the services' REST schemas (and the gRPC decoders that
validate through them).

What a request says is what it means: no ``true`` read as 1, no ``"1"`` read as 1, no ``0.5``
read as a Unix time, no ``0`` read as false. Every integer has the bounds of the column it lands
in (or a smaller documented limit), ISO codes are real codes, an IP address is an IP address.

- ``StrictRequestModel``: the platform's ``RequestModel`` in pydantic strict mode. FastAPI
  validates decoded JSON in Python mode, where strict mode would refuse an RFC 3339 string for a
  ``datetime`` and a decimal string for a ``Decimal``; the types below parse those from text
  first, so strict mode keeps its meaning (JSON types as written) without refusing the documented
  text forms.
- ``Rfc3339Time`` / ``Rfc3339TimeQuery``: an aware date-time given as an RFC 3339 string (in a
  body or a query parameter); numbers are refused.
- ``DecimalText``: a decimal given as a string or an integer; floats and booleans are refused.
- ``CountryCode``, ``CurrencyCode``, ``IpAddress``: ISO 3166-1 alpha-2 (officially assigned;
  user-assigned codes such as ``ZZ`` are refused), ISO 4217 (active codes; ``XXX``/``XTS`` and
  funds are refused), an IPv4 or IPv6 address in its normal form.
- ``INT32_MAX`` / ``INT64_MAX``: the bounds of PostgreSQL ``INTEGER`` and ``BIGINT`` (and of
  protobuf ``int32`` / ``int64``).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Header
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field

from .idempotency import MAX_KEY_LENGTH, check_key
from .iso_codes import ISO_3166_ALPHA2, ISO_4217
from .rest import RequestModel

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class StrictRequestModel(RequestModel):
    """A request body in pydantic strict mode (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def parse_rfc3339(value: Any) -> Any:
    """A date-time from its RFC 3339 text; numbers (Unix times) and other types are refused."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string with a UTC offset")
    text = value.strip()
    if not text or text[0] in "+-." or text.replace(".", "", 1).isdigit():
        raise ValueError("must be an RFC 3339 date-time string with a UTC offset")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an RFC 3339 date-time string with a UTC offset") from None
    if parsed.tzinfo is None:
        raise ValueError("must carry a UTC offset (e.g. 2026-01-31T12:00:00Z)")
    return parsed


Rfc3339Time = Annotated[AwareDatetime, BeforeValidator(parse_rfc3339)]


def parse_decimal(value: Any) -> Any:
    """A decimal from a string or an integer; a float (binary, inexact) or a bool is refused."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('must be a decimal string (e.g. "0.15")')
    try:
        parsed = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
    except InvalidOperation:
        raise ValueError('must be a decimal string (e.g. "0.15")') from None
    if not parsed.is_finite():
        raise ValueError("must be a finite decimal")
    return parsed


DecimalText = Annotated[Decimal, BeforeValidator(parse_decimal)]


def _country(value: Any) -> Any:
    if isinstance(value, str) and value not in ISO_3166_ALPHA2:
        raise ValueError(f"{value[:8]!r} is not an ISO 3166-1 alpha-2 country code")
    return value


def _currency(value: Any) -> Any:
    if isinstance(value, str) and value not in ISO_4217:
        raise ValueError(f"{value[:8]!r} is not an ISO 4217 currency code")
    return value


def _ip(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


CountryCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2,
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2, upper case",
        examples=["DE"],
    ),
    BeforeValidator(_country),
]
CurrencyCode = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217, upper case",
        examples=["EUR"],
    ),
    BeforeValidator(_currency),
]
IpAddress = Annotated[
    str,
    Field(max_length=45, description="IPv4 or IPv6 address", examples=["203.0.113.7"]),
    BeforeValidator(_ip),
]


def message_to_data(message: Message) -> dict[str, Any]:
    """A protobuf message as the JSON-like dict a strict request model validates: like
    ``json_format.MessageToDict`` (proto field names, timestamps as RFC 3339 text, enums by
    name) but with 64-bit integers as integers, not the strings of the proto3 JSON mapping."""
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    _int64_back(message.DESCRIPTOR, data)
    return data


_INT64 = {
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT64,
}


def _int64_back(descriptor: Any, data: dict[str, Any]) -> None:
    for name, value in data.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            continue
        if field.cpp_type in _INT64:
            if isinstance(value, list):
                data[name] = [int(v) for v in value]
            elif isinstance(value, str):
                data[name] = int(value)
        elif (
            field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
            and not field.message_type.GetOptions().map_entry
            and field.message_type.file.package != "google.protobuf"
        ):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _int64_back(field.message_type, item)


# --- Idempotency-Key, declared required where it is required ---------------------------------


async def _required_idempotency_key(
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", include_in_schema=False)
    ] = None,
) -> str:
    # ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off to a
    # worker thread and back on every request for a header check.
    # Missing stays the platform's 400 `idempotency-key-missing` (the IETF draft's answer), not
    # FastAPI's 422 for a missing parameter: the header is optional to FastAPI and declared
    # required in the document through ``IDEMPOTENCY_KEY_REQUIRED``.
    key = check_key(idempotency_key, required=True)
    assert key is not None
    return key


#: The Idempotency-Key header of an operation that requires it (use with
#: ``openapi_extra=IDEMPOTENCY_KEY_REQUIRED`` on the route, so the document says "required").
RequiredIdempotencyKey = Annotated[str, Depends(_required_idempotency_key)]

IDEMPOTENCY_KEY_REQUIRED: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "description": "Unique key per logical request (1..255 printable characters); "
            "missing → 400 idempotency-key-missing; the same key with another body → 422",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        }
    ]
}
