"""REST request and response models (separate from the tables and the domain)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from ecomops_platform.strict import Rfc3339Time, StrictRequestModel


class RequestModel(StrictRequestModel):
    """Request bodies are strict: JSON types as written; times are RFC 3339 text."""


class BehaviorEventIn(RequestModel):
    """One storefront behaviour event."""

    type: Literal["view", "add_to_cart", "remove_from_cart"] = Field(description="What happened")
    sku: str = Field(description="Stock keeping unit concerned", max_length=128)
    customer_id: str | None = Field(
        default=None,
        description="Customer id when signed in; must be the caller for customer tokens and "
        "absent for anonymous callers",
        max_length=128,
    )
    session_id: str | None = Field(
        default=None, description="Session id (required without customer_id)", max_length=128
    )
    occurred_at: Rfc3339Time = Field(
        description="When it happened on the client (RFC 3339 with offset)"
    )


class BehaviorBatchIn(RequestModel):
    """A batch of events, recorded all or nothing."""

    events: list[BehaviorEventIn] = Field(description="1..RECOMMENDATION_MAX_BATCH events")


class BehaviorBatchOut(BaseModel):
    """The batch was accepted: every event is published to ecomops.behavior.v1."""

    accepted: int = Field(description="Events accepted (the whole batch)")


class RecommendedItemOut(BaseModel):
    sku: str = Field(description="Active, in-stock SKU; never the SKU asked about")
    score: float = Field(description="Relevance, higher is better; compare within one answer")
    reason: str = Field(description="Why, readable by a person")


class RecommendationsOut(BaseModel):
    items: list[RecommendedItemOut]


SegmentLiteral = Literal[
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "needs_attention",
    "at_risk",
    "hibernating",
    "lost",
]


class CustomerSegmentOut(BaseModel):
    customer_id: str
    recency_days: int = Field(description="Days since the last paid order")
    frequency: int = Field(description="Paid orders")
    monetary_minor: int = Field(description="Total paid, minor units of `currency`")
    currency: str = Field(description="ISO-4217 main currency of the customer")
    r_score: int = Field(ge=1, le=5)
    f_score: int = Field(ge=1, le=5)
    m_score: int = Field(ge=1, le=5)
    segment: SegmentLiteral
    churn_risk: Literal["low", "medium", "high"]
    computed_at: datetime


class SegmentCountOut(BaseModel):
    segment: SegmentLiteral
    customers: int


class SegmentCountsOut(BaseModel):
    counts: list[SegmentCountOut] = Field(description="All nine segments, zero included")
    total: int


class FunnelOut(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    category: str | None
    views: int
    add_to_carts: int
    orders: int
    paid: int
    view_to_cart_rate: Decimal | None = Field(description="add_to_carts / views (null if 0)")
    cart_to_order_rate: Decimal | None = Field(description="orders / add_to_carts")
    order_to_paid_rate: Decimal | None = Field(description="paid / orders")
    view_to_paid_rate: Decimal | None = Field(description="paid / views")

    model_config = {"populate_by_name": True}
