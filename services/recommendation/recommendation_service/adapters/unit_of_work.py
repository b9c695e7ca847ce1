"""The recommendation service's unit of work: the platform's (one transaction, outbox,
Idempotency-Keys) with the service's repositories on its session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from ecomops_platform.db import UnitOfWork

from ..service_layer.ports import RecommendationUnitOfWork
from .repositories import (
    SqlCatalogRepository,
    SqlFunnelQueries,
    SqlInteractionRepository,
    SqlModelRepository,
    SqlOrderRepository,
    SqlSegmentRepository,
)


class SqlRecommendationUnitOfWork(UnitOfWork):
    """Repositories are built on the open transaction's session (use inside ``async with``)."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        return self

    @property
    def model(self) -> SqlModelRepository:
        return SqlModelRepository(self.session)

    @property
    def catalog(self) -> SqlCatalogRepository:
        return SqlCatalogRepository(self.session)

    @property
    def interactions(self) -> SqlInteractionRepository:
        return SqlInteractionRepository(self.session)

    @property
    def orders(self) -> SqlOrderRepository:
        return SqlOrderRepository(self.session)

    @property
    def segments(self) -> SqlSegmentRepository:
        return SqlSegmentRepository(self.session)

    @property
    def funnel(self) -> SqlFunnelQueries:
        return SqlFunnelQueries(self.session)


if TYPE_CHECKING:  # the SQL unit of work is the service layer's port
    _port: type[RecommendationUnitOfWork] = SqlRecommendationUnitOfWork
