"""The console's BFF without a stack: sign-in (cookie flags, roles), the CSRF defence, the
allow-list, the overview (a service down → its KPIs null with a reason, never a 500) and
accepting a price suggestion — the services stood in for by an httpx mock transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from console_service.app import create_console
from console_service.settings import ConsoleSettings
from ecomops_platform.auth import mint_token
from ecomops_platform.settings import CommonSettings

SECRET = "console-unit-test-secret-0123456789abcdef"
COMMON = CommonSettings(jwt_secret=SECRET, env="test", access_log=False)


def tok(role: str, subject: str = "ops-1") -> str:
    return mint_token(SECRET, subject, role, ttl_seconds=600)


class Services:
    """The five services as canned answers; ``down`` ones refuse connections."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.price = {
            "sku": "SKU-1", "currency": "EUR", "list_price_minor": 2000, "unit_cost_minor": 800,
            "commission_rate": "0.10", "marketing_cost_rate": None,
        }  # fmt: skip

    def handler(self, request: httpx.Request) -> httpx.Response:
        service = {8001: "order", 8002: "inventory", 8003: "pricing", 8004: "recommendation",
                   8005: "risk"}[request.url.port]  # fmt: skip
        if service in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = json.loads(request.content) if request.content else {}
        self.calls.append((service, request.method, request.url.path, body))
        assert request.headers["authorization"].startswith("Bearer ")
        path = request.url.path
        if path == "/v1/orders/kpis":
            return httpx.Response(200, json={
                "orders": 10, "paid_orders": 8, "gmv": [{"currency": "EUR", "amount_minor": 5000}],
                "average_order_value": [{"currency": "EUR", "amount_minor": 625}],
                "repurchase_rate": "0.25", "cancellation_rate": "0.1", "return_rate": "0.05",
                "cart_abandonment_rate": "0.4"})  # fmt: skip
        if path == "/v1/funnel":
            return httpx.Response(200, json={
                "views": 100, "add_to_carts": 20, "orders": 10, "paid": 8,
                "view_to_cart_rate": "0.2", "cart_to_order_rate": "0.5",
                "order_to_paid_rate": "0.8", "view_to_paid_rate": "0.08"})  # fmt: skip
        if path == "/v1/inventory/kpis":
            return httpx.Response(200, json={"inventory_turnover": 2.5, "stock_out_rate": 0.02})
        if path == "/v1/risk/kpis":
            return httpx.Response(200, json={
                "assessments": 10, "review_rate": "0.1", "reject_rate": "0.0",
                "fraud_loss": [{"currency": "EUR", "gmv_approved_minor": 5000,
                                "fraud_loss_minor": 0, "fraud_loss_rate": "0"}]})  # fmt: skip
        if path == "/v1/prices/SKU-1" and request.method == "GET":
            return httpx.Response(200, json=self.price)
        if path == "/v1/prices/SKU-1" and request.method == "PUT":
            if body["list_price_minor"] < 1200:
                return httpx.Response(
                    422, json={"type": "https://ecomops.dev/problems/margin-below-floor",
                               "title": "Margin below floor", "status": 422},
                    headers={"content-type": "application/problem+json"})  # fmt: skip
            self.price = {**self.price, "list_price_minor": body["list_price_minor"]}
            return httpx.Response(200, json=self.price)
        if path.startswith("/v1/reviews/") and path.endswith("/decision"):
            return httpx.Response(200, json={"review_id": path.split("/")[3], "status": "approved"})
        if path == "/v1/orders":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        return httpx.Response(404, json={"type": "x", "title": "Not found", "status": 404})


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    settings = ConsoleSettings(env="test", session_secret="s" * 40, static_dir="/nonexistent")
    app = create_console(settings, COMMON, transport=httpx.MockTransport(services.handler))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        yield c


async def sign_in(client: httpx.AsyncClient, role: str = "ops") -> httpx.Response:
    return await client.post("/api/session", headers={"Authorization": f"Bearer {tok(role)}"})


async def csrf(client: httpx.AsyncClient) -> str:
    resp = await client.get("/api/session")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["csrf_token"])


