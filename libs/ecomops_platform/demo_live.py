"""The demo shop's recent days, played live through the public APIs (``ecomops demo seed``):
orders paid, shipped, delivered, returned and cancelled, baskets large enough for a risk
review, and abandoned carts — what the history import cannot give (payments, shipments,
returns, reviews)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .demo_plan import (
    ADDRESSES,
    CURRENCY,
    Plan,
    seeded_random,
)
from .demo_stack import Progress, Stack, gather


@dataclass
class Live:
    n: int
    customer: str
    lines: list[tuple[str, int]]
    coupon: str | None
    fate: str  # unpaid, cancelled, paid, shipped, delivered, returned, review


def live_plan(p: Plan, count: int) -> list[Live]:
    rng = seeded_random(p.seed, "live")
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
    rng = seeded_random(p.seed, "carts")
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
