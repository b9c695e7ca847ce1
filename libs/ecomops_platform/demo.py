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
import math
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from .history_import import (
    Importer,
    ImportFailed,
    Line,
    Order,
    Parsed,
    print_failure,
    service_url,
)

T = TypeVar("T")

CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[int, int], tuple[str, ...]]] = {
    # category: (product nouns, list price range in cents, brands)
    "coffee": (
        ("Espresso beans", "Filter roast", "Decaf blend", "Cold brew pack"),
        (899, 2999),
        ("Moka & Co", "Bean Theory", "Roastwell"),
    ),
    "kitchen": (
        ("Pour-over kettle", "Milk frother", "Grinder", "Ceramic mug", "Scale"),
        (1299, 12999),
        ("Hario", "KitchenPro", "Bodum"),
    ),
    "tea": (
        ("Green tea", "Earl grey", "Chai mix", "Rooibos", "Matcha"),
        (599, 2499),
        ("Leaf & Co", "Teahouse", "Kyoto Leaf"),
    ),
    "bakery": (
        ("Sourdough mix", "Croissant kit", "Cookie dough", "Baking tray"),
        (499, 3999),
        ("Fournil", "Bake Lab"),
    ),
    "outdoor": (
        ("Thermos", "Camping mug", "Travel press", "Picnic set"),
        (1499, 8999),
        ("Trailhead", "Nordwand"),
    ),
    "gifts": (
        ("Gift box", "Tasting set", "Advent calendar", "Gift card holder"),
        (999, 5999),
        ("Giftery", "Moka & Co"),
    ),
    "accessories": (
        ("Filters", "Cleaning tablets", "Tamper", "Knock box", "Descaler"),
        (399, 4999),
        ("Barista Kit", "CleanBrew"),
    ),
    "chocolate": (
        ("Dark bar", "Hot chocolate", "Pralines", "Cocoa nibs"),
        (299, 2499),
        ("Cacao Lab", "Chocolatier"),
    ),
}
WAREHOUSES = (
    ("WH-NORTH", "North fulfilment centre", "eu-north", 1),
    ("WH-SOUTH", "South fulfilment centre", "eu-south", 2),
)
#: Orders per weekday relative to the average (Monday first): busier at the weekend.
WEEKLY = (0.88, 0.84, 0.9, 0.97, 1.1, 1.22, 1.09)
CURRENCY = "EUR"
ADDRESSES = (
    ("Lyon", "69001", "FR"), ("Paris", "75011", "FR"), ("Berlin", "10115", "DE"),
    ("Munich", "80331", "DE"), ("Madrid", "28004", "ES"), ("Milan", "20121", "IT"),
    ("Amsterdam", "1012", "NL"), ("Brussels", "1000", "BE"),
)  # fmt: skip


# --- the plan: everything derived from the seed ------------------------------------------------
@dataclass(frozen=True)
class Sku:
    sku: str
    title: str
    category: str
    brand: str
    price_minor: int
    cost_minor: int
    lead_time_days: int
    popularity: float
    stock: dict[str, int]


@dataclass
class Plan:
    seed: int
    skus: list[Sku]
    customers: list[str]
    history: list[Order]
    now: datetime
    by_category: dict[str, list[Sku]] = field(default_factory=dict)


def _r(seed: int, *salt: object) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(str(s) for s in salt))  # noqa: S311 - demo data


def plan(seed: int, *, skus: int, customers: int, days: int, now: datetime) -> Plan:
    rng = _r(seed, "catalogue")
    catalogue: list[Sku] = []
    names = list(CATEGORIES)
    for n in range(skus):
        category = names[n % len(names)]
        nouns, (low, high), brands = CATEGORIES[category]
        price = int(round(rng.uniform(low, high) / 50) * 50 - 1)
        stock_kind = rng.random()
        if stock_kind < 0.04:  # out of stock everywhere
            stock = {"WH-NORTH": 0, "WH-SOUTH": 0}
        elif stock_kind < 0.14:  # running low
            stock = {"WH-NORTH": rng.randint(1, 6), "WH-SOUTH": 0}
        else:
            stock = {"WH-NORTH": rng.randint(40, 400), "WH-SOUTH": rng.randint(0, 200)}
        catalogue.append(
            Sku(
                sku=f"DEMO-{category[:4].upper()}-{n:04d}",
                title=f"{rng.choice(brands)} {rng.choice(nouns)} {n}",
                category=category,
                brand=rng.choice(brands),
                price_minor=max(price, 199),
                cost_minor=int(max(price, 199) * rng.uniform(0.35, 0.55)),
                lead_time_days=rng.choice((3, 5, 7, 10, 14)),
                # Zipf-like: a few best sellers, a long tail.
                popularity=1.0 / (1 + n % 97) ** 0.9 * rng.uniform(0.6, 1.4),
                stock=stock,
            )
        )
    people = [f"demo-c{n:05d}" for n in range(customers)]
    result = Plan(seed, catalogue, people, [], now)
    for s in catalogue:
        result.by_category.setdefault(s.category, []).append(s)
    result.history = _history(result, days)
    return result


