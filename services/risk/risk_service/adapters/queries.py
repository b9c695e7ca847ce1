"""Reads beside the repositories: the model activations and the fraud KPIs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ..service_layer.ports import KpiRow
from .tables import model_activations


class SqlModelActivationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active(self) -> str | None:
        version = await self.session.scalar(
            sa.select(model_activations.c.version).order_by(model_activations.c.id.desc()).limit(1)
        )
        return None if version is None else str(version)

    async def activate(self, version: str, sha256: str, by: str, now: datetime) -> None:
        await self.session.execute(
            sa.insert(model_activations).values(
                version=version, sha256=sha256, activated_by=by, activated_at=now
            )
        )


KPI_SQL = sa.text(
    """
    WITH a AS (
        SELECT assessment_id, order_id, amount_minor, currency, decision,
               COALESCE(final_decision, CASE WHEN decision = 'approve' THEN 'approve' END) AS final
        FROM assessments
        WHERE assessed_at >= :from_time AND assessed_at < :to_time
    ),
    l AS (
        SELECT DISTINCT ON (order_id) order_id, label, amount_minor
        FROM labels
        WHERE order_id IN (SELECT order_id FROM a)
        ORDER BY order_id, (source = 'chargeback') DESC, created_at DESC
    )
    SELECT a.currency, a.decision, a.final, l.label,
           count(*) AS n,
           COALESCE(sum(a.amount_minor), 0) AS amount,
           COALESCE(sum(CASE WHEN l.label = 'fraud'
                        THEN COALESCE(l.amount_minor, a.amount_minor) ELSE 0 END), 0) AS fraud
    FROM a LEFT JOIN l ON l.order_id = a.order_id
    GROUP BY a.currency, a.decision, a.final, l.label
    """
)


class SqlKpiQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rows(self, from_time: datetime, to_time: datetime) -> list[KpiRow]:
        result = await self.session.execute(KPI_SQL, {"from_time": from_time, "to_time": to_time})
        return [
            KpiRow(
                currency=row.currency,
                decision=row.decision,
                final=row.final,
                label=row.label,
                n=int(row.n),
                amount=int(row.amount),
                fraud=int(row.fraud),
            )
            for row in result.all()
        ]
