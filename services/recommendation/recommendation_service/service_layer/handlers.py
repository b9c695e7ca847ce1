"""Use cases of the recommendation service, one function each, inside one unit of work."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from prometheus_client import Gauge, Histogram

from ecomops.inventory.v1 import events_pb2 as inventory_events
from ecomops.order.v1 import events_pb2 as order_events
from ecomops_platform.auth import Caller, Role
from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.errors import NotFound, Unprocessable

from ..adapters import events as pb
from ..adapters import repository as repo
from ..domain.models import (
    BASKET,
    INTERACTION_WEIGHT,
    SESSION,
    BehaviorEvent,
    CustomerRfm,
    EntryError,
    HistoryItem,
    Increments,
    InMemoryModel,
    InteractionKind,
    ModelParams,
    SegmentName,
    basket_increments,
    compute_rfm,
    personalise,
    popularity_increment,
    rank_neighbours,
    rate,
    scaled,
    session_increments,
    unscale,
    validate_behavior,
)

model_lag_seconds = Gauge(
    "recommendation_model_lag_seconds",
    "Time from an event's occurrence (ce_time) to its effect on the model, last event applied",
    ["source"],
)
model_update_seconds = Histogram(
    "recommendation_model_update_lag_seconds",
    "Time from an event's creation (ce_time) to the commit-ready model update",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
segment_refresh_last_batch = Gauge(
    "recommendation_segment_refresh_last_batch", "Customers re-scored in the last refresh batch"
)


@dataclass(frozen=True, slots=True)
class Item:
    """One recommended item."""

    sku: str
    score: float
    reason: str


def _observe_lag(source: str, event_time: datetime) -> None:
    lag = max(0.0, (utcnow() - event_time).total_seconds())
    model_lag_seconds.labels(source).set(lag)
    model_update_seconds.labels(source).observe(lag)


# --- ingestion --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestionPolicy:
    max_batch: int
    max_skew: timedelta
    max_age: timedelta


async def record_behavior(
    uow: UnitOfWork,
    events: list[BehaviorEvent],
    *,
    caller: Caller | None,
    policy: IngestionPolicy,
    decode_errors: Sequence[EntryError] = (),
) -> int:
    """Validate the whole batch, then publish every event through the outbox (all or nothing).

    ``decode_errors`` are problems the entrypoint found while decoding (reported together)."""
    if not events:
        raise Unprocessable("a batch needs at least one event", code="empty-batch")
    if len(events) > policy.max_batch:
        raise Unprocessable(
            f"a batch holds at most {policy.max_batch} events (got {len(events)})",
            code="batch-too-large",
            max_batch=policy.max_batch,
        )
    now = utcnow()
    customer = caller.subject if caller is not None and caller.role is Role.CUSTOMER else None
    errors: list[EntryError] = list(decode_errors)
    for index, event in enumerate(events):
        errors.extend(
            validate_behavior(
                index,
                event,
                caller_customer=customer,
                anonymous=caller is None,
                now=now,
                max_skew=policy.max_skew,
                max_age=policy.max_age,
            )
        )
    if errors:
        raise invalid_entries(sorted(errors, key=lambda e: (e.index, e.field)))
    async with uow:
        for event in events:
            uow.add_event(
                pb.behavior_recorded(event, now),
                key=event.customer_id or event.session_id or event.sku,
                topic=pb.BEHAVIOR_TOPIC,
            )
        await uow.commit()
    return len(events)


def invalid_entries(errors: list[EntryError]) -> Unprocessable:
    bad = sorted({e.index for e in errors})
    summary = "; ".join(f"events[{e.index}].{e.field}: {e.reason}" for e in errors[:10])
    return Unprocessable(
        f"{len(bad)} invalid event(s), nothing was recorded: {summary}",
        code="invalid-behavior-events",
        invalid_indexes=bad,
        errors=[
            {
                "index": e.index,
                "field": e.field,
                "location": ["body", "events", str(e.index), e.field],
                "message": e.reason,
            }
            for e in errors
        ],
    )


# --- consumers: learning from events ----------------------------------------------------------


async def apply_behavior(
    uow: UnitOfWork,
    event_id: str,
    event: BehaviorEvent,
    kind: InteractionKind,
    params: ModelParams,
    created_at: datetime,
) -> None:
    session = uow.session
    at = event.occurred_at
    inc = Increments()
    if kind is not InteractionKind.REMOVE_FROM_CART:
        recent = await repo.recent_session_skus(
            session, event.actor, at - params.session_window, at
        )
        if event.sku not in recent:
            inc = session_increments(event.sku, recent, at, params)
    inc.popularity[event.sku] = popularity_increment(event.sku, kind, 1, at, params)
    await repo.add_interactions(
        session,
        [
            {
                "event_id": event_id,
                "actor": event.actor,
                "customer_id": event.customer_id,
                "session_id": event.session_id,
                "sku": event.sku,
                "kind": kind.value,
                "quantity": 1,
                "order_id": None,
                "occurred_at": at,
            }
        ],
    )
    await repo.apply_increments(session, inc)
    _observe_lag("behavior", created_at)


def _lines(lines: list[order_events.OrderLine]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.sku:
            out[line.sku] += max(1, int(line.quantity))
    return dict(out)


async def apply_order_placed(uow: UnitOfWork, msg: order_events.OrderPlaced) -> None:
    placed_at = (
        msg.placed_at.ToDatetime(tzinfo=utcnow().tzinfo) if msg.HasField("placed_at") else utcnow()
    )
    await repo.record_order_placed(
        uow.session,
        order_id=msg.order_id,
        customer_id=msg.customer_id,
        currency=msg.currency or "XXX",
        total_minor=msg.total_minor,
        placed_at=placed_at,
        lines=_lines(list(msg.lines)),
    )


async def apply_order_paid(
    uow: UnitOfWork,
    event_id: str,
    msg: order_events.OrderPaid,
    params: ModelParams,
    created_at: datetime,
) -> CustomerRfm | None:
    """A paid basket: co-purchases, purchase interactions, popularity, and the RFM segment."""
    session = uow.session
    paid_at = (
        msg.paid_at.ToDatetime(tzinfo=utcnow().tzinfo) if msg.HasField("paid_at") else utcnow()
    )
    lines = _lines(list(msg.lines))
    first = await repo.record_order_paid(
        session,
        order_id=msg.order_id,
        customer_id=msg.customer_id,
        currency=msg.currency or "XXX",
        total_minor=msg.total_minor,
        paid_at=paid_at,
        lines=lines,
    )
    if not first:
        return None
    inc = basket_increments(lines, paid_at, params)
    for sku, quantity in lines.items():
        inc.popularity[sku] = popularity_increment(
            sku, InteractionKind.PURCHASE, quantity, paid_at, params
        )
    await repo.add_interactions(
        session,
        [
            {
                "event_id": event_id,
                "actor": f"c:{msg.customer_id}",
                "customer_id": msg.customer_id,
                "session_id": None,
                "sku": sku,
                "kind": InteractionKind.PURCHASE.value,
                "quantity": quantity,
                "order_id": msg.order_id,
                "occurred_at": paid_at,
            }
            for sku, quantity in sorted(lines.items())
        ],
    )
    await repo.apply_increments(session, inc)
    _observe_lag("order", created_at)
    return await refresh_segment(uow, msg.customer_id)


async def apply_order_cancelled(
    uow: UnitOfWork, msg: order_events.OrderCancelled, params: ModelParams
) -> CustomerRfm | None:
    """A cancelled paid order is refunded: its basket, purchases and spend are taken back
    (scaled weights are additive, so subtracting the same increments undoes them exactly)."""
    session = uow.session
    cancelled = await repo.cancel_order(session, msg.order_id, utcnow())
    if cancelled is None:
        return None
    customer, paid_at, lines = cancelled
    if paid_at is None:
        return None
    inc = basket_increments(lines, paid_at, params)
    for sku, quantity in lines.items():
        inc.popularity[sku] = popularity_increment(
            sku, InteractionKind.PURCHASE, quantity, paid_at, params
        )
    negative = Increments(
        counts={k: -w for k, w in inc.counts.items()},
        pairs={k: -w for k, w in inc.pairs.items()},
        totals={k: -w for k, w in inc.totals.items()},
        popularity={k: -w for k, w in inc.popularity.items()},
    )
    await repo.apply_increments(session, negative)
    # Float residue of an add-then-subtract is ~1e-16 relative: drop what is left near zero.
    await repo.forget_purchases(
        session,
        msg.order_id,
        sorted(lines),
        scaled(paid_at, params.rate) * 1e-9,
        scaled(paid_at, params.trending_rate) * 1e-9,
    )
    return await refresh_segment(uow, customer)


async def apply_sku_upserted(uow: UnitOfWork, msg: inventory_events.SkuUpserted) -> None:
    await repo.upsert_sku(
        uow.session,
        sku=msg.sku,
        title=msg.title,
        category=msg.category,
        brand=msg.brand,
        status=msg.status,
        updated_at=msg.updated_at.ToDatetime(tzinfo=utcnow().tzinfo)
        if msg.HasField("updated_at")
        else utcnow(),
    )


async def apply_stock_level(uow: UnitOfWork, msg: inventory_events.StockLevelChanged) -> None:
    await repo.set_stock(
        uow.session,
        sku=msg.sku,
        available=msg.available,
        at=msg.occurred_at.ToDatetime(tzinfo=utcnow().tzinfo)
        if msg.HasField("occurred_at")
        else utcnow(),
    )


# --- segments ---------------------------------------------------------------------------------


async def refresh_segment(uow: UnitOfWork, customer_id: str) -> CustomerRfm | None:
    """Recompute one customer's RFM; publish CustomerSegmentChanged only when it moved."""
    session = uow.session
    await repo.lock_customer(session, customer_id)
    stats = await repo.paid_stats(session, customer_id)
    if stats is None:
        return None
    now = utcnow()
    share = await repo.share_spending_less(
        session, stats.currency, stats.monetary_minor, customer_id
    )
    rfm = compute_rfm(
        customer_id,
        last_paid_at=stats.last_paid_at,
        first_paid_at=stats.first_paid_at,
        frequency=stats.frequency,
        monetary_minor=stats.monetary_minor,
        currency=stats.currency,
        share_below=share,
        now=now,
    )
    previous = await repo.get_segment_row(session, customer_id)
    await repo.save_segment(
        session,
        {
            "customer_id": customer_id,
            "recency_days": rfm.recency_days,
            "frequency": rfm.frequency,
            "monetary_minor": rfm.monetary_minor,
            "currency": rfm.currency,
            "r_score": rfm.r_score,
            "f_score": rfm.f_score,
            "m_score": rfm.m_score,
            "segment": rfm.segment.value,
            "churn_risk": rfm.churn_risk.value,
            "computed_at": now,
        },
    )
    previous_segment = previous.segment if previous is not None else None
    if previous_segment != rfm.segment.value:
        uow.add_event(
            pb.segment_changed(rfm, previous_segment, now),
            key=customer_id,
            topic=pb.SEGMENT_TOPIC,
        )
    return rfm


