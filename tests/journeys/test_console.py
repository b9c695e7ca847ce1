"""The operations console in a real browser: Debian's Chromium driven by playwright-core
(services/console/web/e2e/console.e2e.mjs) against the console's BFF, which calls the five
services running as processes (the shared subprocess stack).

The test seeds what it needs through the public APIs (a SKU with a competitor undercutting its
price, an order held for review, a paid order), then the browser signs in with a pasted ops
token, opens every page (charts drawn, no console error, nothing overflowing at 1280 px or on a
tablet), approves the review from the Risk page and accepts the price suggestion from the
Pricing page; the services then show the order moved on and the new price.

Screenshots go to $CONSOLE_SCREENSHOTS when set (docs/console for the README), else to a
temporary directory. Without chromium (bash services/console/install-browser.sh, as root) or
npm the test is skipped locally, and fails under CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from proof_fixtures import new_id, ops, wait_until

from ecomops_testing import free_port, token

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required under CI)")
    pytest.skip(what)


def _run(*args: str, timeout: float) -> str:
    proc = subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def web_build() -> Path:
    """The built app (services/console/web/dist) and the directory the browser script runs
    from (its npm packages linked there)."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"chromium not found at {CHROMIUM}: bash services/console/install-browser.sh")
    if shutil.which("npm") is None or shutil.which("node") is None:
        _missing("node/npm not found")
    _run("bash", "services/console/build.sh", timeout=600)
    return Path(_run("bash", "services/console/build.sh", "tools", timeout=600).strip())


