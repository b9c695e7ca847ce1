"""Service KPIs over a period: tickets opened, first-response and resolution times (p50/p90),
SLA breach, auto-answer and reopen rates, CSAT, NPS, contacts per 100 orders."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from ecomops_platform.auth import Role
from ecomops_platform.bus import Query, handler
from ecomops_platform.errors import Unprocessable

from .ports import Ctx
from .views import SupportKpis


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSupportKpis(Query[SupportKpis], roles=(Role.OPS,)):
    #: Default: 30 days before ``to_time``.
    from_time: datetime | None = None
    #: Default: now.
    to_time: datetime | None = None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 3)


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


@handler
async def get_support_kpis(query: GetSupportKpis, ctx: Ctx) -> SupportKpis:
    to_time = query.to_time or ctx.deps.clock()
    from_time = query.from_time or to_time - timedelta(days=30)
    if to_time <= from_time:
        raise Unprocessable("to must be after from", code="invalid-period")
    async with ctx.uow:
        rows = await ctx.uow.kpis.tickets(from_time, to_time)
        ratings = await ctx.uow.kpis.ratings(from_time, to_time)
        orders = await ctx.uow.order_activity.count_placed(from_time, to_time)
    first = [
        (r.first_response_at - r.created_at).total_seconds() for r in rows if r.first_response_at
    ]
    resolution = [(r.resolved_at - r.created_at).total_seconds() for r in rows if r.resolved_at]
    n = len(rows)
    promoters = sum(1 for _, nps in ratings if nps >= 9)
    detractors = sum(1 for _, nps in ratings if nps <= 6)
    return SupportKpis(
        from_time=from_time,
        to_time=to_time,
        tickets_opened=n,
        first_response_p50_seconds=percentile(first, 0.5),
        first_response_p90_seconds=percentile(first, 0.9),
        resolution_p50_seconds=percentile(resolution, 0.5),
        resolution_p90_seconds=percentile(resolution, 0.9),
        sla_breach_rate=_rate(sum(1 for r in rows if r.breaches), n),
        auto_answer_rate=_rate(sum(1 for r in rows if r.auto_answered), n),
        reopen_rate=_rate(sum(1 for r in rows if r.reopened), n),
        csat_average=round(sum(c for c, _ in ratings) / len(ratings), 3) if ratings else None,
        nps=round(100 * (promoters - detractors) / len(ratings), 1) if ratings else None,
        ratings=len(ratings),
        orders=orders,
        contact_rate_per_100_orders=round(100 * n / orders, 2) if orders else None,
    )
