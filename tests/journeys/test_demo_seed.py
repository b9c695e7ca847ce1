"""``ecomops demo seed`` (the command, as a process) with small numbers against the services
started as processes: afterwards every service's KPI endpoint has data, the demo's own shop is
visible in them (its categories' funnel, its SKUs in ABC and pricing's suggestions, its customers'
segments), and a second run succeeds and adds no second history."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from typing import Any

import harness
import pytest
from proof_fixtures import ops, wait_until

from ecomops_platform.demo import plan

pytestmark = pytest.mark.integration

ARGS = {"skus": 24, "customers": 60, "days": 14, "live_orders": 12, "seed": 5}


def run_seed(stack: Any) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for svc in ("order", "inventory", "pricing", "recommendation", "risk"):
        env[f"{svc.upper()}_HTTP_PORT"] = str(stack.procs[svc].http_port)
    argv = [harness.ecomops_exe(), "demo", "seed"]
    for name, value in ARGS.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.run(  # our own command
        argv, capture_output=True, text=True, timeout=280, env=env, check=False
    )


async def _get(http: Any, stack: Any, service: str, path: str, **params: Any) -> Any:
    resp = await http.get(stack.url(service) + path, params=params, headers=ops())
    assert resp.status_code == 200, f"{service} {path}: {resp.status_code} {resp.text[:300]}"
    return resp.json()


async def test_demo_seed_fills_every_kpi_and_runs_twice(stack: Any, http: Any) -> None:
    stack.require("order", "inventory", "pricing", "recommendation", "risk")
    first = run_seed(stack)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for step in ("catalogue:", "promotions:", "history:", "behaviour:", "live orders:", "done"):
        assert step in first.stdout, first.stdout
    shop = plan(
        ARGS["seed"],
        skus=ARGS["skus"],
        customers=ARGS["customers"],
        days=ARGS["days"],
        now=datetime.now(UTC),
    )
    assert shop.history, "the plan should hold some history"
    demo_skus = {s.sku for s in shop.skus}

    # Order: orders, payments and GMV; the history's orders are stored as delivered.
    kpis = await _get(http, stack, "order", "/v1/orders/kpis")
    assert kpis["orders"] > 0 and kpis["paid_orders"] > 0 and kpis["gmv"], kpis
    stored = await _get(http, stack, "order", f"/v1/orders/{shop.history[0].order_id}")
    assert stored["status"] == "delivered"

    # Risk: assessments (the live orders went through it).
    risk = await _get(http, stack, "risk", "/v1/risk/kpis")
    assert risk["assessments"] > 0, risk

    # Inventory (once the history is learnt): units sold, ABC over the demo's SKUs.
    async def inventory_learnt() -> None:
        inv = await _get(http, stack, "inventory", "/v1/inventory/kpis")
        assert inv["units_sold"] > 0, inv
        abc = await _get(http, stack, "inventory", "/v1/inventory/abc", currency="EUR")
        mine = [i for i in abc["items"] if i["sku"] in demo_skus and i["revenue_minor"] > 0]
        assert mine, "no demo SKU has revenue in ABC"

    await wait_until(inventory_learnt, timeout=90, interval=1.0)

    # Recommendation: the funnel of a demo category has views, carts and orders; a customer
    # of the history has an RFM segment.
    async def recommendation_learnt() -> None:
        funnel = await _get(http, stack, "recommendation", "/v1/funnel")
        assert funnel["views"] > 0 and funnel["orders"] > 0, funnel
        segments = await _get(http, stack, "recommendation", "/v1/segments")
        assert segments["total"] > 0, segments
        buyer = shop.history[-1].customer_id
        seg = await _get(http, stack, "recommendation", f"/v1/segments/customers/{buyer}")
        assert seg["frequency"] >= 1, seg

    await wait_until(recommendation_learnt, timeout=90, interval=1.0)

    # Pricing: suggestions for the demo's SKUs (prices, costs, stock, sales).
    async def pricing_knows() -> None:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = await _get(http, stack, "pricing", "/v1/pricing/suggestions", **params)
            found += [i for i in page["items"] if i["sku"] in demo_skus]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert found, "pricing has no suggestion row for the demo's SKUs"

    await wait_until(pricing_knows, timeout=60, interval=1.0)
    names: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await _get(http, stack, "pricing", "/v1/promotions", **params)
        names |= {p["name"] for p in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert {"Demo: welcome coupon", "Demo: coffee week"} <= names

    # Again: succeeds, says what was there, imports no second history.
    second = run_seed(stack)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 imported" in second.stdout and "already there" in second.stdout, second.stdout
    assert "0 created (3 already there)" in second.stdout, second.stdout