@pytest.fixture
def console(stack: Any, web_build: Path) -> Any:
    port = free_port()
    env = stack.base_env()
    env.update(
        {
            "CONSOLE_HTTP_PORT": str(port),
            "CONSOLE_SESSION_SECRET": "console-browser-test-" + "x" * 24,
            **{f"CONSOLE_{svc.upper()}_URL": stack.url(svc) for svc in (
                "order", "inventory", "pricing", "recommendation", "risk", "support")},
        }
    )  # fmt: skip
    log = (stack.log_dir / "console.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "console_service"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"the console exited; see {stack.log_dir / 'console.log'}"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the console did not become ready"
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def _suggestion(shop: Any, sku: str) -> dict[str, Any]:
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        resp = await shop.client.get(
            shop.url("pricing", "/v1/pricing/suggestions"), params=params, headers=ops()
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        for item in page["items"]:
            if item["sku"] == sku and item["currency"] == "EUR":
                return dict(item)
        cursor = page.get("next_cursor")
        assert cursor, f"no suggestion for {sku} yet"


async def test_console_in_a_browser(shop: Any, journey_rules: Any, console: str,
                                    web_build: Path) -> None:  # fmt: skip
    http = shop.client
    sku = new_id("sku-console")
    await shop.seed_sku(sku, units=20, price_minor=2000, cost_minor=800, category="console")
    # A competitor 10 % under our price: pricing suggests aligning to it (above the floor).
    resp = await http.put(
        shop.url("pricing", f"/v1/competitor-prices/{sku}"),
        json={"competitor": "rival", "currency": "EUR", "price_minor": 1800,
              "observed_at": datetime.now(UTC).isoformat()},
        headers=ops(),
    )  # fmt: skip
    assert resp.status_code in (200, 201), resp.text

    # One paid order (the overview's charts) and one held for review (a blocklisted device).
    buyer, suspect = new_id("console-buyer"), new_id("console-suspect")
    blocked = await http.put(
        shop.url("risk", f"/v1/blocklist/device/dev-{suspect}"),
        json={"reason": "console browser test"},
        headers=ops(),
    )
    assert blocked.status_code in (200, 201), blocked.text
    paid = await shop.place_order(buyer, [(sku, 1)])
    assert paid.status_code == 201, paid.text
    await shop.pay(buyer, paid.json()["order_id"])
    held = await shop.place_order(suspect, [(sku, 1)])
    assert held.status_code == 201, held.text
    order_id = held.json()["order_id"]
    assert held.json()["status"] == "in_review", held.json()

    # A customer asks about the paid order: the Support page's queue has work to draw.
    ticket = await http.post(
        shop.url("support", "/v1/tickets"),
        json={"order_id": paid.json()["order_id"], "category": "delivery",
              "subject": "Where is my parcel?", "message": "My order has not arrived yet."},
        headers={"Authorization": f"Bearer {token(buyer, 'customer')}",
                 "Idempotency-Key": new_id("ticket")},
    )  # fmt: skip
    assert ticket.status_code == 201, ticket.text

    async def review_open() -> None:
        resp = await http.get(
            shop.url("risk", "/v1/assessments"), params={"order_id": order_id}, headers=ops()
        )
        assert resp.status_code == 200 and resp.json()["items"], resp.text
        assert resp.json()["items"][0]["review_id"], resp.json()

    await wait_until(review_open, timeout=30, interval=0.5)

    async def suggested() -> dict[str, Any]:
        found = await _suggestion(shop, sku)
        assert found["suggested_price_minor"] == 1800, found
        return found

    suggestion = await wait_until(suggested, timeout=30, interval=1.0)

    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or (web_build / "screenshots"))
    proc = subprocess.run(
        ["node", "e2e/console.e2e.mjs"],
        cwd=web_build,
        env={
            **os.environ,
            "CONSOLE_URL": console,
            "CONSOLE_TOKEN": token("ops-console", "ops", ttl=900),
            "REVIEW_ORDER_ID": order_id,
            "PRICE_SKU": sku,
            "SHOTS_DIR": str(shots.resolve()),
            "CHROMIUM": CHROMIUM,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and "failure" not in result, result.get("failure", result)

    assert result["errors"] == [], result["errors"]
    assert result["session_cookie"] == {"httpOnly": True, "sameSite": "Strict"}
    pages = result["pages"]
    for name, seen in pages.items():
        assert seen["errors"] == [], (name, seen)
        assert not seen["overflow"], f"{name} overflows sideways at 1280 px"
        assert seen["charts"] or seen["empty"], (name, seen)
    # Pages whose data this test made are drawn, not empty.
    assert {"chart-gmv", "chart-funnel", "chart-conversion"} <= set(pages["Overview"]["charts"])
    # ... with their bars and lines drawn, not only their axes (animations are off: a
    # screenshot never catches a chart half drawn).
    assert {"chart-gmv", "chart-funnel"} <= set(pages["Overview"]["drawn"]), pages["Overview"]
    assert "chart-support-queue" in pages["Support"]["drawn"], pages["Support"]
    assert "chart-fraud" in pages["Risk"]["charts"], pages["Risk"]
    assert "chart-prices" in pages["Pricing"]["charts"], pages["Pricing"]
    assert "chart-statuses" in pages["Orders & returns"]["charts"], pages["Orders & returns"]
    assert "chart-support-queue" in pages["Support"]["charts"], pages["Support"]
    assert not result["tablet"]["overflow"] and result["tablet"]["charts"], result["tablet"]
    assert result["actions"]["approve"] == "approved"
    assert sku in result["actions"]["accept"], result["actions"]
    assert result["signed_out"] is True
    for shot in ("overview", "inventory", "pricing", "risk", "orders", "customers", "support"):
        assert (shots / f"{shot}.png").stat().st_size > 10_000, shot

    # The services agree: the approved order moved on, the accepted price is the list price.
    async def order_moved_on() -> None:
        got = await shop.order(order_id)
        assert got["status"] == "awaiting_payment", got["status"]
        assert any((t.get("actor") or "").startswith("risk:") for t in got["timeline"]), got

    await wait_until(order_moved_on, timeout=30, interval=0.5)
    price = await http.get(
        shop.url("pricing", f"/v1/prices/{sku}"), params={"currency": "EUR"}, headers=ops()
    )
    assert price.status_code == 200, price.text
    assert price.json()["list_price_minor"] == suggestion["suggested_price_minor"] == 1800
    assert "accepted in the console by ops-console" in (price.json()["reason"] or "")
