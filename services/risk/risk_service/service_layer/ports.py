"""What the risk handlers depend on: repositories reached through the unit of work, the model
store, and the clock. The SQL implementations are in ``adapters/`` (``SqlRiskUnitOfWork``), the
model store on disk in ``adapters/model_store.py``; the fakes for unit tests in
``tests/unit/fakes.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from ecomops_platform.bus import Context, MessageBus
from ecomops_platform.ports import UnitOfWorkPort
from ecomops_platform.timestamps import utcnow

from ..domain.models import BlocklistKind, CustomerHistory, Dimension
from ..domain.rules import RuleSet
from ..domain.scoring import ModelManifest, ModelOutput
from .views import BlocklistEntryView, LabelView, ReasonView, ReviewView

# --- records the repositories store and return ----------------------------------------------


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """An assessment as stored: the view's fields, plus what the model saw (``features``) and
    the fingerprint of the request (customer, amount, currency) that made it."""

    assessment_id: str
    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    score: Decimal
    decision: str
    #: approve/reject once known: the decision itself, or the analyst's for a review.
    final_decision: str | None
    reasons: tuple[ReasonView, ...]
    rules_version: int
    model_version: str
    features: Mapping[str, float]
    request_fingerprint: str
    review_id: str | None
    assessed_at: datetime


@dataclass(frozen=True, slots=True)
class PaidOrder:
    order_id: str
    customer_id: str
    currency: str
    amount_minor: int
    payment_fingerprint: str | None
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class KpiRow:
    """Assessments of a period grouped by currency, decision, final decision and label."""

    currency: str
    decision: str
    final: str | None
    label: str | None
    #: Assessments in the group.
    n: int
    #: Their amounts, and the fraud loss (the label's amount, else the order's) in minor units.
    amount: int
    fraud: int


# --- repositories -----------------------------------------------------------------------------


class RuleSetRepository(Protocol):
    async def get(self, version: int | None = None) -> RuleSet | None:
        """One version, or the newest when ``version`` is None."""
        ...

    async def list(self, *, before_version: int | None, limit: int) -> list[RuleSet]: ...

    async def add(self, definition: Mapping[str, Any], created_by: str, now: datetime) -> int:
        """Store the next version (versions are serialised) and return its number."""
        ...

    async def ensure_default(self, definition: Mapping[str, Any], now: datetime) -> None:
        """Version 1 from ``definition`` unless a version 1 exists."""
        ...


class AssessmentRepository(Protocol):
    async def by_order(self, order_id: str) -> AssessmentRecord | None: ...

    async def get(self, assessment_id: str) -> AssessmentRecord | None: ...

    async def add(self, record: AssessmentRecord) -> bool:
        """False when the order was assessed already (a concurrent call won)."""
        ...

    async def set_final_decision(self, assessment_id: str, decision: str) -> None: ...


class ReviewRepository(Protocol):
    async def add(self, review: ReviewView) -> None: ...

    async def get(self, review_id: str) -> ReviewView | None: ...

    async def resolve(
        self, review_id: str, decision: str, analyst: str, note: str, now: datetime
    ) -> ReviewView | None:
        """Resolve an open case (one conditional write); None when not open or not found."""
        ...

    async def close_for_order(self, order_id: str, reason: str, now: datetime) -> list[ReviewView]:
        """Close the order's open cases; decided cases stay as they are."""
        ...

    async def list(
        self, status: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[ReviewView]:
        """Oldest first, after the (created_at, review_id) position."""
        ...


class VelocityRepository(Protocol):
    async def record(
        self, order_id: str, keys: Mapping[Dimension, str], at: datetime, *, lock: bool
    ) -> None:
        """Count the order once per key; ``lock`` serialises concurrent assessments per key
        (counts are exact)."""
        ...

    async def counts(
        self,
        keys: Mapping[Dimension, str],
        windows: Mapping[Dimension, Iterable[int]],
        now: datetime,
    ) -> dict[tuple[Dimension, int], int]: ...

    async def prune(self, before: datetime) -> int: ...


class PaymentRepository(Protocol):
    async def history(
        self, customer_id: str, currency: str, exclude_order: str
    ) -> CustomerHistory: ...

    async def record(self, payment: PaidOrder) -> None:
        """Once per order (a repeated event changes nothing)."""
        ...

    async def mark_refunded(self, order_id: str) -> None: ...


class BlocklistRepository(Protocol):
    async def hits(self, keys: Mapping[BlocklistKind, str]) -> frozenset[BlocklistKind]: ...

    async def put(
        self, kind: BlocklistKind, value: str, reason: str, by: str, now: datetime
    ) -> BlocklistEntryView:
        """Insert, or update the reason of an existing entry."""
        ...

    async def delete(self, kind: BlocklistKind, value: str) -> bool: ...

    async def list(
        self, kind: BlocklistKind | None, after: tuple[str, str] | None, limit: int
    ) -> list[BlocklistEntryView]: ...


class LabelRepository(Protocol):
    async def add(self, label: LabelView) -> None: ...


class ModelActivationRepository(Protocol):
    async def active(self) -> str | None:
        """The version activated last (by any replica), None when none was."""
        ...

    async def activate(self, version: str, sha256: str, by: str, now: datetime) -> None: ...


class KpiQueries(Protocol):
    async def rows(self, from_time: datetime, to_time: datetime) -> list[KpiRow]: ...


class RiskUnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def rule_sets(self) -> RuleSetRepository: ...

    @property
    def assessments(self) -> AssessmentRepository: ...

    @property
    def reviews(self) -> ReviewRepository: ...

    @property
    def velocity(self) -> VelocityRepository: ...

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def blocklist(self) -> BlocklistRepository: ...

    @property
    def labels(self) -> LabelRepository: ...

    @property
    def model_activations(self) -> ModelActivationRepository: ...

    @property
    def kpis(self) -> KpiQueries: ...


# --- the model store --------------------------------------------------------------------------


class ModelStore(Protocol):
    """The trained model versions and the one this process scores with (None: rules only).

    ``predict``, ``use``, ``verify`` and ``manifests`` block (disk, unpickling, the model):
    handlers call them off the event loop."""

    @property
    def wanted(self) -> str | None:
        """The version this process was last asked to use."""
        ...

    @property
    def active_version(self) -> str | None:
        """The version loaded and scoring now."""
        ...

    @property
    def last_error(self) -> str | None:
        """Why the wanted version is not used (rules only), if it is not."""
        ...

    def predict(self, features: Mapping[str, float]) -> tuple[ModelOutput | None, str | None]:
        """The current model's output (None with rules only), and why it failed if it did."""
        ...

    def use(self, version: str | None) -> None:
        """Load ``version`` (None: rules only); on failure, rules only, loudly."""
        ...

    def verify(self, version: str) -> ModelManifest:
        """Check a version can be used (sha256, features, loadable): NotFound when it does
        not exist, Unprocessable when it is refused."""
        ...

    def manifests(self) -> list[ModelManifest]:
        """Every version in the store, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class Deps:
    """What the handlers need beside the unit of work."""

    models: ModelStore
    #: Velocity events older than this are pruned (seconds).
    velocity_retention_seconds: int = 30 * 86400
    clock: Callable[[], datetime] = utcnow


Ctx = Context[RiskUnitOfWork, Deps]
Bus = MessageBus[RiskUnitOfWork, Deps]
