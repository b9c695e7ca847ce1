"""The co-occurrence model's scaled weights: counts, pairs, totals, popularity."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ...domain.models import BASKET, Increments, Neighbour
from ...service_layer.ports import CatalogEntry, ModelWeights
from ..tables import catalog_items, item_counts, item_pairs, item_popularity, model_totals

#: Rows per INSERT of the rebuild.
CHUNK = 5000


def eligible() -> list[sa.ColumnElement[bool]]:
    """What may be recommended: known (has a title), active, in stock."""
    return [
        catalog_items.c.title.is_not(None),
        catalog_items.c.status == "active",
        catalog_items.c.available > 0,
    ]


class SqlModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(self, inc: Increments) -> None:
        """Add the increments (sorted, so that concurrent consumers lock rows in one order)."""
        session = self.session
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

    async def drop_negligible_purchases(
        self, skus: Sequence[str], eps: float, trend_eps: float
    ) -> None:
        wanted = list(skus)
        await self.session.execute(
            sa.delete(item_pairs).where(
                item_pairs.c.kind == BASKET,
                item_pairs.c.sku_a.in_(wanted),
                item_pairs.c.weight <= eps,
            )
        )
        await self.session.execute(
            sa.delete(item_counts).where(
                item_counts.c.kind == BASKET,
                item_counts.c.sku.in_(wanted),
                item_counts.c.weight <= eps,
            )
        )
        await self.session.execute(
            sa.delete(item_popularity).where(
                item_popularity.c.sku.in_(wanted), item_popularity.c.weight <= trend_eps
            )
        )

    async def neighbours(
        self, kinds: Sequence[str], skus: Sequence[str], per_item: int = 100
    ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], list[Neighbour]]]:
        """Counts and the strongest recommendable neighbours, in two queries."""
        if not skus or not kinds:
            return {}, {}
        counts_rows = await self.session.execute(
            sa.select(item_counts.c.kind, item_counts.c.sku, item_counts.c.weight).where(
                item_counts.c.kind.in_(list(kinds)), item_counts.c.sku.in_(list(skus))
            )
        )
        counts = {(r.kind, r.sku): float(r.weight) for r in counts_rows}
        rows = await self.session.execute(
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

    async def trending(
        self, *, categories: Sequence[str] | None, limit: int, exclude: Iterable[str] = ()
    ) -> list[tuple[CatalogEntry, float]]:
        query = (
            sa.select(
                catalog_items.c.sku,
                catalog_items.c.title,
                catalog_items.c.category,
                item_popularity.c.weight,
            )
            .join(item_popularity, item_popularity.c.sku == catalog_items.c.sku)
            .where(*eligible())
            .order_by(item_popularity.c.weight.desc(), catalog_items.c.sku)
            .limit(limit)
        )
        if categories is not None:
            query = query.where(catalog_items.c.category.in_(list(categories)))
        excluded = list(set(exclude))
        if excluded:
            query = query.where(catalog_items.c.sku.not_in(excluded))
        rows = await self.session.execute(query)
        return [(CatalogEntry(r.sku, r.title, r.category), float(r.weight)) for r in rows]

    async def lock_for_rebuild(self) -> None:
        """A transaction-scoped advisory lock: a second rebuild waits for the first."""
        await self.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('rec-rebuild'))"))

    async def replace(self, weights: ModelWeights) -> None:
        """Swap the whole model in this transaction (TRUNCATE, then bulk inserts)."""
        await self.session.execute(
            sa.text("TRUNCATE item_counts, item_pairs, model_totals, item_popularity")
        )
        await self._insert(
            item_counts,
            ({"kind": k, "sku": s, "weight": w} for (k, s), w in weights.counts.items()),
        )
        await self._insert(
            item_pairs,
            ({"kind": k, "sku_a": a, "sku_b": b, "weight": w} for k, a, b, w in weights.pairs),
        )
        await self._insert(
            model_totals, ({"kind": k, "weight": w} for k, w in weights.totals.items())
        )
        await self._insert(
            item_popularity, ({"sku": s, "weight": w} for s, w in weights.popularity.items())
        )

    async def _insert(self, table: sa.Table, rows: Iterable[dict[str, Any]]) -> None:
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                await self.session.execute(sa.insert(table), chunk)
                chunk = []
        if chunk:
            await self.session.execute(sa.insert(table), chunk)
