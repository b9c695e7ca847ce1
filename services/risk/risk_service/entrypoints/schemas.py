"""REST request bodies, and the response models the read models are encoded with."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt

from ecomops_platform.strict import (
    CountryCode,
    CurrencyCode,
    DecimalText,
    IpAddress,
    Rfc3339Time,
    StrictRequestModel,
)

from ..service_layer.views import KpisView

MAX_AMOUNT = 10**15
MAX_QUANTITY = 1_000_000
MAX_LINES = 500

Currency = CurrencyCode
Country = CountryCode
Id = Annotated[str, Field(min_length=1, max_length=200)]
Amount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
RuleName = Annotated[str, Field(min_length=1, max_length=64)]


class RequestModel(StrictRequestModel):
    """Request bodies are strict: JSON types as written (no "1" or true for 1); decimals as
    strings; times as RFC 3339 text."""


class LineIn(RequestModel):
    sku: Id
    quantity: StrictInt = Field(gt=0, le=MAX_QUANTITY)
    unit_price_minor: Amount


class AssessmentIn(RequestModel):
    order_id: Id
    customer_id: Id
    amount_minor: Amount
    currency: Currency
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    email: Annotated[str, Field(max_length=320)] | None = None
    ip: IpAddress | None = None
    device_id: Annotated[str, Field(max_length=300)] | None = None
    payment_fingerprint: Annotated[str, Field(max_length=300)] | None = None
    billing_country: Country | None = None
    shipping_country: Country | None = None
    account_created_at: Rfc3339Time | None = None


class ReasonOut(BaseModel):
    code: str
    detail: str
    weight: str = Field(description="Contribution to the score (decimal string)")
    shadow: bool = False


class AssessmentOut(BaseModel):
    assessment_id: str
    order_id: str
    customer_id: str
    score: str = Field(description="Combined score in [0, 1], decimal string with 4 places")
    decision: Literal["approve", "review", "reject"]
    reasons: list[ReasonOut]
    rules_version: int
    model_version: str = Field(description="Empty when scored by rules only")
    amount_minor: int
    currency: str
    review_id: str | None
    assessed_at: datetime


class RuleIn(RequestModel):
    code: RuleName | None = None
    type: RuleName
    weight: DecimalText
    shadow: bool = False
    params: dict[RuleName, DecimalText] = Field(default_factory=dict, max_length=20)


class RuleSetIn(RequestModel):
    review_threshold: DecimalText
    reject_threshold: DecimalText
    model_weight: DecimalText = Decimal(0)
    rules: list[RuleIn] = Field(max_length=100)


class AssessmentListOut(BaseModel):
    items: list[AssessmentOut] = Field(
        description="The order's assessments (empty when it was never assessed)"
    )


class RuleOut(BaseModel):
    code: str
    type: str
    weight: str
    shadow: bool
    params: dict[str, str]


class RuleSetOut(BaseModel):
    version: int
    review_threshold: str
    reject_threshold: str
    model_weight: str
    rules: list[RuleOut]
    created_by: str
    created_at: datetime | None


class RuleSetPage(BaseModel):
    items: list[RuleSetOut]
    next_cursor: str | None


class BlocklistIn(RequestModel):
    reason: Annotated[str, Field(max_length=500)] = ""


class BlocklistOut(BaseModel):
    kind: str
    value: str
    reason: str
    created_by: str
    created_at: datetime


class BlocklistPage(BaseModel):
    items: list[BlocklistOut]
    next_cursor: str | None


class ReviewOut(BaseModel):
    review_id: str
    assessment_id: str
    order_id: str
    customer_id: str
    status: Literal["open", "resolved", "closed"]
    decision: Literal["approve", "reject"] | None
    analyst: str | None
    note: str | None
    score: str
    reasons: list[ReasonOut]
    amount_minor: int
    currency: str
    created_at: datetime
    resolved_at: datetime | None
    close_reason: str | None = None


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None


class DecisionIn(RequestModel):
    decision: Literal["approve", "reject"]
    note: Annotated[str, Field(max_length=2000)] = ""


class LabelIn(RequestModel):
    order_id: Id
    label: Literal["fraud", "legitimate"]
    source: Literal["chargeback", "analyst"]
    amount_minor: Amount | None = None


class LabelOut(BaseModel):
    label_id: str
    order_id: str
    label: str
    source: str
    amount_minor: int | None
    created_by: str
    created_at: datetime


class ModelOut(BaseModel):
    version: str
    algorithm: str
    features: list[str]
    metrics: dict[str, str]
    sha256: str
    active: bool
    created_at: datetime


class ModelList(BaseModel):
    items: list[ModelOut]
    fallback_reason: str | None = Field(
        description="Why the service scores with rules only although a model was activated"
    )


class CurrencyLossOut(BaseModel):
    currency: str
    gmv_approved_minor: int
    fraud_loss_minor: int
    fraud_loss_rate: str


class KpisOut(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    assessments: int
    approval_rate: str
    review_rate: str
    reject_rate: str
    reject_precision: str | None
    review_precision: str | None
    fraud_loss: list[CurrencyLossOut]
    labelled: int

    @classmethod
    def of(cls, view: KpisView) -> KpisOut:
        data = asdict(view)
        data["from"], data["to"] = data.pop("from_time"), data.pop("to_time")
        return cls.model_validate(data)
