"""The REST app's OpenAPI document says what it enforces (bearer scheme, required
Idempotency-Key, Idempotent-Replayed, problem+json, Location on 201), the service sends the
Location it documents, and CORS is off unless origins are allowed (then preflights work)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response

from ecomops_platform.auth import Caller, Role, TokenVerifier, mint_token
from ecomops_platform.errors import NotFound
from ecomops_platform.problems import PROBLEM_MEDIA_TYPE
from ecomops_platform.rest import (
    AnyCaller,
    RequestModel,
    ResponseModel,
    create_app,
    parse_origins,
    require,
)
from ecomops_platform.rest_locations import location_template
from ecomops_platform.settings import CommonSettings
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
ORIGIN = "https://shop.example.com"


class WidgetIn(RequestModel):
    name: str


class WidgetView(ResponseModel):
    widget_id: str
    name: str


class OrderView(ResponseModel):
    order_id: str
    cart_id: str


async def _ready() -> dict[str, Any]:
    return {"ready": True}


def _app(origins: Sequence[str] = ()) -> FastAPI:
    router = APIRouter(prefix="/v1")
    widgets: dict[str, str] = {}

    @router.post(
        "/widgets",
        status_code=201,
        response_model=WidgetView,
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_widget(
        body: WidgetIn, key: RequiredIdempotencyKey, caller: AnyCaller, response: Response
    ) -> WidgetView:
        widget_id = f"w {len(widgets) + 1}"  # needs quoting in a URL
        widgets[widget_id] = body.name
        return WidgetView(widget_id=widget_id, name=body.name)

    @router.get("/widgets/{widget_id}", response_model=WidgetView)
    async def get_widget(widget_id: str, caller: AnyCaller) -> WidgetView:
        if widget_id not in widgets:
            raise NotFound(f"no widget {widget_id}")
        return WidgetView(widget_id=widget_id, name=widgets[widget_id])

    @router.post("/carts/{cart_id}/checkout", status_code=201, response_model=OrderView)
    async def checkout(
        cart_id: str, caller: Annotated[Caller, require(Role.CUSTOMER)]
    ) -> OrderView:
        return OrderView(order_id="o-1", cart_id=cart_id)

    @router.get("/orders/{order_id}", response_model=OrderView)
    async def get_order(order_id: str, caller: AnyCaller) -> OrderView:
        return OrderView(order_id=order_id, cart_id="c")

    @router.get("/carts/{cart_id}", response_model=OrderView)
    async def get_cart(cart_id: str, caller: AnyCaller) -> OrderView:
        return OrderView(order_id="o", cart_id=cart_id)

    return create_app(
        service="unit",
        title="t",
        description="d",
        version="1",
        verifier=TokenVerifier(CommonSettings(jwt_secret=SECRET, env="test")),
        readiness=_ready,
        routers=[router],
        max_body_bytes=65536,
        rate_limit_per_minute=10_000,
        cors_allowed_origins=origins,
    )


def _auth(role: str = "customer") -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(SECRET, "cust-1", role)}


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_the_document_declares_the_bearer_scheme_on_operations_that_need_a_token() -> None:
    doc = _app().openapi()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, item in doc["paths"].items():
        for op in item.values():
            if path.startswith("/v1/"):
                assert op["security"] == [{"bearerAuth": []}], path
                assert "401" in op["responses"] and "403" in op["responses"]
            else:
                assert "security" not in op, path
                assert not {"401", "403", "404", "429"} & set(op["responses"]), path
    # The Authorization header is the scheme's, not a parameter of its own.
    names = [p["name"] for p in doc["paths"]["/v1/widgets"]["post"]["parameters"]]
    assert names == ["Idempotency-Key"]


def test_idempotency_and_location_headers_are_documented() -> None:
    doc = _app().openapi()
    create = doc["paths"]["/v1/widgets"]["post"]
    (key,) = create["parameters"]
    assert key["in"] == "header" and key["required"] is True
    created = create["responses"]["201"]["headers"]
    assert created["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}
    assert "/v1/widgets/{widget_id}" in created["Location"]["description"]
    checkout = doc["paths"]["/v1/carts/{cart_id}/checkout"]["post"]["responses"]["201"]
    assert "Idempotent-Replayed" not in checkout["headers"]  # not an idempotent operation
    assert "/v1/orders/{order_id}" in checkout["headers"]["Location"]["description"]
    ready = doc["paths"]["/readyz"]["get"]["responses"]
    assert "application/json" in ready["503"]["content"]  # the report, not a problem


def test_every_problem_answer_is_problem_json_with_the_problem_schema() -> None:
    doc = _app().openapi()
    seen = 0
    for path, item in doc["paths"].items():
        for op in item.values():
            for code, response in op["responses"].items():
                if int(code) < 400 or path == "/readyz":  # /readyz answers 503 with its report
                    continue
                content = response["content"]
                assert list(content) == [PROBLEM_MEDIA_TYPE], (path, code)
                media = content[PROBLEM_MEDIA_TYPE]
                assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
                assert media["example"]["status"] == int(code)
                seen += 1
    assert seen > 20
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Problem"]["example"]["errors"]


async def test_a_201_carries_the_location_of_the_created_resource() -> None:
    async with _client(_app()) as client:
        created = await client.post(
            "/v1/widgets", json={"name": "a"}, headers={**_auth(), "Idempotency-Key": "k1"}
        )
        assert created.status_code == 201
        location = created.headers["location"]
        assert location == "/v1/widgets/w%201"
        read = await client.get(location, headers=_auth())
        assert read.status_code == 200 and read.json()["name"] == "a"

        placed = await client.post("/v1/carts/c-9/checkout", headers=_auth())
        assert placed.status_code == 201 and placed.headers["location"] == "/v1/orders/o-1"
        # Not created: no Location.
        refused = await client.post("/v1/carts/c-9/checkout", headers=_auth("partner"))
        assert refused.status_code == 403 and "location" not in refused.headers


@pytest.mark.parametrize(
    ("method", "path", "fields", "primary", "expected"),
    [
        ("post", "/v1/orders/{order_id}/payments", {"order_id", "cart_id"}, "order_id",
         "/v1/orders/{order_id}"),
        ("post", "/v1/stock/adjustments", {"entry_id", "sku"}, "ledger_entry_id",
         "/v1/stock/{sku}"),
        ("put", "/v1/warehouses/{code}", {"code"}, "warehouse_id", "/v1/warehouses/{code}"),
        ("post", "/v1/labels", {"label_id"}, "label_id", None),
    ],
)  # fmt: skip
def test_location_templates(
    method: str, path: str, fields: set[str], primary: str, expected: str | None
) -> None:
    readable = [
        "/v1/orders/{order_id}",
        "/v1/carts/{cart_id}",
        "/v1/stock/{sku}",
        "/v1/skus/{sku}",
        "/v1/stock/{sku}/ledger",
    ]
    assert location_template(method, path, fields, readable, primary) == expected


async def test_cors_is_off_by_default() -> None:
    async with _client(_app()) as client:
        preflight = await client.options(
            "/v1/widgets",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        plain = await client.get("/healthz", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in plain.headers


async def test_cors_allows_the_configured_origins_only() -> None:
    async with _client(_app([ORIGIN])) as client:
        preflight = await client.options(
            "/v1/widgets",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "idempotency-key" in allowed

        created = await client.post(
            "/v1/widgets",
            json={"name": "b"},
            headers={**_auth(), "Idempotency-Key": "k2", "Origin": ORIGIN},
        )
        assert created.headers["access-control-allow-origin"] == ORIGIN
        exposed = created.headers["access-control-expose-headers"].lower()
        assert "location" in exposed and "idempotent-replayed" in exposed

        # An error answer is readable by the browser too.
        missing = await client.get("/v1/widgets/nope", headers={**_auth(), "Origin": ORIGIN})
        assert missing.status_code == 404
        assert missing.headers["access-control-allow-origin"] == ORIGIN

        other = await client.options(
            "/v1/widgets",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers


def test_origins_are_parsed_and_checked() -> None:
    assert parse_origins("") == []
    assert parse_origins(" https://a.example , http://localhost:5173/ ") == [
        "https://a.example",
        "http://localhost:5173",
    ]
    assert parse_origins("*") == ["*"]
    with pytest.raises(ValueError, match="not scheme"):
        parse_origins("a.example/path")
