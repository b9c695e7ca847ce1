"""SQL access of the recommendation service: the model's weights, the catalogue, interactions,
orders and segments. Every function takes the unit of work's session (one transaction)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.models import Increments, InteractionKind, Neighbour
from .tables import (
    catalog_items,
    customer_segments,
    interactions,
    item_counts,
    item_pairs,
    item_popularity,
    model_totals,
    order_lines,
    orders,
)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    sku: str
    title: str
    category: str | None


# --- model weights ----------------------------------------------------------------------------


async def apply_increments(session: AsyncSession, inc: Increments) -> None:
    """Add the increments (sorted, so that concurrent consumers lock rows in one order)."""
    if inc.counts:
        stmt = pg_insert(item_counts)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[item_counts.c.kind, item_counts.c.sku],
                set_={"weight": item_counts.c.weight + stmt.excluded.weight},
            ),
            [{"kind": k, "sku": s, "weight": w} for (k, s), w in sorted(inc.counts.items())],
        )
    if inc.pairs:
        stmt = pg_insert(item_pairs)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[item_pairs.c.kind, item_pairs.c.sku_a, item_pairs.c.sku_b],
                set_={"weight": item_pairs.c.weight + stmt.excluded.weight},
            ),
            [
                {"kind": k, "sku_a": a, "sku_b": b, "weight": w}
                for (k, a, b), w in sorted(inc.pairs.items())
            ],
        )
    if inc.popularity:
        stmt = pg_insert(item_popularity)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[item_popularity.c.sku],
                set_={"weight": item_popularity.c.weight + stmt.excluded.weight},
            ),
            [{"sku": s, "weight": w} for s, w in sorted(inc.popularity.items())],
        )
    if inc.totals:
        stmt = pg_insert(model_totals)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[model_totals.c.kind],
                set_={"weight": model_totals.c.weight + stmt.excluded.weight},
            ),
            [{"kind": k, "weight": w} for k, w in sorted(inc.totals.items())],
        )


async def replace_model(
    session: AsyncSession,
    counts: dict[tuple[str, str], float],
    pairs: Iterable[tuple[str, str, str, float]],
    totals: dict[str, float],
    popularity: dict[str, float],
) -> None:
    """Swap the whole model in one transaction (the rebuild)."""
    await session.execute(
        sa.text("TRUNCATE item_counts, item_pairs, model_totals, item_popularity")
    )

    async def insert_chunks(table: sa.Table, rows: Iterable[dict[str, Any]]) -> None:
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= 5000:
                await session.execute(sa.insert(table), chunk)
                chunk = []
        if chunk:
            await session.execute(sa.insert(table), chunk)

    await insert_chunks(
        item_counts, ({"kind": k, "sku": s, "weight": w} for (k, s), w in counts.items())
    )
    await insert_chunks(
        item_pairs, ({"kind": k, "sku_a": a, "sku_b": b, "weight": w} for k, a, b, w in pairs)
    )
    await insert_chunks(model_totals, ({"kind": k, "weight": w} for k, w in totals.items()))
    await insert_chunks(item_popularity, ({"sku": s, "weight": w} for s, w in popularity.items()))


async def neighbours(
    session: AsyncSession, kinds: Sequence[str], skus: Sequence[str], per_item: int = 100
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], list[Neighbour]]]:
    """For each (kind, SKU): its transaction count and its strongest co-occurring SKUs among
    those that may be recommended (known, active, in stock), in two queries."""
    if not skus or not kinds:
        return {}, {}
    counts_rows = await session.execute(
        sa.select(item_counts.c.kind, item_counts.c.sku, item_counts.c.weight).where(
            item_counts.c.kind.in_(list(kinds)), item_counts.c.sku.in_(list(skus))
        )
    )
    counts = {(r.kind, r.sku): float(r.weight) for r in counts_rows}
    rows = await session.execute(
        sa.text(
            """
            SELECT k.kind, src.sku AS sku_a, top.sku_b, top.weight AS co, c.weight AS count_b
            FROM unnest(CAST(:kinds AS text[])) AS k(kind)
            CROSS JOIN unnest(CAST(:skus AS text[])) AS src(sku)
            CROSS JOIN LATERAL (
                SELECT p.sku_b, p.weight FROM item_pairs p
                JOIN catalog_items ci ON ci.sku = p.sku_b
                WHERE p.kind = k.kind AND p.sku_a = src.sku
                  AND ci.title IS NOT NULL AND ci.status = 'active' AND ci.available > 0
                ORDER BY p.weight DESC LIMIT :per_item
            ) AS top
            JOIN item_counts c ON c.kind = k.kind AND c.sku = top.sku_b
            """
        ),
        {"kinds": list(kinds), "skus": list(skus), "per_item": per_item},
    )
    out: dict[tuple[str, str], list[Neighbour]] = defaultdict(list)
    for r in rows:
        out[(r.kind, r.sku_a)].append(Neighbour(r.sku_b, float(r.co), float(r.count_b)))
    return counts, out


async def catalog_entries(session: AsyncSession, skus: Iterable[str]) -> dict[str, CatalogEntry]:
    """Title and category of known SKUs, recommendable or not (for reasons and categories)."""
    wanted = list(set(skus))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(catalog_items.c.sku, catalog_items.c.title, catalog_items.c.category).where(
            catalog_items.c.sku.in_(wanted)
        )
    )
    return {r.sku: CatalogEntry(r.sku, r.title or r.sku, r.category) for r in rows}


def _eligible_clauses() -> list[sa.ColumnElement[bool]]:
    return [
        catalog_items.c.title.is_not(None),
        catalog_items.c.status == "active",
        catalog_items.c.available > 0,
    ]


async def trending(
    session: AsyncSession,
    *,
    categories: Sequence[str] | None,
    limit: int,
    exclude: Iterable[str] = (),
) -> list[tuple[CatalogEntry, float]]:
    """The most popular eligible SKUs (stored, scaled weights), optionally in some categories."""
    query = (
        sa.select(
            catalog_items.c.sku,
            catalog_items.c.title,
            catalog_items.c.category,
            item_popularity.c.weight,
        )
        .join(item_popularity, item_popularity.c.sku == catalog_items.c.sku)
        .where(*_eligible_clauses())
        .order_by(item_popularity.c.weight.desc(), catalog_items.c.sku)
        .limit(limit)
    )
    if categories is not None:
        query = query.where(catalog_items.c.category.in_(list(categories)))
    excluded = list(set(exclude))
    if excluded:
        query = query.where(catalog_items.c.sku.not_in(excluded))
    rows = await session.execute(query)
    return [(CatalogEntry(r.sku, r.title, r.category), float(r.weight)) for r in rows]


# --- catalogue --------------------------------------------------------------------------------


async def upsert_sku(
    session: AsyncSession,
    *,
    sku: str,
    title: str,
    category: str,
    brand: str,
    status: str,
    updated_at: datetime,
) -> None:
    values = {
        "title": title or sku,
        "category": category or None,
        "brand": brand or None,
        "status": status or "active",
        "sku_updated_at": updated_at,
    }
    stmt = pg_insert(catalog_items).values(sku=sku, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[catalog_items.c.sku],
            set_=values,
            where=sa.or_(
                catalog_items.c.sku_updated_at.is_(None),
                catalog_items.c.sku_updated_at <= updated_at,
            ),
        )
    )


async def set_stock(session: AsyncSession, *, sku: str, available: int, at: datetime) -> None:
    stmt = pg_insert(catalog_items).values(sku=sku, available=available, stock_at=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[catalog_items.c.sku],
            set_={"available": available, "stock_at": at},
            where=sa.or_(catalog_items.c.stock_at.is_(None), catalog_items.c.stock_at <= at),
        )
    )


# --- interactions -----------------------------------------------------------------------------


async def recent_session_skus(
    session: AsyncSession, actor: str, since: datetime, until: datetime
) -> list[str]:
    """Distinct SKUs viewed or carted by the actor in the window, most recent first."""
    rows = await session.execute(
        sa.select(interactions.c.sku, sa.func.max(interactions.c.occurred_at).label("last"))
        .where(
            interactions.c.actor == actor,
            interactions.c.kind.in_(
                [InteractionKind.VIEW.value, InteractionKind.ADD_TO_CART.value]
            ),
            interactions.c.occurred_at >= since,
            interactions.c.occurred_at <= until,
        )
        .group_by(interactions.c.sku)
        .order_by(sa.desc("last"))
        .limit(200)
    )
    return [r.sku for r in rows]


async def add_interactions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(interactions), rows)


async def customer_history(
    session: AsyncSession, customer_id: str, since: datetime
) -> list[tuple[str, str, int, datetime]]:
    rows = await session.execute(
        sa.select(
            interactions.c.sku,
            interactions.c.kind,
            interactions.c.quantity,
            interactions.c.occurred_at,
        )
        .where(interactions.c.customer_id == customer_id, interactions.c.occurred_at >= since)
        .order_by(interactions.c.occurred_at.desc())
        .limit(500)
    )
    return [(r.sku, r.kind, int(r.quantity), r.occurred_at) for r in rows]


async def purchased_skus(session: AsyncSession, customer_id: str) -> set[str]:
    rows = await session.execute(
        sa.select(order_lines.c.sku)
        .join(orders, orders.c.order_id == order_lines.c.order_id)
        .where(orders.c.customer_id == customer_id, orders.c.paid_at.is_not(None))
        .distinct()
    )
    return {r.sku for r in rows}


async def all_interactions(
    session: AsyncSession,
) -> list[tuple[str, str, str, str | None, datetime]]:
    """Every stored interaction in time order (the rebuild)."""
    rows = await session.execute(
        sa.select(
            interactions.c.actor,
            interactions.c.sku,
            interactions.c.kind,
            interactions.c.order_id,
            interactions.c.occurred_at,
        ).order_by(interactions.c.occurred_at, interactions.c.id)
    )
    return [(r.actor, r.sku, r.kind, r.order_id, r.occurred_at) for r in rows]


# --- orders -----------------------------------------------------------------------------------


async def record_order_placed(
    session: AsyncSession,
    *,
    order_id: str,
    customer_id: str,
    currency: str,
    total_minor: int,
    placed_at: datetime,
    lines: dict[str, int],
) -> None:
    stmt = pg_insert(orders).values(
        order_id=order_id,
        customer_id=customer_id,
        currency=currency,
        total_minor=total_minor,
        placed_at=placed_at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[orders.c.order_id], set_={"placed_at": placed_at}
        )
    )
    await _record_lines(session, order_id, lines)


async def record_order_paid(
    session: AsyncSession,
    *,
    order_id: str,
    customer_id: str,
    currency: str,
    total_minor: int,
    paid_at: datetime,
    lines: dict[str, int],
) -> bool:
    """Mark the order paid; False when it already was (its effects were applied then)."""
    stmt = pg_insert(orders).values(
        order_id=order_id,
        customer_id=customer_id,
        currency=currency,
        total_minor=total_minor,
        paid_at=paid_at,
    )
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[orders.c.order_id],
            set_={"paid_at": paid_at, "total_minor": total_minor, "currency": currency},
            where=orders.c.paid_at.is_(None),
        ).returning(orders.c.order_id)
    )
    if result.first() is None:
        return False
    await _record_lines(session, order_id, lines)
    return True


async def cancel_order(
    session: AsyncSession, order_id: str, at: datetime
) -> tuple[str, datetime | None, dict[str, int]] | None:
    """Mark the order cancelled once; returns (customer, paid_at or None, lines) the first time."""
    row = (
        await session.execute(
            sa.update(orders)
            .where(orders.c.order_id == order_id, orders.c.cancelled_at.is_(None))
            .values(cancelled_at=at)
            .returning(orders.c.customer_id, orders.c.paid_at)
        )
    ).first()
    if row is None:
        return None
    lines = await session.execute(
        sa.select(order_lines.c.sku, order_lines.c.quantity).where(
            order_lines.c.order_id == order_id
        )
    )
    return row.customer_id, row.paid_at, {r.sku: int(r.quantity) for r in lines}


async def forget_purchases(
    session: AsyncSession, order_id: str, skus: Sequence[str], eps: float, trend_eps: float
) -> None:
    """Drop a cancelled order's purchase interactions and the weights it left at ~0."""
    await session.execute(
        sa.delete(interactions).where(
            interactions.c.order_id == order_id,
            interactions.c.kind == InteractionKind.PURCHASE.value,
        )
    )
    wanted = list(skus)
    await session.execute(
        sa.delete(item_pairs).where(
            item_pairs.c.kind == "basket",
            item_pairs.c.sku_a.in_(wanted),
            item_pairs.c.weight <= eps,
        )
    )
    await session.execute(
        sa.delete(item_counts).where(
            item_counts.c.kind == "basket",
            item_counts.c.sku.in_(wanted),
            item_counts.c.weight <= eps,
        )
    )
    await session.execute(
        sa.delete(item_popularity).where(
            item_popularity.c.sku.in_(wanted), item_popularity.c.weight <= trend_eps
        )
    )


