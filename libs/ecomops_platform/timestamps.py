"""Time in one place: the current UTC instant, ``google.protobuf.Timestamp`` ↔ aware datetime,
and RFC 3339 strings. Every service converts through these (never ``FromDatetime`` by hand)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from .errors import Unprocessable

# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z … 9999-12-31T23:59:59Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_timestamp(value: datetime) -> Timestamp:
    """An aware datetime as a Timestamp (a naive one is taken as UTC)."""
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return stamp


def optional_timestamp(value: datetime | None) -> Timestamp | None:
    """``None`` stays ``None``: protobuf leaves an unset message field unset."""
    return None if value is None else to_timestamp(value)


def to_datetime(stamp: Any, name: str) -> datetime:
    """A ``google.protobuf.Timestamp`` as an aware UTC datetime; out of the Timestamp range (or
    nanos outside 0 … 999,999,999) → INVALID_ARGUMENT / 422 naming the field, never INTERNAL."""
    seconds, nanos = int(stamp.seconds), int(stamp.nanos)
    if not (TIMESTAMP_MIN_SECONDS <= seconds <= TIMESTAMP_MAX_SECONDS and 0 <= nanos < 10**9):
        raise Unprocessable(
            f"{name} is not a valid timestamp: seconds must be in "
            f"[{TIMESTAMP_MIN_SECONDS}, {TIMESTAMP_MAX_SECONDS}] and nanos in [0, 999999999]",
            code="invalid-time",
            field=name,
        )
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    """RFC 3339 with an explicit offset (what every JSON view of ecomops carries)."""
    return None if value is None else value.isoformat()