def _history(p: Plan, days: int) -> list[Order]:
    """Orders of the ``days`` days before today. Each day's orders depend only on the seed, the
    shop's size and the date (ids name the date), so a run on a later day makes the same orders
    for the days both runs cover: the import skips them."""
    weights = [s.popularity for s in p.skus]
    # Loyal customers buy often, most buy once or twice.
    loyalty_rng = _r(p.seed, "loyalty", len(p.customers))
    loyalty = list(itertools.accumulate(loyalty_rng.paretovariate(1.6) for _ in p.customers))
    cum_weights = list(itertools.accumulate(weights))
    per_day = max(1.0, len(p.customers) * 1.6 / 90)
    # Every digit run is cut by a letter: the platform refuses runs that read as card numbers.
    shop = f"demo-s{p.seed}c{len(p.customers)}k{len(p.skus)}"
    orders: list[Order] = []
    for back in range(days, 0, -1):
        day = (p.now - timedelta(days=back)).date()
        rng = _r(p.seed, "history", len(p.customers), len(p.skus), day.isoformat())
        # A slow upward trend (one year period) and the week's rhythm.
        trend = 1.0 + 0.15 * math.sin(2 * math.pi * day.toordinal() / 365)
        expected = per_day * WEEKLY[day.weekday()] * trend
        count = max(0, int(rng.gauss(expected, math.sqrt(expected))))
        for i in range(count):
            customer = rng.choices(p.customers, cum_weights=loyalty)[0]
            when = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=int(rng.triangular(7 * 3600, 23.5 * 3600, 20 * 3600))
            )
            first = rng.choices(p.skus, cum_weights=cum_weights)[0]
            basket = {first.sku: first}
            while rng.random() < 0.55 and len(basket) < 6:
                # Related items: mostly the same category, sometimes anything.
                pool = p.by_category[first.category] if rng.random() < 0.7 else p.skus
                extra = rng.choice(pool)
                basket[extra.sku] = extra
            row = len(orders) + 2
            order = Order(
                order_id=f"{shop}-d{day:%Y%m%d}n{i:04d}",
                customer_id=customer,
                currency=CURRENCY,
                ordered_at=when,
                ordered_at_text=when.isoformat(),
                row=row,
            )
            for s in basket.values():
                quantity = 1 if rng.random() < 0.75 else rng.randint(2, 4)
                order.lines.append(Line(s.sku, quantity, s.price_minor, [row]))
            if when < p.now - timedelta(minutes=10):
                orders.append(order)
    return orders


# --- talking to the stack ----------------------------------------------------------------------
class DemoError(Exception):
    pass


class Stack:
    def __init__(self, client: httpx.AsyncClient, seed: int, concurrency: int = 12) -> None:
        self.client = client
        self.seed = seed
        self.url = {
            s: service_url(s) for s in ("order", "inventory", "pricing", "recommendation", "risk")
        }
        self.limit = asyncio.Semaphore(concurrency)
        secret = os.environ.get("ECOMOPS_JWT_SECRET")
        if not secret:
            raise DemoError(
                "ECOMOPS_JWT_SECRET is not set and no local stack env was found (.local/run/env):"
                " start the stack with 'make run' first"
            )
        self.secret = secret
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, subject: str, role: str) -> dict[str, str]:
        key = (subject, role)
        if key not in self._tokens:
            from .auth import mint_token

            self._tokens[key] = mint_token(
                self.secret,
                subject,
                role,
                ttl_seconds=3600,
                issuer=os.environ.get("ECOMOPS_JWT_ISSUER", "ecomops"),
                audience=os.environ.get("ECOMOPS_JWT_AUDIENCE", "ecomops"),
            )
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-demo", "ops")

    def key(self, *parts: object) -> dict[str, str]:
        """An Idempotency-Key derived from the seed. Parts are joined with "_": digits joined
        with "-" could read as a card number, which every service refuses."""
        return {"Idempotency-Key": "demo_" + "_".join(str(p) for p in (self.seed, *parts))}

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok: Iterable[int] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """One request; 429/503 and transport errors are retried (every write here is
        idempotent: PUTs, Idempotency-Keys, or moves guarded by the current status)."""
        delay = 0.2
        for attempt in range(6):
            try:
                async with self.limit:
                    resp = await self.client.request(
                        method,
                        self.url[service] + path,
                        headers=headers or self.ops,
                        json=json,
                        params=params,
                    )
            except httpx.TransportError as exc:
                if attempt == 5:
                    raise DemoError(
                        f"{service} at {self.url[service]} unreachable: {exc}"
                    ) from None
            else:
                if resp.status_code not in (429, 502, 503, 504) or attempt == 5:
                    if resp.status_code not in ok:
                        raise DemoError(
                            f"{method} {service}{path}: {resp.status_code} {resp.text[:300]}"
                        )
                    return resp
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def ready(self) -> None:
        for service, url in self.url.items():
            try:
                resp = await self.client.get(url + "/readyz", timeout=5)
            except httpx.TransportError:
                raise DemoError(
                    f"{service} is not running at {url}: start the stack with 'make run'"
                ) from None
            if resp.status_code != 200:
                raise DemoError(f"{service} at {url} is not ready ({resp.status_code})")


