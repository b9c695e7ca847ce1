"""The operations journey on the real services: a stock receipt, price and promotion changes
against the margin floor (422 under it, accepted with an override and a reason), a risk review
resolved both ways through the risk API (the order continues / is cancelled), and the KPIs of
every service consistent with what the journey did.

Other suites may share the stack, so service-wide KPIs are compared as deltas (at least what this
journey did); figures that can be scoped to the journey (its own category, SKU) must be exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from proof_fixtures import customer, idem, new_id, ops, wait_until

pytestmark = pytest.mark.integration


def _eur(rows: list[dict[str, Any]]) -> int:
    return sum(r["amount_minor"] for r in rows if r["currency"] == "EUR")


async def _get(http: Any, url: str, **params: Any) -> Any:
    resp = await http.get(url, params=params, headers=ops())
    assert resp.status_code == 200, f"{url}: {resp.status_code} {resp.text[:300]}"
    return resp.json()


async def _kpis(shop: Any, window: dict[str, str]) -> dict[str, Any]:
    http = shop.client
    today = datetime.now(UTC).date()
    return {
        "order": await _get(http, shop.url("order", "/v1/orders/kpis"), **window),
        "risk": await _get(http, shop.url("risk", "/v1/risk/kpis"), **window),
        "inventory": await _get(
            http,
            shop.url("inventory", "/v1/inventory/kpis"),
            **{"from": str(today), "to": str(today + timedelta(days=1))},
        ),
    }


async def test_operations_journey(shop: Any, kafka: Any, journey_rules: Any) -> None:
    http = shop.client
    shop.stack.require("recommendation")
    start = datetime.now(UTC)
    window = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    before = await _kpis(shop, window)
    category = new_id("ops-cat")
    sku = new_id("sku-ops")
    await shop.seed_sku(sku, units=0, price_minor=2000, cost_minor=800, category=category)

    # Stock receipt: on hand, ledger and events.
    entry = await shop.receive(sku, 6)
    assert entry["delta"] == 6 and entry["reason"] == "receipt", entry
    stock = await shop.stock(sku)
    assert (stock["on_hand"], stock["available"]) == (6, 6), stock
    ledger = await _get(http, shop.url("inventory", f"/v1/stock/{sku}/ledger"))
    assert [(e["delta"], e["reason"]) for e in ledger["items"]] == [(6, "receipt")]
    await kafka.wait_for("StockAdjusted", lambda e: e.message.sku == sku)
    await kafka.wait_for("StockLevelChanged", lambda e: e.message.sku == sku)

    # Price under the margin floor (0.30 by default): refused, then accepted with a reason.
    price_url = shop.url("pricing", f"/v1/prices/{sku}")
    cheap = {"currency": "EUR", "list_price_minor": 1000, "unit_cost_minor": 800}
    refused = await http.put(price_url, json=cheap, headers=ops())
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("margin-below-floor"), refused.text
    override = {**cheap, "allow_below_floor": True, "reason": "clearance, approved by ops"}
    accepted = await http.put(price_url, json=override, headers=ops())
    assert accepted.status_code in (200, 201), accepted.text
    await kafka.wait_for(
        "PriceChanged", lambda e: e.key == sku or getattr(e.message, "sku", "") == sku, count=2
    )
    restore = {"currency": "EUR", "list_price_minor": 2000, "unit_cost_minor": 800}
    assert (await http.put(price_url, json=restore, headers=ops())).status_code in (200, 201)
    history = await _get(http, price_url + "/history", currency="EUR")
    rows = [(h["list_price_minor"], h["below_floor"], h["reason"]) for h in history["changes"]]
    assert rows[:2] == [(2000, False, rows[0][2]), (1000, True, "clearance, approved by ops")]
    assert history["lowest_price_30d_minor"] == 1000, history

    # A promotion selling under the floor: refused, accepted with a reason; quotes apply it.
    promo = {
        "name": f"proof half price {sku}",
        "kind": "percent",
        "value": "0.5",
        "scope": {"skus": [sku]},
        "starts_at": (start - timedelta(minutes=1)).isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    }
    promo_url = shop.url("pricing", "/v1/promotions")
    refused = await http.post(promo_url, json=promo, headers={**ops(), **idem()})
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("margin-below-floor"), refused.text
    created = await http.post(
        promo_url,
        json={**promo, "allow_below_floor": True, "reason": "launch week"},
        headers={**ops(), **idem()},
    )
    assert created.status_code == 201, created.text
    promotion_id = created.json()["promotion_id"]
    await kafka.wait_for("PromotionChanged", lambda e: e.message.promotion_id == promotion_id)
    quoter = new_id("quote-cust")
    quote = await http.post(
        shop.url("pricing", "/v1/quotes"),
        json={"currency": "EUR", "lines": [{"sku": sku, "quantity": 1}]},
        headers={**customer(quoter), **idem()},
    )
    assert quote.status_code == 201, quote.text
    assert (quote.json()["subtotal_minor"], quote.json()["total_minor"]) == (2000, 1000)
    gone = await http.delete(f"{promo_url}/{promotion_id}", headers=ops())
    assert gone.status_code in (200, 204), gone.text

    # Three buyers: one approved at once, two blocklisted devices sent to review.
    c_ok, c_yes, c_no = new_id("ops-ok"), new_id("ops-yes"), new_id("ops-no")
    for cid in (c_yes, c_no):
        r = await http.put(
            shop.url("risk", f"/v1/blocklist/device/dev-{cid}"),
            json={"reason": "proof journey"},
            headers=ops(),
        )
        assert r.status_code in (200, 201), r.text
    placed: dict[str, dict[str, Any]] = {}
    for cid, qty in ((c_ok, 2), (c_yes, 1), (c_no, 1)):
        resp = await shop.place_order(cid, [(sku, qty)])
        assert resp.status_code == 201, resp.text
        placed[cid] = resp.json()
    assert placed[c_ok]["status"] == "awaiting_payment"
    assert placed[c_yes]["status"] == placed[c_no]["status"] == "in_review"
    assert (await shop.stock(sku))["reserved"] == 4  # review orders hold their stock too
    await shop.pay(c_ok, placed[c_ok]["order_id"])

    async def decide(cid: str, decision: str) -> None:
        oid = placed[cid]["order_id"]
        assessed = (await kafka.wait_for("RiskAssessed", lambda e: e.key == oid))[0]
        assert assessed.message.decision == "review"
        assessment = await _get(
            http, shop.url("risk", f"/v1/assessments/{assessed.message.assessment_id}")
        )
        review_id = assessment["review_id"]
        assert review_id, assessment
        r = await http.post(
            shop.url("risk", f"/v1/reviews/{review_id}/decision"),
            json={"decision": decision, "note": "proof journey"},
            headers=ops(),
        )
        assert r.status_code == 200, r.text
        again = await http.post(
            shop.url("risk", f"/v1/reviews/{review_id}/decision"),
            json={"decision": "approve", "note": "second thoughts"},
            headers=ops(),
        )
        assert again.status_code == 409, again.text
        await kafka.wait_for("RiskReviewResolved", lambda e: e.key == oid)

    await decide(c_yes, "approve")
    await decide(c_no, "reject")
    yes_id, no_id = placed[c_yes]["order_id"], placed[c_no]["order_id"]

    async def resolved() -> None:
        yes = await shop.order(yes_id)
        no = await shop.order(no_id)
        assert yes["status"] == "awaiting_payment" and yes["payment_due_at"], yes["status"]
        assert no["status"] == "cancelled", no["status"]
        assert no["timeline"][-1]["actor"].startswith("risk:"), no["timeline"]

    await wait_until(resolved, timeout=30, interval=0.5)
    cancelled = (await kafka.wait_for("OrderCancelled", lambda e: e.key == no_id))[0]
    assert cancelled.message.reason == "risk_rejected"
    await shop.pay(c_yes, yes_id)

    async def settled() -> None:
        s = await shop.stock(sku)
        assert (s["on_hand"], s["reserved"], s["available"]) == (3, 0, 3), s

    await wait_until(settled, timeout=30, interval=0.5)

    # KPIs: service-wide deltas cover the journey; the journey's own category/SKU are exact.
    async def kpis_follow() -> None:
        after = await _kpis(shop, window)
        o0, o1 = before["order"], after["order"]
        assert o1["orders"] - o0["orders"] >= 3, (o0, o1)
        assert o1["paid_orders"] - o0["paid_orders"] >= 2, (o0, o1)
        assert _eur(o1["gmv"]) - _eur(o0["gmv"]) >= 4000 + 2000, (o0, o1)
        r0, r1 = before["risk"], after["risk"]
        assert r1["assessments"] - r0["assessments"] >= 3, (r0, r1)
        i0, i1 = before["inventory"], after["inventory"]
        assert i1["units_sold"] - i0["units_sold"] >= 3, (i0, i1)
        funnel = await _get(http, shop.url("recommendation", "/v1/funnel"), category=category)
        assert (funnel["orders"], funnel["paid"]) == (3, 2), funnel
        abc = await _get(http, shop.url("inventory", "/v1/inventory/abc"), currency="EUR")
        mine = [i for i in abc["items"] if i["sku"] == sku]
        assert mine and mine[0]["revenue_minor"] == 6000, mine

    await wait_until(kpis_follow, timeout=40, interval=1.0)

    # Pricing's view of the SKU (its suggestions) follows inventory's stock and the sales.
    async def pricing_follows() -> None:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = await _get(http, shop.url("pricing", "/v1/pricing/suggestions"), **params)
            found += [i for i in page["items"] if i["sku"] == sku and i["currency"] == "EUR"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert len(found) == 1, found
        mine = found[0]
        assert mine["current_price_minor"] == 2000, mine
        assert mine["stock_available"] == 3, mine
        assert float(mine["velocity_per_day"]) > 0, mine

    await wait_until(pricing_follows, timeout=40, interval=1.0)
