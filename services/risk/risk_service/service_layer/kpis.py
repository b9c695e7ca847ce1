"""Fraud KPIs: approval, review and reject rates, precision of rejects and reviews against
the labels, fraud loss per currency (target: under 0.1% of approved GMV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ecomops_platform.auth import Role
from ecomops_platform.bus import Query, handler
from ecomops_platform.errors import Unprocessable

from ..domain.models import Decision
from .ports import Ctx, KpiRow
from .views import CurrencyLossView, KpisView


@dataclass(frozen=True, slots=True, kw_only=True)
class GetKpis(Query[KpisView], roles=(Role.OPS,)):
    """KPIs of the assessments made in [from_time, to_time) (default: the last 30 days)."""

    from_time: datetime | None = None
    to_time: datetime | None = None


def rate(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.000001")))


def kpis_of(rows: list[KpiRow], start: datetime, end: datetime) -> KpisView:
    total = sum(r.n for r in rows)
    by_decision = {d.value: sum(r.n for r in rows if r.decision == d.value) for d in Decision}
    labelled = sum(r.n for r in rows if r.label is not None)

    def precision(decision: str) -> str | None:
        with_label = sum(r.n for r in rows if r.decision == decision and r.label is not None)
        fraud = sum(r.n for r in rows if r.decision == decision and r.label == "fraud")
        return rate(fraud, with_label)

    losses = []
    for currency in sorted({r.currency for r in rows}):
        approved = [r for r in rows if r.currency == currency and r.final == "approve"]
        gmv = sum(r.amount for r in approved)
        fraud = sum(r.fraud for r in approved)
        losses.append(CurrencyLossView(currency, gmv, fraud, rate(fraud, gmv) or "0"))
    return KpisView(
        from_time=start,
        to_time=end,
        assessments=total,
        approval_rate=rate(by_decision["approve"], total) or "0",
        review_rate=rate(by_decision["review"], total) or "0",
        reject_rate=rate(by_decision["reject"], total) or "0",
        reject_precision=precision("reject"),
        review_precision=precision("review"),
        fraud_loss=tuple(losses),
        labelled=labelled,
    )


@handler
async def get_kpis(query: GetKpis, ctx: Ctx) -> KpisView:
    end = query.to_time or ctx.deps.clock()
    start = query.from_time or end - timedelta(days=30)
    if start >= end:
        raise Unprocessable("'from' must be before 'to'", code="invalid-period")
    async with ctx.uow:
        rows = await ctx.uow.kpis.rows(start, end)
    return kpis_of(rows, start, end)
