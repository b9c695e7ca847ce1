"""ecomops_platform.strict: what the services' strict request models accept and refuse."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from ecomops.common.v1 import common_pb2
from ecomops.order.v1 import order_service_pb2 as order_pb
from ecomops_platform.iso_codes import ISO_3166_ALPHA2, ISO_4217
from ecomops_platform.strict import (
    CountryCode,
    CurrencyCode,
    DecimalText,
    IpAddress,
    Rfc3339Time,
    StrictRequestModel,
    message_to_data,
)


class Body(StrictRequestModel):
    n: int
    flag: bool = False
    at: Rfc3339Time | None = None
    rate: DecimalText | None = None
    country: CountryCode | None = None
    currency: CurrencyCode | None = None
    ip: IpAddress | None = None


@pytest.mark.parametrize(
    "bad",
    [
        {"n": True},
        {"n": "1"},
        {"n": 1.0},
        {"n": 1, "flag": 0},
        {"n": 1, "flag": "false"},
        {"n": 1, "at": 0.5},
        {"n": 1, "at": 1_700_000_000},
        {"n": 1, "at": "1700000000"},
        {"n": 1, "at": "2026-01-01T00:00:00"},
        {"n": 1, "rate": 0.15},
        {"n": 1, "rate": True},
        {"n": 1, "rate": "abc"},
        {"n": 1, "rate": "NaN"},
        {"n": 1, "country": "ZZ"},
        {"n": 1, "country": "de"},
        {"n": 1, "currency": "XXX"},
        {"n": 1, "currency": "XTS"},
        {"n": 1, "ip": "not-an-ip"},
        {"n": 1, "ip": "999.1.1.1"},
    ],
)
def test_loose_input_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate(bad)


def test_documented_forms_are_accepted() -> None:
    body = Body.model_validate(
        {
            "n": 3,
            "flag": True,
            "at": "2026-01-31T12:00:00Z",
            "rate": "0.15",
            "country": "DE",
            "currency": "EUR",
            "ip": "2001:DB8::1",
        }
    )
    assert body.at == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert body.rate == Decimal("0.15") and body.ip == "2001:db8::1"
    assert Body.model_validate({"n": 1, "rate": 1}).rate == Decimal(1)


def test_code_lists() -> None:
    assert len(ISO_3166_ALPHA2) == 249 and {"DE", "US", "CN", "SS"} <= ISO_3166_ALPHA2
    assert not {"ZZ", "AA", "XK", "EU", "UK"} & ISO_3166_ALPHA2
    assert {"EUR", "USD", "CNY", "JPY"} <= ISO_4217 and not {"XXX", "XTS", "ABC"} & ISO_4217


def test_message_to_data_keeps_int64_as_integers() -> None:
    request = order_pb.PlaceOrderRequest(
        currency="EUR", lines=[order_pb.RequestedLine(sku="a", quantity=2**40)]
    )
    data = message_to_data(request)
    assert data["lines"] == [{"sku": "a", "quantity": 2**40}]
    line = message_to_data(common_pb2.SkuQuantity(sku="b", quantity=3))
    assert line == {"sku": "b", "quantity": 3}
