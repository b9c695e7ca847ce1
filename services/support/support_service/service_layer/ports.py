"""What the support handlers depend on: repositories reached through the unit of work, the
order and pricing services, the knowledge-base cache and the clock. The SQL implementations are
in ``adapters/`` (``SqlSupportUnitOfWork``), the gRPC clients in ``adapters/clients.py``; the
fakes for unit tests in ``tests/unit/fakes.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, cast

from ecomops_platform.bus import Context, MessageBus
from ecomops_platform.ports import UnitOfWorkPort
from ecomops_platform.timestamps import utcnow

from ..domain.compensation import DEFAULT_RULES, CompensationRule
from ..domain.knowledge import DEFAULT_AUTO_ANSWER_CONFIDENCE, Article
from ..domain.tickets import Change, SlaPolicy, Ticket
from .kb_cache import KnowledgeCache
from .views import (
    ArticleMatchView,
    ArticleView,
    CompensationView,
    MessageView,
    OrderContextView,
    RatingView,
    TimelineView,
)

# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A ticket as stored: the rules' state plus what the desk keeps beside it."""

    state: Ticket
    order_id: str | None
    category: str
    subject: str
    language: str
    suggested: tuple[ArticleMatchView, ...]
    auto_answer_article_id: str | None
    order_context_missing: bool
    #: Order total when it was opened (from the order service or its events), for priority.
    order_value_minor: int | None
    currency: str | None
    #: True when the ticket was answered by the knowledge base when opened (KPI).
    auto_answered: bool
    #: When the running SLA target falls due (None: clock not running); kept for the job.
    sla_due_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """An order as the order service answered (or as its events told, ``from_events``)."""

    order_id: str
    customer_id: str
    status: str
    total_minor: int
    currency: str
    placed_at: datetime
    delivered_at: datetime | None
    shipments: int = 0
    timeline: tuple[str, ...] = ()
    from_events: bool = False
    #: (sku, units) of every line.
    lines: tuple[tuple[str, int], ...] = ()

    def context(self) -> OrderContextView:
        return OrderContextView(
            available=not self.from_events,
            status=self.status,
            total_minor=self.total_minor,
            currency=self.currency,
            placed_at=self.placed_at,
            delivered_at=self.delivered_at,
            shipments=self.shipments,
            timeline=self.timeline,
        )


@dataclass(frozen=True, slots=True)
class TicketFilter:
    customer_id: str | None = None
    tier: int | None = None
    status: str | None = None
    category: str | None = None
    #: Only tickets whose SLA target is past at this time.
    overdue_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KpiTicketRow:
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    breaches: int
    reopened: int
    auto_answered: bool


# --- repositories -----------------------------------------------------------------------------


class TicketRepository(Protocol):
    async def add(self, record: TicketRecord) -> None: ...

    async def get(self, ticket_id: str, *, for_update: bool = False) -> TicketRecord | None: ...

    async def save(self, record: TicketRecord) -> None:
        """Write the mutable state (status, tier, clock, times, counters, due time)."""
        ...

    async def contacts_on_order(self, order_id: str, customer_id: str) -> int:
        """Tickets the customer opened before on the order."""
        ...

    async def find(
        self, flt: TicketFilter, after: tuple[datetime, str] | None, limit: int
    ) -> list[TicketRecord]:
        """Oldest first after the (created_at, ticket_id) position."""
        ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Running tickets past their SLA target, locked (others skipped)."""
        ...

    async def closable(self, resolved_before: datetime, limit: int) -> list[str]: ...

    async def add_message(self, ticket_id: str, message: MessageView) -> None: ...

    async def messages(self, ticket_id: str) -> list[MessageView]: ...

    async def add_change(self, ticket_id: str, change: Change) -> None: ...

    async def timeline(self, ticket_id: str) -> list[TimelineView]: ...


class CompensationRepository(Protocol):
    async def get(self, ticket_id: str) -> CompensationView | None: ...

    async def reserve(self, view: CompensationView) -> bool:
        """Insert the ticket's pending compensation; False when the ticket has one."""
        ...

    async def mark_applied(
        self, ticket_id: str, at: datetime, return_id: str | None = None
    ) -> CompensationView | None: ...


