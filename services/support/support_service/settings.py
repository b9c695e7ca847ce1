"""Settings of the support service (``SUPPORT_*`` variables)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import SettingsConfigDict

from ecomops_platform.settings import ServiceSettings

from .domain.knowledge import DEFAULT_AUTO_ANSWER_CONFIDENCE


class CompensationRuleIn(BaseModel):
    """One goodwill rule (see ``domain/compensation.py``)."""

    rule_id: str = Field(min_length=1, max_length=100)
    kind: Literal["coupon", "return"] = "coupon"
    categories: tuple[str, ...] = ()
    percent: Decimal = Field(default=Decimal("0.10"), gt=0, le=1)
    min_days_late: int = Field(default=0, ge=0)
    valid_days: int = Field(default=30, ge=1, le=365)


class SupportSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORT_", extra="ignore")

    http_port: int = Field(default=8006, ge=0, le=65535)
    grpc_port: int = Field(default=9006, ge=0, le=65535)

    order_target: str = "127.0.0.1:9001"
    pricing_target: str = "127.0.0.1:9003"
    #: Deadline of every gRPC call to order or pricing, in seconds.
    dependency_timeout: float = Field(default=2.0, gt=0, le=30)

    #: A new ticket whose best article scores at least this (0..1) is answered automatically.
    auto_answer_confidence: float = Field(default=DEFAULT_AUTO_ANSWER_CONFIDENCE, ge=0, le=1)
    #: SLA targets in minutes per tier (JSON, e.g. {"1": 240, "2": 480, "3": 1440}).
    sla_first_response_minutes: dict[int, int] = {1: 240, 2: 480, 3: 1440}
    sla_resolution_minutes: dict[int, int] = {1: 1440, 2: 2880, 3: 4320}
    #: Factor applied to both targets per priority.
    sla_priority_factor: dict[str, float] = {
        "low": 2.0,
        "normal": 1.0,
        "high": 0.5,
        "urgent": 0.25,
    }
    #: Order totals (minor units) from which a ticket's priority rises one / two levels.
    high_value_minor: int = Field(default=20_000, ge=0)
    urgent_value_minor: int = Field(default=100_000, ge=0)
    #: Delivery is promised within this many days of placement (compensation rules).
    promised_delivery_days: int = Field(default=3, ge=0, le=365)
    #: Goodwill rules (JSON list); default: 10 % coupon for a delivery more than 2 days late,
    #: return and refund of a delivered order for a product (damaged item) ticket.
    compensation_rules: list[CompensationRuleIn] = [
        CompensationRuleIn(
            rule_id="late-delivery-10",
            categories=("delivery",),
            percent=Decimal("0.10"),
            min_days_late=2,
            valid_days=30,
        ),
        CompensationRuleIn(rule_id="damaged-item-return", kind="return", categories=("product",)),
    ]
    #: How often the SLA escalation job and the closing job run (seconds).
    sla_job_interval: float = Field(default=30.0, gt=0)
    close_job_interval: float = Field(default=600.0, gt=0)
    job_batch_size: int = Field(default=100, ge=1, le=10_000)
    #: Load the starter knowledge base at start-up when the articles table is empty.
    seed_starter_kb: bool = True

    @field_validator("sla_first_response_minutes", "sla_resolution_minutes")
    @classmethod
    def _every_tier(cls, value: dict[int, int]) -> dict[int, int]:
        if set(value) != {1, 2, 3} or any(v <= 0 for v in value.values()):
            raise ValueError("needs a positive number of minutes for tiers 1, 2 and 3")
        return value

    @field_validator("sla_priority_factor")
    @classmethod
    def _every_priority(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"low", "normal", "high", "urgent"} or any(v <= 0 for v in value.values()):
            raise ValueError("needs a positive factor for low, normal, high and urgent")
        return value