async def refresh_stale_segments(uow: UnitOfWork, *, older_than: timedelta, batch: int) -> int:
    """Re-score customers whose segment is older than ``older_than`` (recency ages). Safe with
    several replicas: rows are claimed with FOR UPDATE SKIP LOCKED."""
    async with uow:
        customers = await repo.stale_customers(uow.session, utcnow() - older_than, batch)
        for customer_id in customers:
            await refresh_segment(uow, customer_id)
        await uow.commit()
    segment_refresh_last_batch.set(len(customers))
    return len(customers)


async def get_segment(uow: UnitOfWork, customer_id: str) -> dict[str, object]:
    async with uow:
        row = await repo.get_segment_row(uow.session, customer_id)
    if row is None:
        raise NotFound(f"customer {customer_id} has no paid order yet, so no segment")
    return dict(row._mapping)


async def segment_counts(uow: UnitOfWork) -> dict[str, int]:
    async with uow:
        counts = await repo.segment_counts(uow.session)
    return {s.value: counts.get(s.value, 0) for s in SegmentName}


# --- funnel -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Funnel:
    start: datetime
    end: datetime
    category: str | None
    views: int
    add_to_carts: int
    orders: int
    paid: int
    view_to_cart_rate: Decimal | None
    cart_to_order_rate: Decimal | None
    order_to_paid_rate: Decimal | None
    view_to_paid_rate: Decimal | None


