"""The pricing unit of work: the platform's (one transaction, outbox, idempotency keys) with the
pricing repositories attached, all on the transaction's session."""

from __future__ import annotations

from ecomops_platform.db import UnitOfWork

from .read_cache import ReadCache, read_cache
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
    def read_cache(self) -> ReadCache:
        """The short cache of SKUs, prices and automatic promotions (``read_cache``)."""
        return read_cache(self._db)

    @property
    def catalog(self) -> SqlCatalog:
        return SqlCatalog(self.session, self.read_cache)

    @property
    def prices(self) -> SqlPrices:
        return SqlPrices(self.session, self.read_cache)

    @property
    def promotions(self) -> SqlPromotions:
        return SqlPromotions(self.session, self.read_cache)

    @property
    def quotes(self) -> SqlQuotes:
        return SqlQuotes(self.session)

    @property
    def redemptions(self) -> SqlRedemptions:
        return SqlRedemptions(self.session)

    @property
    def competitors(self) -> SqlCompetitorPrices:
        return SqlCompetitorPrices(self.session)
