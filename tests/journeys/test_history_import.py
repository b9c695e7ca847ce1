"""History import on the real services: ``ecomops import orders --csv`` (the command, as a
process) against the order service, and the history reaching inventory (demand and revenue) and
recommendation (co-purchases, RFM) through ``OrderImported`` — without reserving stock, charging,
or asking risk. A bad row is named by its line and nothing of that file is stored; a re-run
(also after SIGKILL mid-import) stores only what is missing, each order once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import harness
import pytest
from proof_fixtures import new_id, ops, pg_dsn, wait_until

from ecomops_testing import bearer

pytestmark = pytest.mark.integration

HEADER = "customer_id,order_id,sku,quantity,unit_price_minor,currency,ordered_at\n"
IMPORTED = "ecomops.order.v1.OrderImported"


def run_import(stack: Any, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            harness.ecomops_exe(),
            "import",
            "orders",
            "--csv",
            str(path),
            "--url",
            stack.url("order"),
            "--token",
            bearer("ops-import-test", "ops")["Authorization"].split(" ", 1)[1],
            "--quiet",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def _status(http: Any, stack: Any, order_id: str) -> int:
    resp = await http.get(stack.url("order") + f"/v1/orders/{order_id}", headers=ops())
    return int(resp.status_code)


async def test_import_is_checked_whole_idempotent_and_reaches_inventory_and_recommendation(
    shop: Any, http: Any, kafka: Any, tmp_path: Path
) -> None:
    stack = shop.stack
    stack.require("recommendation")
    a, b = new_id("sku-hist-a"), new_id("sku-hist-b")
    await shop.seed_sku(a, units=40)
    await shop.seed_sku(b, units=40)
    buyer, other = new_id("cust-hist"), new_id("cust-hist")
    prefix = new_id("hist")
    now = datetime.now(UTC).replace(microsecond=0)
    days = {1: now - timedelta(days=30), 2: now - timedelta(days=20), 3: now - timedelta(days=10)}
    rows = [
        f"{buyer},{prefix}-1,{a},2,1500,EUR,{days[1].isoformat()}",
        f"{buyer},{prefix}-1,{b},1,900,EUR,{days[1].isoformat()}",
        f"{buyer},{prefix}-2,{a},1,1500,EUR,{days[2].isoformat()}",
        f"{buyer},{prefix}-2,{b},3,900,EUR,{days[2].isoformat()}",
        f"{buyer},{prefix}-3,{a},4,1500,EUR,{days[3].isoformat()}",
        f"{other},{prefix}-4,{b},1,900,EUR,{days[3].isoformat()}",
    ]
    ids = {f"{prefix}-{n}" for n in range(1, 5)}

    # A bad row (line 5: a quantity the order service refuses) stores nothing of the file.
    bad = list(rows)
    bad[3] = f"{buyer},{prefix}-2,{b},0,900,EUR,{days[2].isoformat()}"
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text(HEADER + "\n".join(bad) + "\n")
    refused = run_import(stack, bad_file)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"{bad_file}:5: quantity" in refused.stderr, refused.stderr
    assert "nothing was imported" in refused.stderr
    for order_id in ids:
        assert await _status(http, stack, order_id) == 404

    # A type error in the file is caught before anything is sent, also with its line.
    typo = tmp_path / "typo.csv"
    typo.write_text(HEADER + "\n".join([*rows[:2], rows[2].replace(",1500,", ",15.00,")]) + "\n")
    refused = run_import(stack, typo)
    assert refused.returncode == 2 and f"{typo}:4: unit_price_minor '15.00'" in refused.stderr

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "\n".join(rows) + "\n")
    first = run_import(stack, good)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "6 rows, 4 orders: 4 imported, 0 already imported" in first.stdout, first.stdout
    again = run_import(stack, good)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 orders: 0 imported, 4 already imported" in again.stdout, again.stdout

    # Stored as delivered history; no stock taken, no reservation, no risk, no payment events.
    order = await shop.order(f"{prefix}-2")
    assert order["status"] == "delivered", order
    assert order["total_minor"] == 1500 + 3 * 900
    for sku in (a, b):
        stock = await shop.stock(sku)
        assert (stock["on_hand"], stock["available"]) == (40, 40), stock
    events = await kafka.wait_for(IMPORTED, lambda e: e.key in ids, count=4)
    assert sorted(e.key for e in events) == sorted(ids)  # once each, re-run included
    for kind in ("OrderPlaced", "OrderPaid", "StockReserved"):
        assert not [e for e in kafka.events if e.key in ids and e.event_type.endswith(kind)]

    # Inventory: demand on the days ordered at the SKU's warehouse, and revenue (ABC).
    conn = await asyncpg.connect(pg_dsn("inventory"))
    try:

        async def demand() -> Any:
            got = await conn.fetch(
                "SELECT sku, warehouse, day, units FROM demand_daily WHERE sku = ANY($1::text[])"
                " ORDER BY sku, day",
                [a, b],
            )
            assert len(got) == 6, got
            return got

        got = await wait_until(demand, timeout=60)
        assert sorted((r["sku"], r["warehouse"], r["day"], r["units"]) for r in got) == sorted(
            [
                (a, shop.warehouse, days[1].date(), 2),
                (a, shop.warehouse, days[2].date(), 1),
                (a, shop.warehouse, days[3].date(), 4),
                (b, shop.warehouse, days[1].date(), 1),
                (b, shop.warehouse, days[2].date(), 3),
                (b, shop.warehouse, days[3].date(), 1),
            ]
        )
        revenue = await conn.fetchval(
            "SELECT sum(revenue_minor) FROM revenue_daily WHERE sku = $1", b
        )
        assert revenue == 900 * 5
    finally:
        await conn.close()

    # Recommendation: the buyer's RFM from three paid orders, and A bought with B.
    async def segment() -> Any:
        resp = await http.get(
            stack.url("recommendation") + f"/v1/segments/customers/{buyer}", headers=ops()
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["frequency"] == 3, resp.json()
        return resp.json()

    seg = await wait_until(segment, timeout=60)
    assert seg["monetary_minor"] == (3000 + 900) + (1500 + 2700) + 6000
    assert seg["recency_days"] in (9, 10, 11)

    async def together() -> Any:
        resp = await http.get(
            stack.url("recommendation") + f"/v1/recommendations/skus/{a}/bought-together",
            headers=ops(),
        )
        assert resp.status_code == 200, resp.text
        assert b in [i["sku"] for i in resp.json()["items"]], resp.json()

    await wait_until(together, timeout=60)

    # A live order with the id of an imported one is never overwritten: a clash is reported.
    clash = tmp_path / "clash.csv"
    clash.write_text(HEADER + f"{other},{prefix}-1,{a},9,1,EUR,{days[1].isoformat()}\n")
    refused = run_import(stack, clash)
    assert refused.returncode == 2 and f"{clash}:2: order {prefix}-1" in refused.stderr


async def test_a_sigkilled_import_run_again_stores_every_order_once(
    shop: Any, http: Any, kafka: Any, tmp_path: Path
) -> None:
    stack = shop.stack
    sku = new_id("sku-hist-k")
    await shop.seed_sku(sku, units=0)
    prefix = new_id("histk")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
    n = 2000
    path = tmp_path / "big.csv"
    path.write_text(
        HEADER
        + "".join(
            f"c-{prefix}-{i % 97},{prefix}-{i},{sku},{1 + i % 3},700,EUR,"
            f"{(start + timedelta(minutes=20 * i)).isoformat()}\n"
            for i in range(n)
        )
    )
    conn = await asyncpg.connect(pg_dsn("order"))
    try:

        async def stored() -> int:
            return int(
                await conn.fetchval("SELECT count(*) FROM orders WHERE id LIKE $1", f"{prefix}-%")
            )

        token = bearer("ops-import-test", "ops")["Authorization"].split(" ", 1)[1]
        proc = subprocess.Popen(
            [
                harness.ecomops_exe(),
                *("import", "orders", "--csv", str(path), "--url", stack.url("order")),
                *("--token", token, "--batch", "50", "--quiet"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_until(lambda: _some(stored), timeout=120, interval=0.02)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        partial = await stored()  # (a request in flight at the kill may still commit)
        assert 0 < partial < n, partial

        done = run_import(stack, path)
        assert done.returncode == 0, done.stdout + done.stderr
        counts = re.search(r"(\d+) orders: (\d+) imported, (\d+) already imported", done.stdout)
        assert counts is not None, done.stdout
        total, new, already = (int(g) for g in counts.groups())
        assert total == n and new + already == n and partial <= already < n, done.stdout
        assert await stored() == n
        timeline = await conn.fetchval(
            "SELECT count(*) FROM order_timeline WHERE order_id LIKE $1", f"{prefix}-%"
        )
        assert timeline == n
    finally:
        await conn.close()
    events = await kafka.wait_for(
        IMPORTED, lambda e: e.key.startswith(f"{prefix}-"), count=n, timeout=120
    )
    per_key: dict[str, set[str]] = {}
    for e in events:
        per_key.setdefault(e.key, set()).add(e.event_id)
    assert len(per_key) == n and all(len(v) == 1 for v in per_key.values())


async def _some(count: Any) -> None:
    assert await count() > 0


async def test_grpc_import_orders_mirrors_rest(shop: Any, http: Any) -> None:
    """ImportOrders over gRPC: the same handler (dry run, a bad order → INVALID_ARGUMENT naming
    it, idempotent re-send, ops only)."""
    import grpc

    from ecomops.order.v1 import order_service_pb2 as pb
    from ecomops.order.v1 import order_service_pb2_grpc as pb_grpc

    stack = shop.stack
    prefix = new_id("histg")
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)

    def order(n: int, price: int = 700) -> Any:
        o = pb.ImportedOrder(
            order_id=f"{prefix}-{n}",
            customer_id=f"c-{prefix}",
            currency="EUR",
            lines=[pb.ImportedOrderLine(sku="sku-x", quantity=2, unit_price_minor=price)],
        )
        o.ordered_at.FromDatetime(when)
        return o

    ops_md = [("authorization", bearer("ops-import-test", "ops")["Authorization"])]
    customer_md = [("authorization", bearer("c-1", "customer")["Authorization"])]
    async with grpc.aio.insecure_channel(stack.grpc_target("order")) as channel:
        orders = pb_grpc.OrderServiceStub(channel)
        dry = await orders.ImportOrders(
            pb.ImportOrdersRequest(orders=[order(1), order(2)], dry_run=True), metadata=ops_md
        )
        assert (dry.dry_run, dry.to_import, dry.imported) == (True, 2, 0)
        assert await _status(http, stack, f"{prefix}-1") == 404
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await orders.ImportOrders(
                pb.ImportOrdersRequest(orders=[order(1), order(2, price=-1)]), metadata=ops_md
            )
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "orders" in (bad.value.details() or "")
        done = await orders.ImportOrders(
            pb.ImportOrdersRequest(orders=[order(1), order(2)], import_id="grpc"),
            metadata=ops_md,
        )
        assert (done.imported, done.already_imported) == (2, 0)
        again = await orders.ImportOrders(
            pb.ImportOrdersRequest(orders=[order(1), order(2)]), metadata=ops_md
        )
        assert (again.imported, again.already_imported) == (0, 2)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await orders.ImportOrders(
                pb.ImportOrdersRequest(orders=[order(3)]), metadata=customer_md
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert (await shop.order(f"{prefix}-2"))["total_minor"] == 1400