async def funnel(
    uow: UnitOfWork, start: datetime | None, end: datetime | None, category: str | None
) -> Funnel:
    end = end or utcnow()
    start = start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise Unprocessable("from and to need a time zone offset", code="invalid-range")
    if start >= end:
        raise Unprocessable("from must be before to", code="invalid-range")
    async with uow:
        views, carts, placed, paid = await repo.funnel_counts(uow.session, start, end, category)
    return Funnel(
        start,
        end,
        category,
        views,
        carts,
        placed,
        paid,
        rate(carts, views),
        rate(placed, carts),
        rate(paid, placed),
        rate(paid, views),
    )


# --- serving ----------------------------------------------------------------------------------


async def similar_items(uow: UnitOfWork, sku: str, limit: int, params: ModelParams) -> list[Item]:
    """Viewed together in sessions (Jaccard), then popular in the same category."""
    async with uow:
        session = uow.session
        asked = (await repo.catalog_entries(session, [sku])).get(sku)
        ranked = await _neighbours_of(uow, SESSION, sku)
        title = asked.title if asked else sku
        items = [Item(s, round(score, 6), f"often viewed with {title}") for s, score in ranked][
            :limit
        ]
        if len(items) < limit and asked is not None and asked.category:
            taken = {i.sku for i in items} | {sku}
            for entry, _weight in await repo.trending(
                session, categories=[asked.category], limit=limit - len(items), exclude=taken
            ):
                items.append(
                    Item(
                        entry.sku,
                        _fallback_score(items),
                        f"popular in {asked.category}, like {title}",
                    )
                )
    return items


