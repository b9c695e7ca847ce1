"""All SQL of the pricing service, one repository per aggregate (reached as ``uow.<name>``)."""

from .catalog import SqlCatalog
from .competitors import SqlCompetitorPrices
from .prices import SqlPrices
from .promotions import SqlPromotions
from .quotes import SqlQuotes, SqlRedemptions

__all__ = [
    "SqlCatalog",
    "SqlCompetitorPrices",
    "SqlPrices",
    "SqlPromotions",
    "SqlQuotes",
    "SqlRedemptions",
]
