"""The order service's unit of work: the platform's (one transaction, outbox, idempotency
store) with the order repositories attached, over the transaction's session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecomops_platform.db import Database, UnitOfWork

from .imports import SqlImportRepository
from .kpis import SqlKpiReader
from .repositories import (
    FIRST_SEEN_SQL,
    SqlCartRepository,
    SqlOrderRepository,
    SqlReturnRepository,
)


class SqlOrderUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, service: str) -> None:
        super().__init__(db, service)
        self._orders: SqlOrderRepository | None = None

    @property
    def orders(self) -> SqlOrderRepository:
        # One per transaction: it remembers which timeline entries are already stored.
        if self._orders is None or self._orders.session is not self.session:
            self._orders = SqlOrderRepository(self.session)
        return self._orders

    @property
    def carts(self) -> SqlCartRepository:
        return SqlCartRepository(self.session)

    @property
    def returns(self) -> SqlReturnRepository:
        return SqlReturnRepository(self.session)

    @property
    def kpis(self) -> SqlKpiReader:
        return SqlKpiReader(self.session)

    @property
    def imports(self) -> SqlImportRepository:
        return SqlImportRepository(self.session)

    async def first_order_at(self, customer_id: str) -> datetime | None:
        async def read(conn: Any) -> datetime | None:
            first: datetime | None = await conn.fetchval(FIRST_SEEN_SQL, customer_id)
            return first

        return await self._db.autocommit(read)
