"""The demo shop's plan (``ecomops demo seed``): every SKU, customer and past order derived
from the seed alone, so that two runs with the same seed build the same shop and a run on
another day agrees on the days both cover. Pure: nothing here talks to the stack (demo.py)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .history_import import Line, Order

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


def seeded_random(seed: int, *salt: object) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(str(s) for s in salt))  # noqa: S311 - demo data


def plan(seed: int, *, skus: int, customers: int, days: int, now: datetime) -> Plan:
    rng = seeded_random(seed, "catalogue")
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
    loyalty_rng = seeded_random(p.seed, "loyalty", len(p.customers))
    loyalty = list(itertools.accumulate(loyalty_rng.paretovariate(1.6) for _ in p.customers))
    cum_weights = list(itertools.accumulate(weights))
    per_day = max(1.0, len(p.customers) * 1.6 / 90)
    # Every digit run is cut by a letter: the platform refuses runs that read as card numbers.
    shop = f"demo-s{p.seed}c{len(p.customers)}k{len(p.skus)}"
    orders: list[Order] = []
    for back in range(days, 0, -1):
        day = (p.now - timedelta(days=back)).date()
        rng = seeded_random(p.seed, "history", len(p.customers), len(p.skus), day.isoformat())
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
