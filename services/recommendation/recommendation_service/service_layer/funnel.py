"""The conversion funnel KPI: views -> add to carts -> orders -> paid, with the rates between."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Query, handler
from ecomops_platform.errors import Unprocessable

from ..domain.models import rate
from .ports import Ctx
from .views import Funnel

#: The window when the caller gives no start.
DEFAULT_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetFunnel(Query[Funnel], roles=(Role.OPS, Role.SERVICE)):
    """Counts in ``[start, end)`` (default: the last 30 days), optionally for one category."""

    start: datetime | None = None
    end: datetime | None = None
    category: str | None = None


@handler
async def get_funnel(query: GetFunnel, ctx: Ctx) -> Funnel:
    end = query.end or ctx.deps.clock()
    start = query.start or end - DEFAULT_WINDOW
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("from and to need a time zone offset", code="invalid-range")
    if start >= end:
        raise Unprocessable("from must be before to", code="invalid-range")
    async with ctx.uow:
        counts = await ctx.uow.funnel.counts(start, end, query.category)
    views, carts, placed, paid = counts.views, counts.add_to_carts, counts.orders, counts.paid
    return Funnel(
        start=start,
        end=end,
        category=query.category,
        views=views,
        add_to_carts=carts,
        orders=placed,
        paid=paid,
        view_to_cart_rate=rate(carts, views),
        cart_to_order_rate=rate(placed, carts),
        order_to_paid_rate=rate(paid, placed),
        view_to_paid_rate=rate(paid, views),
    )