async def bought_together(uow: UnitOfWork, sku: str, limit: int, params: ModelParams) -> list[Item]:
    """Bought in the same paid orders (Jaccard on decayed basket counts)."""
    async with uow:
        asked = (await repo.catalog_entries(uow.session, [sku])).get(sku)
        ranked = await _neighbours_of(uow, BASKET, sku)
    title = asked.title if asked else sku
    return [Item(s, round(score, 6), f"often bought with {title}") for s, score in ranked][:limit]


async def _neighbours_of(uow: UnitOfWork, kind: str, sku: str) -> list[tuple[str, float]]:
    """Recommendable neighbours of one SKU (never the SKU itself), best first."""
    counts, neigh = await repo.neighbours(uow.session, [kind], [sku], per_item=200)
    ranked = rank_neighbours(counts.get((kind, sku), 0.0), neigh.get((kind, sku), []))
    return [(s, score) for s, score in ranked if s != sku]


async def trending(
    uow: UnitOfWork, category: str | None, limit: int, params: ModelParams
) -> list[Item]:
    now = utcnow()
    async with uow:
        rows = await repo.trending(
            uow.session, categories=[category] if category else None, limit=limit
        )
    return [
        Item(
            entry.sku,
            round(unscale(weight, params.trending_rate, now), 6),
            f"trending in {entry.category}" if entry.category else "trending now",
        )
        for entry, weight in rows
    ]


