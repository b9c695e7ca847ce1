"""The pricing unit of work: the platform's (one transaction, outbox, idempotency keys) with the
pricing repositories attached, all on the transaction's session."""

from __future__ import annotations

from ecomops_platform.db import UnitOfWork

from .repositories import (
    SqlCatalog,
    SqlCompetitorPrices,
    SqlPrices,
    SqlPromotions,
    SqlQuotes,
    SqlRedemptions,
)


class SqlPricingUnitOfWork(UnitOfWork):
    @property
    def catalog(self) -> SqlCatalog:
        return SqlCatalog(self.session)

    @property
    def prices(self) -> SqlPrices:
        return SqlPrices(self.session)

    @property
    def promotions(self) -> SqlPromotions:
        return SqlPromotions(self.session)

    @property
    def quotes(self) -> SqlQuotes:
        return SqlQuotes(self.session)

    @property
    def redemptions(self) -> SqlRedemptions:
        return SqlRedemptions(self.session)

    @property
    def competitors(self) -> SqlCompetitorPrices:
        return SqlCompetitorPrices(self.session)
