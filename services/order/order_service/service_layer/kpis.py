"""Order KPIs over a period: orders, GMV, average order value, repurchase, cancellation,
return and cart abandonment rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from ecomops_platform.bus import Query, handler
from ecomops_platform.errors import Unprocessable

from .orders import STAFF
from .ports import Ctx
from .views import CurrencyAmountView, KpisView


@dataclass(frozen=True, slots=True, kw_only=True)
class GetOrderKpis(Query[KpisView], roles=STAFF):
    """Over [start, end): by default the 30 days before now."""

    start: datetime | None = None
    end: datetime | None = None


def rate(numerator: int, denominator: int) -> str:
    """A ratio with four decimals, banker's rounding ("0.0000" when nothing to divide)."""
    if denominator == 0:
        return "0.0000"
    value = Decimal(numerator) / Decimal(denominator)
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


@handler
async def get_order_kpis(query: GetOrderKpis, ctx: Ctx) -> KpisView:
    end = query.end or ctx.deps.clock()
    start = query.start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("from and to need a time zone", code="invalid-period")
    if start >= end:
        raise Unprocessable("from must be before to", code="invalid-period")
    async with ctx.uow:
        counts = await ctx.uow.kpis.counts(start=start, end=end)
    paid = counts.paid_by_currency
    return KpisView(
        from_=start.isoformat(),
        to=end.isoformat(),
        orders=counts.orders,
        paid_orders=counts.paid_orders,
        gmv=[CurrencyAmountView(currency=c.currency, amount_minor=c.total_minor) for c in paid],
        average_order_value=[
            CurrencyAmountView(currency=c.currency, amount_minor=c.total_minor // c.orders)
            for c in paid
        ],
        repurchase_rate=rate(counts.repeat_buyers, counts.buyers),
        cancellation_rate=rate(counts.cancelled, counts.orders),
        return_rate=rate(counts.orders_with_returns, counts.paid_orders),
        cart_abandonment_rate=rate(counts.abandoned_carts, counts.carts),
    )