async def customer_recommendations(
    uow: UnitOfWork,
    customer_id: str,
    limit: int,
    params: ModelParams,
    *,
    exclude_purchased: bool,
) -> list[Item]:
    """Personalised (SAR): affinity to what the customer viewed, carted and bought, times item
    similarity; cold start: trending in the customer's recent categories, then overall."""
    now = utcnow()
    async with uow:
        session = uow.session
        rows = await repo.customer_history(session, customer_id, now - timedelta(days=180))
        affinity: dict[str, float] = defaultdict(float)
        purchased_recent: set[str] = set()
        for sku, kind, quantity, at in rows:
            k = InteractionKind(kind)
            decay = math.exp(-params.rate * max(0.0, (now - at).total_seconds()))
            affinity[sku] += INTERACTION_WEIGHT[k] * max(1, quantity) * decay
            if k is InteractionKind.PURCHASE:
                purchased_recent.add(sku)
        history = [
            HistoryItem(sku, w, sku in purchased_recent)
            for sku, w in sorted(affinity.items(), key=lambda kv: -kv[1])[:20]
            if w > 0
        ]
        exclude = await repo.purchased_skus(session, customer_id) if exclude_purchased else set()
        skus = [h.sku for h in history]
        similar: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        counts, neigh = await repo.neighbours(session, [BASKET, SESSION], skus, per_item=100)
        for kind, factor in ((BASKET, 1.0), (SESSION, 0.5)):
            for s in skus:
                ranked_kind = rank_neighbours(counts.get((kind, s), 0.0), neigh.get((kind, s), []))
                for cand, sim in ranked_kind:
                    similar[s][cand] += factor * sim
        ranked = personalise(
            history,
            {s: sorted(c.items(), key=lambda kv: -kv[1]) for s, c in similar.items()},
            exclude=exclude,
        )
        known = await repo.catalog_entries(session, skus)
        by_sku = {h.sku: h for h in history}
        items: list[Item] = []
        for sku, score, source in ranked:
            if sku in items_skus(items):
                continue
            src_title = known[source].title if source in known else source
            reason = (
                f"goes well with {src_title}, which you bought"
                if by_sku[source].purchased
                else f"similar to {src_title}, which you viewed"
            )
            items.append(Item(sku, round(score, 6), reason))
            if len(items) >= limit:
                break
        if len(items) < limit:
            categories: list[str] = []
            for s in skus[:10]:
                entry = known.get(s)
                if entry is not None and entry.category and entry.category not in categories:
                    categories.append(entry.category)
            taken = items_skus(items) | exclude
            if categories:
                for entry, _weight in await repo.trending(
                    session, categories=categories, limit=limit - len(items), exclude=taken
                ):
                    items.append(
                        Item(
                            entry.sku,
                            _fallback_score(items),
                            f"trending in {entry.category}",
                        )
                    )
                    taken.add(entry.sku)
            if len(items) < limit:
                for entry, _weight in await repo.trending(
                    session, categories=None, limit=limit - len(items), exclude=taken
                ):
                    items.append(
                        Item(
                            entry.sku,
                            _fallback_score(items),
                            f"trending in {entry.category}" if entry.category else "trending now",
                        )
                    )
    return items


def _fallback_score(items: list[Item]) -> float:
    """Fallback items rank below every model-based item already in the answer."""
    last = items[-1].score if items else 1.0
    return round(last * 0.9, 9)


def items_skus(items: list[Item]) -> set[str]:
    return {i.sku for i in items}


# --- rebuild ----------------------------------------------------------------------------------


def train_from_interactions(
    rows: list[tuple[str, str, str, str | None, datetime]], params: ModelParams
) -> InMemoryModel:
    """Replay stored interactions through the in-memory model (CPU-bound: run off the loop)."""
    model = InMemoryModel(params)
    baskets: dict[str, tuple[datetime, dict[str, int]]] = {}
    for actor, sku, kind, order_id, at in rows:
        k = InteractionKind(kind)
        if k is InteractionKind.PURCHASE:
            key = order_id or f"{actor}@{at.isoformat()}"
            _, lines = baskets.setdefault(key, (at, {}))
            lines[sku] = lines.get(sku, 0) + 1
        else:
            model.add_behavior(actor, sku, k, at)
    for at, lines in baskets.values():
        model.apply(basket_increments(lines, at, params))
        for sku, quantity in lines.items():
            model.popularity[sku] += popularity_increment(
                sku, InteractionKind.PURCHASE, quantity, at, params
            )
    return model


async def rebuild_model(uow: UnitOfWork, params: ModelParams) -> dict[str, int]:
    """Recompute the whole model from stored interactions and swap it in one transaction."""
    async with uow:
        await uow.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('rec-rebuild'))"))
        rows = await repo.all_interactions(uow.session)
        model = await asyncio.to_thread(train_from_interactions, rows, params)
        pairs = [
            (kind, a, b, w)
            for kind, table in model.pairs.items()
            for a, row in table.items()
            for b, w in row.items()
        ]
        await repo.replace_model(
            uow.session, dict(model.counts), pairs, dict(model.totals), dict(model.popularity)
        )
        await uow.commit()
    return {"interactions": len(rows), "pairs": len(pairs), "items": len(model.popularity)}