async def gather(items: Iterable[T], fn: Callable[[T], Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*(fn(i) for i in items)))


# --- the steps ----------------------------------------------------------------------------------
class Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.perf_counter()
        self.facts: list[str] = []

    def step(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {text}", flush=True)

    def note(self, text: str) -> None:
        self.facts.append(text)
        self.step(text)


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
    rng = _r(p.seed, "competitors")

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
        rng = _r(p.seed, "behaviour", len(p.customers), len(p.skus), day.isoformat())
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


@dataclass
class Live:
    n: int
    customer: str
    lines: list[tuple[str, int]]
    coupon: str | None
    fate: str  # unpaid, cancelled, paid, shipped, delivered, returned, review


def live_plan(p: Plan, count: int) -> list[Live]:
    rng = _r(p.seed, "live")
    in_stock = [s for s in p.skus if s.stock["WH-NORTH"] + s.stock["WH-SOUTH"] > 20]
    weights = [s.popularity for s in in_stock]
    fates = (("unpaid", 0.06), ("cancelled", 0.05), ("paid", 0.17), ("shipped", 0.2),
             ("delivered", 0.42), ("returned", 0.1))  # fmt: skip
    out: list[Live] = []
    for n in range(count):
        first = rng.choices(in_stock, weights=weights)[0]
        lines = {first.sku: 1}
        if rng.random() < 0.4:
            lines[rng.choice(in_stock).sku] = rng.randint(1, 2)
        coupon = rng.choice((None, None, None, "WELCOME10", "SAVE5"))
        fate = rng.choices([f for f, _ in fates], weights=[w for _, w in fates])[0]
        out.append(Live(n, f"demo-live{p.seed}-{n:04d}", list(lines.items()), coupon, fate))
    # Large baskets of new customers: the default rules send them to review.
    big = sorted(in_stock, key=lambda s: -s.price_minor)[:3]
    for k in range(max(2, count // 25)):
        sku = big[k % len(big)]
        units = min(20, max(2, 60000 // sku.price_minor + 1))
        out.append(Live(count + k, f"demo-big{p.seed}-{k:03d}", [(sku.sku, units)], None, "review"))
    return out


async def review_trigger(st: Stack) -> str:
    """How to send an order to review under the active rules: "basket" (a large first order,
    the default rules' new_account_large_basket alone lands between the thresholds),
    "blocklist" (a blocklisted device does), or "" (neither does)."""
    rules = (await st.call("GET", "risk", "/v1/rules")).json()
    review, reject = float(rules["review_threshold"]), float(rules["reject_threshold"])
    active = {r["type"]: float(r["weight"]) for r in rules["rules"] if not r.get("shadow")}
    for kind, rule in (("basket", "new_account_large_basket"), ("blocklist", "blocklist")):
        if rule in active and review <= active[rule] < reject:
            return kind
    return ""


async def seed_live(st: Stack, p: Plan, out: Progress, count: int) -> None:
    orders = live_plan(p, count)
    trigger = await review_trigger(st)
    if trigger == "blocklist":
        for o in orders:
            if o.fate == "review":
                await st.call(
                    "PUT",
                    "risk",
                    f"/v1/blocklist/device/dev-{o.customer}",
                    json={"reason": "demo: device seen in a chargeback"},
                )
    outcome: dict[str, int] = {}
    reviews: list[str] = []

    def tally(what: str) -> None:
        outcome[what] = outcome.get(what, 0) + 1

    decided = 0

    async def decide(order_id: str, decision: str) -> None:
        nonlocal decided
        view = (await st.call("GET", "order", f"/v1/orders/{order_id}")).json()
        assessment_id = (view.get("risk") or {}).get("assessment_id")
        if not assessment_id:
            return
        assessment = (await st.call("GET", "risk", f"/v1/assessments/{assessment_id}")).json()
        if assessment.get("review_id"):
            await st.call(
                "POST",
                "risk",
                f"/v1/reviews/{assessment['review_id']}/decision",
                json={"decision": decision, "note": "demo seed"},
                ok=(200, 409),
            )
            decided += 1

    async def one(o: Live) -> None:
        buyer = st.token(o.customer, "customer")
        city, postal, country = ADDRESSES[o.n % len(ADDRESSES)]
        body: dict[str, Any] = {
            "currency": CURRENCY,
            "lines": [{"sku": s, "quantity": q} for s, q in o.lines],
            "shipping_address": {
                "name": f"Demo customer {o.n}",
                "line1": f"{o.n + 1} Market Street",
                "city": city,
                "postal_code": postal,
                "country": country,
            },
            "client": {
                "ip": f"10.77.{o.n // 250}.{o.n % 250 + 1}",
                "device_id": f"dev-{o.customer}",
            },
            "email": f"{o.customer}@example.com",
        }
        if o.coupon:
            body["coupon_codes"] = [o.coupon]
        resp = await st.call(
            "POST",
            "order",
            "/v1/orders",
            json=body,
            headers={**buyer, **st.key("order", o.n)},
            ok=(200, 201, 409, 422),
        )
        if resp.status_code in (409, 422):
            tally("refused at checkout (stock or coupon)")
            return
        order_id = resp.json()["order_id"]
        status = (await st.call("GET", "order", f"/v1/orders/{order_id}")).json()["status"]
        if o.fate == "review":
            if status == "in_review":
                reviews.append(order_id)
                if len(reviews) <= 2:  # decide two from the risk API, leave the rest queued
                    await decide(order_id, "approve" if len(reviews) == 1 else "reject")
            tally(f"large basket {status}")
            return
        if o.fate == "cancelled" and status in ("awaiting_payment", "in_review"):
            await st.call(
                "POST",
                "order",
                f"/v1/orders/{order_id}/cancel",
                json={"reason": "customer changed their mind"},
                headers=buyer,
            )
            tally("cancelled")
            return
        if o.fate == "unpaid" or status in ("rejected", "cancelled"):
            tally(status)
            return
        if status == "awaiting_payment":
            await st.call(
                "POST",
                "order",
                f"/v1/orders/{order_id}/payments",
                json={"payment_token": f"tok_ok_demo{o.n}"},
                headers={**buyer, **st.key("pay", o.n)},
                ok=(200, 201, 402),
            )
            status = "paid"
        if o.fate in ("shipped", "delivered", "returned") and status == "paid":
            await st.call(
                "POST",
                "order",
                f"/v1/orders/{order_id}/shipments",
                json={"carrier": "DemoPost", "tracking_number": f"DP{p.seed}{o.n:06d}"},
                headers={**st.ops, **st.key("ship", o.n)},
            )
            status = "shipped"
        if o.fate in ("delivered", "returned") and status == "shipped":
            await st.call("POST", "order", f"/v1/orders/{order_id}/delivery")
            status = "delivered"
        if o.fate == "returned" and status == "delivered":
            sku, _ = o.lines[0]
            rma = (
                await st.call(
                    "POST",
                    "order",
                    f"/v1/orders/{order_id}/returns",
                    json={"lines": [{"sku": sku, "quantity": 1}], "reason": "not as described"},
                    headers={**buyer, **st.key("return", o.n)},
                )
            ).json()
            # (a replayed request answers as it was then: read where the return is now)
            rma = (await st.call("GET", "order", f"/v1/returns/{rma['return_id']}")).json()
            if rma["status"] == "requested" and o.n % 3:
                rma = (
                    await st.call("POST", "order", f"/v1/returns/{rma['return_id']}/approve")
                ).json()
            if rma["status"] == "approved" and o.n % 2:
                await st.call(
                    "POST",
                    "order",
                    f"/v1/returns/{rma['return_id']}/receive",
                    json={"lines": [{"sku": sku, "quantity": 1, "resellable": True}]},
                )
            status = "returned"
        tally(status)

    await gather(orders, one)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(outcome.items()))
    out.note(f"live orders: {summary}; {len(reviews)} sent to risk review, {decided} decided")


async def seed_carts(st: Stack, p: Plan, out: Progress, count: int) -> None:
    rng = _r(p.seed, "carts")
    in_stock = [s for s in p.skus if s.stock["WH-NORTH"] > 20]

    async def cart(n: int) -> None:
        who = st.token(f"demo-cart{p.seed}-{n:03d}", "customer")
        made = await st.call(
            "POST",
            "order",
            "/v1/carts",
            json={"currency": CURRENCY},
            headers={**who, **st.key("cart", n)},
        )
        cart_id = made.json()["cart_id"]
        if made.json().get("lines"):
            return
        sku = rng.choice(in_stock).sku
        await st.call(
            "PUT",
            "order",
            f"/v1/carts/{cart_id}/items/{sku}",
            json={"quantity": 1},
            headers=who,
        )

    await gather(range(count), cart)
    out.note(f"carts: {count} left with items (cart abandonment)")


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
