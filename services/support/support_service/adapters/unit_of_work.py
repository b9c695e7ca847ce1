"""The support unit of work: the platform's (one transaction, outbox, idempotency keys) with the
support repositories on its session."""

from __future__ import annotations

from ecomops_platform.db import UnitOfWork

from .repositories import (
    SqlArticleRepository,
    SqlCompensationRepository,
    SqlKpiQueries,
    SqlOrderActivityRepository,
    SqlRatingRepository,
    SqlTicketRepository,
)


class SqlSupportUnitOfWork(UnitOfWork):
    @property
    def tickets(self) -> SqlTicketRepository:
        return SqlTicketRepository(self.session)

    @property
    def compensations(self) -> SqlCompensationRepository:
        return SqlCompensationRepository(self.session)

    @property
    def ratings(self) -> SqlRatingRepository:
        return SqlRatingRepository(self.session)

    @property
    def articles(self) -> SqlArticleRepository:
        return SqlArticleRepository(self.session)

    @property
    def order_activity(self) -> SqlOrderActivityRepository:
        return SqlOrderActivityRepository(self.session)

    @property
    def kpis(self) -> SqlKpiQueries:
        return SqlKpiQueries(self.session)
