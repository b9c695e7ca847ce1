"""Settings and edge validation that need no stack."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from ecomops.pricing.v1 import pricing_service_pb2 as pb
from ecomops_platform.errors import Unprocessable
from ecomops_platform.grpc_server import screen_request
from pricing_service.entrypoints.schemas import CreateQuoteIn, has_nul
from pricing_service.settings import PricingSettings


def test_margin_floor_and_ports_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICING_DATABASE_URL", "postgresql+asyncpg://u:p@h:1/ecomops_pricing")
    monkeypatch.setenv("PRICING_MARGIN_FLOOR", "0.25")
    settings = PricingSettings()  # type: ignore[call-arg]
    assert settings.margin_floor == Decimal("0.25")
    assert (settings.http_port, settings.grpc_port) == (8003, 9003)
    monkeypatch.setenv("PRICING_MARGIN_FLOOR", "1.5")
    with pytest.raises(ValidationError):
        PricingSettings()  # type: ignore[call-arg]


def test_nul_characters_are_refused() -> None:
    assert has_nul({"a": ["x", "y\x00"]}) and not has_nul({"a": ["x", 1]})
    with pytest.raises(ValidationError):
        CreateQuoteIn.model_validate(
            {"currency": "EUR", "lines": [{"sku": "a\x00", "quantity": 1}]}
        )
    with pytest.raises(ValidationError):
        CreateQuoteIn.model_validate({"currency": "EUR", "lines": [{"sku": "a", "quantity": 1.0}]})
    with pytest.raises(Unprocessable):
        screen_request(pb.CreateQuoteRequest(currency="EUR", coupon_codes=["OK", "B\x00D"]))
    screen_request(pb.CreateQuoteRequest(currency="EUR", coupon_codes=["OK"]))
