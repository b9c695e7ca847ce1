"""The inventory repositories, one module per aggregate: all the service's SQL.

Every stock change is one conditional statement: the row lock PostgreSQL takes for the UPDATE
serialises concurrent writers on a (SKU, warehouse) row, and the WHERE clause re-checked after
the lock decides, so there is no read-then-write window.
"""

from .catalog import SqlSkuRepository, SqlWarehouseRepository
from .inbound import SqlInboundRepository
from .planning import SqlPlanningRepository
from .reservations import SqlReservationRepository, SqlReturnRepository
from .stock import SqlStockRepository

__all__ = [
    "SqlInboundRepository",
    "SqlPlanningRepository",
    "SqlReservationRepository",
    "SqlReturnRepository",
    "SqlSkuRepository",
    "SqlStockRepository",
    "SqlWarehouseRepository",
]