async def _record_lines(session: AsyncSession, order_id: str, lines: dict[str, int]) -> None:
    if not lines:
        return
    stmt = pg_insert(order_lines)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[order_lines.c.order_id, order_lines.c.sku],
            set_={"quantity": stmt.excluded.quantity},
        ),
        [{"order_id": order_id, "sku": s, "quantity": q} for s, q in sorted(lines.items())],
    )


# --- segments ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaidStats:
    currency: str
    frequency: int
    monetary_minor: int
    first_paid_at: datetime
    last_paid_at: datetime


async def paid_stats(session: AsyncSession, customer_id: str) -> PaidStats | None:
    """Paid orders of a customer in its main currency (the one it paid most often in)."""
    row = (
        await session.execute(
            sa.select(
                orders.c.currency,
                sa.func.count().label("n"),
                sa.func.sum(orders.c.total_minor).label("m"),
                sa.func.min(orders.c.paid_at).label("first"),
                sa.func.max(orders.c.paid_at).label("last"),
            )
            .where(
                orders.c.customer_id == customer_id,
                orders.c.paid_at.is_not(None),
                orders.c.cancelled_at.is_(None),
            )
            .group_by(orders.c.currency)
            .order_by(sa.desc("n"), sa.desc("m"))
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return PaidStats(row.currency, int(row.n), int(row.m), row.first, row.last)


async def share_spending_less(
    session: AsyncSession, currency: str, monetary_minor: int, customer_id: str
) -> float:
    row = (
        await session.execute(
            sa.select(
                sa.func.count().filter(customer_segments.c.monetary_minor < monetary_minor),
                sa.func.count(),
            ).where(
                customer_segments.c.currency == currency,
                customer_segments.c.customer_id != customer_id,
            )
        )
    ).one()
    below, total = int(row[0]), int(row[1])
    return below / total if total else 0.5


async def lock_customer(session: AsyncSession, customer_id: str) -> None:
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext('rec-seg:' || :c))"), {"c": customer_id}
    )


