"""The SQL repositories of the recommendation service, one module per aggregate; the unit of
work (``adapters/unit_of_work.py``) attaches them to its session."""

from .catalog import SqlCatalogRepository
from .funnel import SqlFunnelQueries
from .interactions import SqlInteractionRepository
from .model import SqlModelRepository
from .orders import SqlOrderRepository
from .segments import SqlSegmentRepository

__all__ = [
    "SqlCatalogRepository",
    "SqlFunnelQueries",
    "SqlInteractionRepository",
    "SqlModelRepository",
    "SqlOrderRepository",
    "SqlSegmentRepository",
]