async def test_sign_in_sets_an_httponly_strict_cookie(client: httpx.AsyncClient) -> None:
    resp = await sign_in(client)
    assert resp.status_code == 204, resp.text
    cookies = resp.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("ecomops_console_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    readable = next(c for c in cookies if c.startswith("ecomops_console_csrf="))
    assert "HttpOnly" not in readable and "SameSite=strict" in readable
    me = (await client.get("/api/session")).json()
    assert (me["signed_in"], me["subject"], me["role"]) == (True, "ops-1", "ops")


@pytest.mark.parametrize("role", ["customer", "partner", "service"])
async def test_other_roles_are_refused(client: httpx.AsyncClient, role: str) -> None:
    resp = await sign_in(client, role)
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "set-cookie" not in resp.headers


async def test_a_bad_or_missing_token_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/session")).status_code == 401
    bad = await client.post("/api/session", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    forged = mint_token("another-secret-of-enough-length-0123456789", "x", "ops")
    resp = await client.post("/api/session", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401
    assert (await client.get("/api/overview")).status_code == 401


async def test_state_changes_need_the_csrf_token(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_in(client)
    url = "/api/services/risk/v1/reviews/rv-1/decision"
    body = {"decision": "approve"}
    missing = await client.post(url, json=body)
    assert missing.status_code == 403 and missing.json()["type"].endswith("csrf-refused")
    wrong = await client.post(url, json=body, headers={"X-CSRF-Token": "abc.def"})
    assert wrong.status_code == 403
    token = await csrf(client)
    foreign = await client.post(
        url, json=body, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert not [c for c in services.calls if c[2].endswith("/decision")]
    ok = await client.post(
        url, json=body, headers={"X-CSRF-Token": token, "Origin": "http://console.test"}
    )
    assert ok.status_code == 200, ok.text
    assert services.calls[-1][:3] == ("risk", "POST", "/v1/reviews/rv-1/decision")


async def test_a_csrf_token_of_another_session_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    other = await csrf(client)
    await client.post("/api/session", headers={"Authorization": f"Bearer {tok('ops', 'ops-2')}"})
    resp = await client.post(
        "/api/services/risk/v1/reviews/rv-1/decision",
        json={"decision": "approve"},
        headers={"X-CSRF-Token": other},
    )
    assert resp.status_code == 403


async def test_sign_out_clears_the_session(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    refused = await client.delete("/api/session")
    assert refused.status_code == 403
    out = await client.delete("/api/session", headers={"X-CSRF-Token": await csrf(client)})
    assert out.status_code == 204
    assert (await client.get("/api/session")).json() == {"signed_in": False, "oidc": False}
    assert (await client.get("/api/overview")).status_code == 401


async def test_only_allow_listed_calls_pass(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    assert (await client.get("/api/services/order/v1/orders")).status_code == 200
    token = await csrf(client)
    for method, url in (
        ("POST", "/api/services/order/v1/orders"),
        ("GET", "/api/services/order/v1/carts/c-1"),
        ("GET", "/api/services/order/v1/orders/../carts/c-1"),
        ("GET", "/api/services/nosuch/v1/orders"),
        ("PUT", "/api/services/risk/v1/rules"),
    ):
        resp = await client.request(method, url, headers={"X-CSRF-Token": token}, json={})
        assert resp.status_code == 404, (method, url, resp.text)


async def test_overview_with_a_service_down_is_null_with_a_reason(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_in(client)
    services.down.add("risk")
    resp = await client.get(
        "/api/overview",
        params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z", "bucket": "day"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["previous"] == {"from": "2026-10-25T00:00:00+00:00",
                                "to": "2026-11-01T00:00:00+00:00"}  # fmt: skip
    kpis = body["kpis"]
    for name in ("fraud_loss_rate", "review_rate"):
        assert kpis[name]["value"] is None and kpis[name]["previous"] is None
        assert "risk service" in kpis[name]["reason"] and "unreachable" in kpis[name]["reason"]
    assert kpis["gmv"]["value"] == [{"currency": "EUR", "amount_minor": 5000}]
    assert kpis["orders"] == {"value": 10, "previous": 10, "unit": "count", "source": "order",
                              "reason": None}  # fmt: skip
    assert kpis["conversion_rate"]["value"] == 0.08
    assert kpis["stock_out_rate"]["value"] == 0.02
    assert [s["step"] for s in body["funnel"]["steps"]] == ["view", "cart", "order", "paid"]
    assert len(body["series"]) == 7 and body["series"][0]["orders"] == 10
    assert set(body["unavailable"]) == {"risk"}


async def test_overview_with_every_service_down_is_still_200(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_in(client)
    services.down.update({"order", "inventory", "pricing", "recommendation", "risk"})
    resp = await client.get("/api/overview", params={"bucket": "week"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert all(k["value"] is None and k["reason"] for k in body["kpis"].values())
    assert body["funnel"]["steps"] is None
    assert all(p["gmv"] is None for p in body["series"])


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"from": "2026-11-08", "to": "2026-11-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"from": "2026-01-01", "to": "2026-12-01", "bucket": "day"},
        {"bucket": "month"},
    ],
)
async def test_overview_refuses_bad_windows(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await sign_in(client)
    resp = await client.get("/api/overview", params=params)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_accepting_a_suggestion_writes_the_price(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_in(client)
    token = await csrf(client)
    url = "/api/pricing/suggestions/SKU-1/accept"
    resp = await client.post(
        url, json={"currency": "EUR", "suggested_price_minor": 1800},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["list_price_minor"] == 1800
    put = services.calls[-1]
    assert put[:3] == ("pricing", "PUT", "/v1/prices/SKU-1")
    assert put[3]["unit_cost_minor"] == 800 and put[3]["commission_rate"] == "0.10"
    assert "marketing_cost_rate" not in put[3] and "ops-1" in put[3]["reason"]
    floor = await client.post(
        url, json={"currency": "EUR", "suggested_price_minor": 900},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert floor.status_code == 422 and floor.json()["type"].endswith("margin-below-floor")
    assert services.price["list_price_minor"] == 1800


async def test_a_service_down_on_an_action_is_503_not_500(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_in(client)
    services.down.add("risk")
    resp = await client.post(
        "/api/services/risk/v1/reviews/rv-1/decision",
        json={"decision": "approve"},
        headers={"X-CSRF-Token": await csrf(client)},
    )
    assert resp.status_code == 503, resp.text
    assert resp.json()["service"] == "risk"


async def test_pages_are_served_with_security_headers(client: httpx.AsyncClient) -> None:
    resp = await client.get("/inventory")
    assert resp.status_code == 503  # not built in this test: a problem, not a 500
    assert resp.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert (await client.get("/api/nosuch")).status_code == 404
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).json()["checks"] == {"spa": False}
