"""``ecomops demo seed`` (``make demo``): a believable shop in a running local stack.

Everything goes through the services' public REST APIs, as an operator and as customers would
(tokens minted with the local stack's secret), and the order history through the history import:

1. two warehouses; SKUs in categories (title, brand, lead time), stocked in both warehouses with
   a few running low or out; list prices and unit costs;
2. promotions, two of them with coupon codes; competitor prices for some SKUs;
3. ``--days`` of order history for ``--customers`` customers with weekly seasonality (busier
   weekends, a slow upward trend), popular and slow SKUs, baskets of related items and loyal
   and one-off customers — through ``POST /v1/order-imports``, which inventory (demand, ABC) and
   recommendation (co-purchases, RFM) learn from;
4. live traffic for the recent days: storefront behaviour (views, carts), orders placed with and
   without coupons, paid, shipped, delivered, a few returned (requested, approved, received), a
   few cancelled, some left awaiting payment, abandoned carts, and large baskets that risk sends
   to review, some decided from the risk API and some left in the queue.

Deterministic for a ``--seed`` (ids, baskets, quantities, prices). Running it again adds nothing
broken: catalogue and prices are PUTs, stock is topped up to its target, promotions are created
only when missing, imported orders are stored once per id, live requests carry Idempotency-Keys
derived from the seed and each live order moves on from the status it has now.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .demo_live import seed_carts, seed_live
from .demo_plan import (
    CATEGORIES,
    CURRENCY,
    WAREHOUSES,
    Plan,
    Sku,
    plan,
    seeded_random,
)
from .demo_stack import DemoError, Progress, Stack, gather
from .history_import import (
    Importer,
    ImportFailed,
    Order,
    Parsed,
    print_failure,
)


async def seed_catalogue(st: Stack, p: Plan, out: Progress) -> None:
    """Warehouses, then per SKU (all SKUs at once, within the client's concurrency): the SKU,
    its stock topped up to the plan's target in each warehouse, its price and cost."""
    for code, name, region, priority in WAREHOUSES:
        await st.call(
            "PUT",
            "inventory",
            f"/v1/warehouses/{code}",
            json={"name": name, "region": region, "priority": priority},
            headers={**st.ops, **st.key("wh", code)},
        )
    receipts = 0
    known: dict[str, tuple[Any, ...]] = {}
    for category in CATEGORIES:  # what an earlier run stored: unchanged SKUs are not re-sent
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"category": category, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = (await st.call("GET", "inventory", "/v1/skus", params=params)).json()
            for item in page["items"]:
                known[item["sku"]] = tuple(
                    item[k] for k in ("title", "category", "brand", "status", "lead_time_days")
                )
            cursor = page.get("next_cursor")
            if not cursor:
                break

    async def one(s: Sku) -> None:
        nonlocal receipts
        if known.get(s.sku) != (s.title, s.category, s.brand, "active", s.lead_time_days):
            await st.call(
                "PUT",
                "inventory",
                f"/v1/skus/{s.sku}",
                json={
                    "title": s.title,
                    "category": s.category,
                    "brand": s.brand,
                    "status": "active",
                    "lead_time_days": s.lead_time_days,
                },
                headers={**st.ops, **st.key("sku", s.sku)},
            )
        level = (await st.call("GET", "inventory", f"/v1/stock/{s.sku}")).json()
        have = {w["warehouse"]: int(w["on_hand"]) for w in level.get("warehouses", [])}
        for wh, target in s.stock.items():
            delta = target - have.get(wh, 0)
            if delta > 0:
                await st.call(
                    "POST",
                    "inventory",
                    "/v1/stock/adjustments",
                    json={
                        "sku": s.sku,
                        "warehouse": wh,
                        "delta": delta,
                        "reason": "receipt",
                        "reference": f"demo-po-{s.sku}-{wh}",
                    },
                    headers={**st.ops, **st.key("receipt", s.sku, wh, target - delta)},
                )
                receipts += 1
        deadline = time.monotonic() + 60
        body = {
            "currency": CURRENCY,
            "list_price_minor": s.price_minor,
            "unit_cost_minor": s.cost_minor,
        }
        while True:  # pricing learns SKUs from inventory's events: wait until it knows this one
            resp = await st.call(
                "PUT", "pricing", f"/v1/prices/{s.sku}", json=body, ok=(200, 201, 422)
            )
            if resp.status_code != 422:
                return
            if not resp.json().get("type", "").endswith("/unknown-sku"):
                raise DemoError(f"price of {s.sku}: {resp.text[:300]}")
            if time.monotonic() > deadline:
                raise DemoError(f"pricing never learnt SKU {s.sku} (is the relay running?)")
            await asyncio.sleep(0.3)

    await gather(p.skus, one)
    units = sum(sum(s.stock.values()) for s in p.skus)
    out.note(
        f"catalogue: {len(WAREHOUSES)} warehouses, {len(p.skus)} SKUs in {len(CATEGORIES)} "
        f"categories with prices and costs in {CURRENCY}; {units} units of stock "
        f"({receipts} receipts posted now)"
    )


#: (name, kind, value, extra fields, coupon code); scoped to the demo's categories.
PROMOTIONS: tuple[tuple[str, str, Any, dict[str, Any], str | None], ...] = (
    ("Demo: coffee week", "percent", "0.15", {"scope": {"categories": ["coffee"]}}, None),
    ("Demo: welcome coupon", "percent", "0.10", {"per_customer_limit": 1}, "WELCOME10"),
    ("Demo: 5% off from 40 EUR", "percent", "0.05",
     {"min_subtotal_minor": 4000, "currency": CURRENCY}, "SAVE5"),
)  # fmt: skip


async def seed_promotions(st: Stack, p: Plan, out: Progress) -> None:
    names: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await st.call("GET", "pricing", "/v1/promotions", params=params)).json()
        names |= {item["name"] for item in page.get("items", [])}
        cursor = page.get("next_cursor")
        if not cursor:
            break
    created = 0
    for name, kind, value, extra, coupon in PROMOTIONS:
        if name in names:
            continue
        body = {
            "name": name,
            "kind": kind,
            "value": value,
            "scope": {"categories": list(CATEGORIES)},
            "starts_at": (p.now - timedelta(days=14)).isoformat(),
            "ends_at": (p.now + timedelta(days=30)).isoformat(),
            **({"coupon_code": coupon} if coupon else {}),
            **extra,
        }
        resp = await st.call(
            "POST",
            "pricing",
            "/v1/promotions",
            json=body,
            headers={**st.ops, **st.key("promo", name, p.now.date())},
            ok=(200, 201, 409),
        )
        created += resp.status_code in (200, 201)
    rng = seeded_random(p.seed, "competitors")

    async def competitor(s: Sku) -> None:
        factor = rng.uniform(0.85, 1.1)
        await st.call(
            "PUT",
            "pricing",
            f"/v1/competitor-prices/{s.sku}",
            json={
                "competitor": rng.choice(("shop-a", "shop-b")),
                "currency": CURRENCY,
                "price_minor": max(1, int(s.price_minor * factor)),
                "observed_at": (p.now - timedelta(hours=2)).isoformat(),
            },
        )

    watched = p.skus[:: max(1, len(p.skus) // 40)]
    await gather(watched, competitor)
    out.note(
        f"promotions: {created} created ({len(PROMOTIONS) - created} already there), coupons "
        f"WELCOME10 and SAVE5; competitor prices for {len(watched)} SKUs"
    )


def import_history(st: Stack, p: Plan, out: Progress) -> None:
    rows = sum(len(o.lines) for o in p.history)
    if not p.history:
        out.note("history: no orders to import")
        return
    with httpx.Client(timeout=120) as client:
        importer = Importer(
            client,
            st.url["order"],
            st.token("ops-demo", "ops")["Authorization"].split(" ", 1)[1],
            name="demo history",
            progress=lambda text: None,
        )
        out.step(f"history: importing {len(p.history)} orders ({rows} lines)")
        outcome = importer.run(Parsed(p.history, rows))
    out.note(
        f"history: {outcome.orders} orders ({rows} lines) over the past days: "
        f"{outcome.imported} imported, {outcome.already} already there "
        f"({outcome.rows_per_second:.0f} rows/s)"
    )


#: Days of storefront behaviour before today (recommendation keeps events up to 30 days old).
BEHAVIOUR_DAYS = 7


def behaviour_plan(p: Plan, browsing_per_day: int) -> dict[str, list[dict[str, Any]]]:
    """Storefront events per day (ISO date) for the days before today: the visit behind each
    history order of that day (views, then add-to-carts of its lines, minutes before it), and
    browsing visits that bought nothing (three per order, plus ``browsing_per_day``). A day's
    events depend only on the seed, the sizes and the date."""
    weights = list(itertools.accumulate(s.popularity for s in p.skus))
    by_day: dict[str, list[Order]] = {}
    for order in p.history:
        by_day.setdefault(order.ordered_at.date().isoformat(), []).append(order)
    plan_: dict[str, list[dict[str, Any]]] = {}
    for back in range(BEHAVIOUR_DAYS, 0, -1):
        day = (p.now - timedelta(days=back)).date()
        rng = seeded_random(p.seed, "behaviour", len(p.customers), len(p.skus), day.isoformat())
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        events: list[dict[str, Any]] = []

        def event(
            kind: str,
            sku: str,
            at: datetime,
            who: dict[str, str],
            events: list[dict[str, Any]] = events,
        ) -> None:
            events.append({"type": kind, "sku": sku, "occurred_at": at.isoformat(), **who})

        orders = by_day.get(day.isoformat(), [])
        for order in orders:
            who = {"customer_id": order.customer_id}
            at = order.ordered_at - timedelta(minutes=rng.uniform(8, 40))
            for i, line in enumerate(order.lines):
                event("view", line.sku, at + timedelta(seconds=50 * i), who)
                event("add_to_cart", line.sku, at + timedelta(seconds=50 * i + 30), who)
        for n in range(3 * len(orders) + browsing_per_day):
            who = (
                {"customer_id": rng.choice(p.customers)}
                if rng.random() < 0.5
                else {"session_id": f"demo-v{p.seed}-{day:%Y%m%d}x{n}"}
            )
            at = start + timedelta(seconds=int(rng.triangular(7 * 3600, 23.5 * 3600, 20 * 3600)))
            first = rng.choices(p.skus, cum_weights=weights)[0]
            pool = p.by_category[first.category]
            for i, s in enumerate([first, *rng.sample(pool, k=min(2, len(pool)))]):
                if i and rng.random() < 0.5:
                    break
                event("view", s.sku, at + timedelta(seconds=45 * i), who)
                if rng.random() < 0.12:
                    event("add_to_cart", s.sku, at + timedelta(seconds=45 * i + 20), who)
        plan_[day.isoformat()] = events
    return plan_


async def seed_behaviour(st: Stack, p: Plan, out: Progress, browsing_per_day: int) -> None:
    per_day = behaviour_plan(p, browsing_per_day)
    batches = [
        (day, n // 100, events[n : n + 100])
        for day, events in per_day.items()
        for n in range(0, len(events), 100)
    ]

    async def send(batch: tuple[str, int, list[dict[str, Any]]]) -> None:
        day, n, events = batch
        # A day's batches are the same on every run that day: a re-run replays them.
        await st.call(
            "POST",
            "recommendation",
            "/v1/behavior-events",
            json={"events": events},
            headers={**st.ops, **st.key("behaviour", len(p.customers), len(p.skus), day, n)},
        )

    await gather(batches, send)
    total = sum(len(e) for e in per_day.values())
    views = sum(1 for e in per_day.values() for x in e if x["type"] == "view")
    out.note(
        f"behaviour: {total} storefront events over {BEHAVIOUR_DAYS} days "
        f"({views} views, {total - views} add-to-carts)"
    )


async def show_kpis(st: Stack, out: Progress) -> None:
    checks = (
        ("order", "/v1/orders/kpis"),
        ("inventory", "/v1/inventory/kpis"),
        ("risk", "/v1/risk/kpis"),
        ("recommendation", "/v1/funnel"),
        ("recommendation", "/v1/segments"),
        ("pricing", "/v1/pricing/suggestions"),
    )
    for service, path in checks:
        resp = await st.call("GET", service, path, ok=(200,))
        body = resp.json()
        brief = (
            {k: v for k, v in body.items() if not isinstance(v, list | dict)}
            if isinstance(body, dict)
            else body
        )
        out.step(f"  {service} {path}: {str(brief)[:150]}")


async def seed(args: Any) -> Progress:
    out = Progress(args.quiet)
    now = datetime.now(UTC).replace(microsecond=0)
    p = plan(args.seed, skus=args.skus, customers=args.customers, days=args.days, now=now)
    out.step(
        f"demo shop, seed {args.seed}: {len(p.skus)} SKUs, {len(p.customers)} customers, "
        f"{len(p.history)} historical orders over {args.days} days"
    )
    async with httpx.AsyncClient(timeout=60) as client:
        st = Stack(client, args.seed)
        await st.ready()
        await seed_catalogue(st, p, out)
        # The history import (its own thread, one request at a time) runs beside the live
        # traffic, which needs the promotions' coupons.
        history = asyncio.create_task(asyncio.to_thread(import_history, st, p, out))
        try:
            await seed_promotions(st, p, out)
            await seed_behaviour(st, p, out, browsing_per_day=max(5, args.live_orders // 2))
            await seed_live(st, p, out, args.live_orders)
            await seed_carts(st, p, out, max(3, args.live_orders // 8))
        finally:
            await history
        out.step("KPIs now (inventory and recommendation keep learning the history for a while):")
        await show_kpis(st, out)
    out.step("done")
    return out


def main(args: Any) -> int:
    for name in ("days", "customers", "skus"):
        if getattr(args, name) < 1:
            print(f"--{name} must be at least 1", file=sys.stderr)
            return 2
    try:
        asyncio.run(seed(args))
    except ImportFailed as exc:
        print_failure(exc)
        return 1
    except DemoError as exc:
        print(f"demo seed stopped: {exc}", file=sys.stderr)
        return 1
    return 0
