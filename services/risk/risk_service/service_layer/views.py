"""Read models the risk handlers return (REST encodes them through ``entrypoints.schemas``,
gRPC through ``entrypoints.grpc``). Scores, weights and rates are decimal strings, times aware
datetimes, money integer minor units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.rules import RuleSet
from ..domain.scoring import Reason


@dataclass(frozen=True, slots=True)
class ReasonView:
    code: str
    detail: str
    #: Contribution to the score (decimal string; 0 for shadow rules).
    weight: str
    shadow: bool = False

    @classmethod
    def of(cls, reason: Reason) -> ReasonView:
        return cls(reason.code, reason.detail, str(reason.weight), reason.shadow)


@dataclass(frozen=True, slots=True)
class AssessmentView:
    assessment_id: str
    order_id: str
    customer_id: str
    #: Combined score in [0, 1], 4 places.
    score: str
    decision: str
    reasons: tuple[ReasonView, ...]
    rules_version: int
    #: Empty when scored by rules only.
    model_version: str
    amount_minor: int
    currency: str
    review_id: str | None
    assessed_at: datetime


@dataclass(frozen=True, slots=True)
class Assessed:
    """An assessment and whether this call made it (False: the order was assessed before)."""

    assessment: AssessmentView
    created: bool


@dataclass(frozen=True, slots=True)
class RuleView:
    code: str
    type: str
    weight: str
    shadow: bool
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class RuleSetView:
    version: int
    review_threshold: str
    reject_threshold: str
    model_weight: str
    rules: tuple[RuleView, ...]
    created_by: str
    created_at: datetime | None

    @classmethod
    def of(cls, rules: RuleSet) -> RuleSetView:
        data = rules.to_json()
        return cls(
            version=rules.version,
            review_threshold=data["review_threshold"],
            reject_threshold=data["reject_threshold"],
            model_weight=data["model_weight"],
            rules=tuple(RuleView(**r) for r in data["rules"]),
            created_by=rules.created_by,
            created_at=rules.created_at,
        )


@dataclass(frozen=True, slots=True)
class RuleSetPage:
    items: tuple[RuleSetView, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class BlocklistEntryView:
    kind: str
    value: str
    reason: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BlocklistPage:
    items: tuple[BlocklistEntryView, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ReviewView:
    """A review case as stored (``status``: open, resolved or closed)."""

    review_id: str
    assessment_id: str
    order_id: str
    customer_id: str
    status: str
    decision: str | None
    analyst: str | None
    note: str | None
    score: str
    reasons: tuple[ReasonView, ...]
    amount_minor: int
    currency: str
    created_at: datetime
    resolved_at: datetime | None
    close_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewPage:
    items: tuple[ReviewView, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AssessmentList:
    """The assessments of one order (an order id is assessed once: zero or one)."""

    items: tuple[AssessmentView, ...]


@dataclass(frozen=True, slots=True)
class LabelView:
    label_id: str
    order_id: str
    label: str
    source: str
    amount_minor: int | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ModelView:
    version: str
    algorithm: str
    features: tuple[str, ...]
    metrics: dict[str, str]
    sha256: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ModelsView:
    items: tuple[ModelView, ...]
    #: Why the service scores with rules only although a model was activated.
    fallback_reason: str | None


@dataclass(frozen=True, slots=True)
class CurrencyLossView:
    currency: str
    gmv_approved_minor: int
    fraud_loss_minor: int
    fraud_loss_rate: str


@dataclass(frozen=True, slots=True)
class KpisView:
    """Fraud KPIs of the assessments made in [from_time, to_time)."""

    from_time: datetime
    to_time: datetime
    assessments: int
    approval_rate: str
    review_rate: str
    reject_rate: str
    reject_precision: str | None
    review_precision: str | None
    fraud_loss: tuple[CurrencyLossView, ...]
    labelled: int
