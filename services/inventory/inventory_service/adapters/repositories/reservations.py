"""Reservations (with their allocations) and the restocks of received returns."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import driver

from ...domain.models import Allocation, Line, Reservation, ReservationStatus
from .. import tables as t

# Every reservation's first statement (a prepared driver statement: the hot path).
_ADD_RESERVATION = """
INSERT INTO reservations (reservation_id, status, region, lines, expires_at, created_at)
VALUES ($1, $2, $3, $4::json, $5, $6)
ON CONFLICT DO NOTHING
RETURNING reservation_id
"""


def _reservation(row: Any, allocs: list[Allocation]) -> Reservation:
    return Reservation(
        reservation_id=row.reservation_id,
        status=ReservationStatus(row.status),
        expires_at=row.expires_at,
        lines=[Line(x["sku"], int(x["quantity"])) for x in row.lines],
        allocations=allocs,
        region=row.region,
        created_at=row.created_at,
        closed_at=row.closed_at,
        release_reason=row.release_reason,
    )


class SqlReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, reservation: Reservation) -> bool:
        """Insert a held reservation; False when the id exists (a concurrent insert of the same
        id waits for the first transaction and then sees the conflict)."""
        r = reservation
        conn = await driver(self.session)
        added = await conn.fetchval(
            _ADD_RESERVATION,
            r.reservation_id,
            r.status.value,
            r.region,
            json.dumps([{"sku": ln.sku, "quantity": ln.quantity} for ln in r.lines]),
            r.expires_at,
            r.created_at,
        )
        return added is not None

    async def allocations_of(self, reservation_id: str) -> list[Allocation]:
        ra = t.reservation_allocations
        rows = (
            await self.session.execute(
                sa.select(ra)
                .where(ra.c.reservation_id == reservation_id)
                .order_by(ra.c.sku, ra.c.warehouse)
            )
        ).all()
        return [Allocation(r.sku, r.warehouse, int(r.quantity)) for r in rows]

    async def get(self, reservation_id: str) -> Reservation | None:
        row = (
            await self.session.execute(
                sa.select(t.reservations).where(t.reservations.c.reservation_id == reservation_id)
            )
        ).first()
        if row is None:
            return None
        return _reservation(row, await self.allocations_of(reservation_id))

    async def close(
        self,
        reservation_id: str,
        status: ReservationStatus,
        now: datetime,
        *,
        release_reason: str | None = None,
        require_unexpired: bool = False,
    ) -> Reservation | None:
        """Conditional on the reservation being held (for commits also on it not being past
        its expiry)."""
        cond = [
            t.reservations.c.reservation_id == reservation_id,
            t.reservations.c.status == "held",
        ]
        if require_unexpired:
            cond.append(t.reservations.c.expires_at > now)
        row = (
            await self.session.execute(
                sa.update(t.reservations)
                .where(*cond)
                .values(status=status.value, closed_at=now, release_reason=release_reason)
                .returning(*t.reservations.c)
            )
        ).first()
        if row is None:
            return None
        return _reservation(row, await self.allocations_of(reservation_id))

    async def mark_restocked(self, reservation_id: str, now: datetime) -> bool:
        result = await self.session.execute(
            sa.update(t.reservations)
            .where(
                t.reservations.c.reservation_id == reservation_id,
                t.reservations.c.status == "committed",
                t.reservations.c.restocked_at.is_(None),
            )
            .values(restocked_at=now)
            .returning(t.reservations.c.reservation_id)
        )
        return result.first() is not None

    async def lock_expired(self, now: datetime, limit: int) -> list[str]:
        rows = (
            await self.session.execute(
                sa.select(t.reservations.c.reservation_id)
                .where(t.reservations.c.status == "held", t.reservations.c.expires_at <= now)
                .order_by(t.reservations.c.expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        return [r.reservation_id for r in rows]

    async def lock_status(self, reservation_id: str) -> str | None:
        row = (
            await self.session.execute(
                sa.select(t.reservations.c.status)
                .where(t.reservations.c.reservation_id == reservation_id)
                .with_for_update()
            )
        ).first()
        return str(row.status) if row else None


class SqlReturnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def restocked(self, return_id: str) -> bool:
        row = (
            await self.session.execute(
                sa.select(t.return_restocks.c.return_id)
                .where(t.return_restocks.c.return_id == return_id)
                .limit(1)
            )
        ).first()
        return row is not None

    async def returned_by_order(self, order_id: str) -> dict[tuple[str, str], int]:
        """Units earlier returns of the order put back, per (SKU, warehouse)."""
        rr = t.return_restocks
        rows = (
            await self.session.execute(
                sa.select(rr.c.sku, rr.c.warehouse, sa.func.sum(rr.c.quantity).label("units"))
                .where(rr.c.order_id == order_id)
                .group_by(rr.c.sku, rr.c.warehouse)
            )
        ).all()
        return {(r.sku, r.warehouse): int(r.units) for r in rows}

    async def add_restock(
        self,
        *,
        return_id: str,
        order_id: str,
        sku: str,
        warehouse: str,
        quantity: int,
        source: str,
        now: datetime,
    ) -> None:
        await self.session.execute(
            sa.insert(t.return_restocks).values(
                return_id=return_id,
                order_id=order_id,
                sku=sku,
                warehouse=warehouse,
                quantity=quantity,
                source=source,
                restocked_at=now,
            )
        )