async def get_segment_row(session: AsyncSession, customer_id: str) -> Any:
    return (
        await session.execute(
            sa.select(customer_segments).where(customer_segments.c.customer_id == customer_id)
        )
    ).first()


async def save_segment(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = pg_insert(customer_segments).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[customer_segments.c.customer_id],
            set_={k: v for k, v in values.items() if k != "customer_id"},
        )
    )


async def stale_customers(session: AsyncSession, before: datetime, limit: int) -> list[str]:
    rows = await session.execute(
        sa.select(customer_segments.c.customer_id)
        .where(customer_segments.c.computed_at < before)
        .order_by(customer_segments.c.computed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [r.customer_id for r in rows]


async def segment_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        sa.select(customer_segments.c.segment, sa.func.count()).group_by(
            customer_segments.c.segment
        )
    )
    return {r[0]: int(r[1]) for r in rows}


# --- funnel -----------------------------------------------------------------------------------


async def funnel_counts(
    session: AsyncSession, start: datetime, end: datetime, category: str | None
) -> tuple[int, int, int, int]:
    def behaviour(kind: InteractionKind) -> sa.Select[Any]:
        q = sa.select(sa.func.count()).select_from(interactions)
        if category is not None:
            q = q.join(catalog_items, catalog_items.c.sku == interactions.c.sku).where(
                catalog_items.c.category == category
            )
        return q.where(
            interactions.c.kind == kind.value,
            interactions.c.occurred_at >= start,
            interactions.c.occurred_at < end,
        )

    def order_count(column: sa.Column[Any]) -> sa.Select[Any]:
        q = sa.select(sa.func.count()).select_from(orders).where(column >= start, column < end)
        if category is not None:
            q = q.where(
                sa.exists(
                    sa.select(1)
                    .select_from(
                        order_lines.join(catalog_items, catalog_items.c.sku == order_lines.c.sku)
                    )
                    .where(
                        order_lines.c.order_id == orders.c.order_id,
                        catalog_items.c.category == category,
                    )
                )
            )
        return q

    views = int(await session.scalar(behaviour(InteractionKind.VIEW)) or 0)
    carts = int(await session.scalar(behaviour(InteractionKind.ADD_TO_CART)) or 0)
    placed = int(await session.scalar(order_count(orders.c.placed_at)) or 0)
    paid = int(await session.scalar(order_count(orders.c.paid_at)) or 0)
    return views, carts, placed, paid