class RatingRepository(Protocol):
    async def add(self, ticket_id: str, customer_id: str, rating: RatingView) -> bool:
        """False when the ticket was rated before."""
        ...

    async def get(self, ticket_id: str) -> RatingView | None: ...


class ArticleRepository(Protocol):
    async def put(self, article: Article, now: datetime) -> ArticleView:
        """Insert or replace; the knowledge base's version goes up by one."""
        ...

    async def put_if_absent(self, article: Article, now: datetime) -> bool: ...

    async def all(self) -> list[ArticleView]: ...

    async def version(self) -> int:
        """The knowledge base's version (0 when empty)."""
        ...


class OrderActivityRepository(Protocol):
    async def placed(
        self, order_id: str, customer_id: str, total_minor: int, currency: str, at: datetime
    ) -> None:
        """Once per order (a repeated event changes nothing)."""
        ...

    async def delivered(self, order_id: str, at: datetime) -> None: ...

    async def get(self, order_id: str) -> OrderSnapshot | None: ...

    async def count_placed(self, from_time: datetime, to_time: datetime) -> int: ...


class KpiQueries(Protocol):
    async def tickets(self, from_time: datetime, to_time: datetime) -> list[KpiTicketRow]: ...

    async def ratings(self, from_time: datetime, to_time: datetime) -> list[tuple[int, int]]:
        """(csat, nps) of the ratings given in the period."""
        ...


class SupportUnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def tickets(self) -> TicketRepository: ...

    @property
    def compensations(self) -> CompensationRepository: ...

    @property
    def ratings(self) -> RatingRepository: ...

    @property
    def articles(self) -> ArticleRepository: ...

    @property
    def order_activity(self) -> OrderActivityRepository: ...

    @property
    def kpis(self) -> KpiQueries: ...


# --- other services ---------------------------------------------------------------------------


class OrderDirectory(Protocol):
    async def get(self, order_id: str) -> OrderSnapshot | None:
        """The order (None: the order service does not know it); ``DependencyUnavailable``
        when the order service cannot answer within the deadline."""
        ...


class Coupons(Protocol):
    async def issue(
        self,
        *,
        code: str,
        percent: Decimal,
        starts_at: datetime,
        ends_at: datetime,
        idempotency_key: str,
        name: str,
    ) -> str:
        """A single-use coupon through pricing; the same key again returns the same promotion."""
        ...


class Returns(Protocol):
    async def request_and_approve(
        self,
        *,
        order_id: str,
        lines: tuple[tuple[str, int], ...],
        reason: str,
        idempotency_key: str,
    ) -> str:
        """A return (RMA) of ``lines`` requested and approved at the order service; its id. The
        same key again finds the same return (a return approved already is accepted)."""
        ...


@dataclass(slots=True)
class Ports:
    orders: OrderDirectory
    coupons: Coupons
    returns: Returns


class _NoPorts:
    def __getattr__(self, name: str) -> object:
        raise RuntimeError("support service: dependency used before start-up")


@dataclass(slots=True)
class Deps:
    """What the handlers need beside the unit of work."""

    ports: Ports = field(default_factory=lambda: cast(Ports, _NoPorts()))
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    #: A ticket whose best article scores at least this is answered automatically.
    auto_answer_confidence: float = DEFAULT_AUTO_ANSWER_CONFIDENCE
    #: Order totals (minor units) from which priority rises one / two levels.
    high_value_minor: int = 20_000
    urgent_value_minor: int = 100_000
    #: Days from placement within which delivery is promised (compensation rules).
    promised_delivery_days: int = 3
    compensation_rules: Sequence[CompensationRule] = DEFAULT_RULES
    #: Tickets per run of the SLA job.
    job_batch_size: int = 100
    clock: Callable[[], datetime] = utcnow
    knowledge: KnowledgeCache = field(default_factory=KnowledgeCache)


Ctx = Context[SupportUnitOfWork, Deps]
Bus = MessageBus[SupportUnitOfWork, Deps]
