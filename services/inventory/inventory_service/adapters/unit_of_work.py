"""``SqlInventoryUnitOfWork``: the platform's unit of work with the inventory repositories
attached (``uow.skus``, ``uow.stock`` …), each over the transaction's session."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ecomops_platform.db import UnitOfWork

from ..service_layer.ports import DatabaseFailure
from .repositories import (
    SqlInboundRepository,
    SqlPlanningRepository,
    SqlReservationRepository,
    SqlReturnRepository,
    SqlSkuRepository,
    SqlStockRepository,
    SqlWarehouseRepository,
)

# PostgreSQL: deadlock_detected, serialization_failure.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return None if code is None else str(code)


class SqlInventoryUnitOfWork(UnitOfWork):
    @property
    def skus(self) -> SqlSkuRepository:
        return SqlSkuRepository(self.session)

    @property
    def warehouses(self) -> SqlWarehouseRepository:
        return SqlWarehouseRepository(self.session)

    @property
    def stock(self) -> SqlStockRepository:
        return SqlStockRepository(self.session)

    @property
    def reservations(self) -> SqlReservationRepository:
        return SqlReservationRepository(self.session)

    @property
    def returns(self) -> SqlReturnRepository:
        return SqlReturnRepository(self.session)

    @property
    def planning(self) -> SqlPlanningRepository:
        return SqlPlanningRepository(self.session)

    @property
    def inbound(self) -> SqlInboundRepository:
        return SqlInboundRepository(self.session)

    def failure(self, exc: BaseException) -> DatabaseFailure | None:
        if isinstance(exc, DBAPIError):
            if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
                return DatabaseFailure.CONNECTION
            if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
                return DatabaseFailure.DEADLOCK
            return None
        if isinstance(exc, PoolTimeout):
            return DatabaseFailure.SATURATED
        return None
