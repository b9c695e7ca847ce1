"""``Location`` on every 201: where the resource a POST or PUT created is read.

The template of each operation's ``Location`` is derived once from the service's own OpenAPI
document (:func:`locations_of`), and :class:`LocationMiddleware` fills it at run time from the
request's path parameters and the JSON answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _params(template: str) -> list[str]:
    return _PARAM.findall(template)


def _segments(template: str) -> list[str]:
    return [s for s in template.split("/") if s]


def location_template(
    method: str, path: str, fields: set[str], readable: Sequence[str], primary: str | None = None
) -> str | None:
    """Where the resource a 201 of ``method path`` created is read: one of the ``readable``
    GET templates, filled at run time from the request's path parameters and the answer's
    top-level ``fields``.

    PUT creates the resource at its own URI. Otherwise: the readable template ending with the
    answer's own id (``primary``, e.g. ``order_id`` for ``OrderView``) filled from the path
    and the answer (``POST /v1/carts/{cart_id}/checkout`` → ``/v1/orders/{order_id}``,
    ``POST /v1/orders/{order_id}/payments`` → ``/v1/orders/{order_id}``); else the readable
    template whose new parameters all are fields of the answer (``POST /v1/stock/adjustments``
    → ``/v1/stock/{sku}``), the closest to the route's own path first; else the longest
    readable template the route's path lies under.
    """
    if method.upper() == "PUT":
        return path
    own = set(_params(path))
    mine = _segments(path)
    if primary:
        named = [
            t for t in readable if _params(t)[-1:] == [primary] and set(_params(t)) <= own | fields
        ]
        if named:
            return min(named, key=lambda t: len(_segments(t)))
    best: tuple[int, int, str] | None = None
    for template in readable:
        new = set(_params(template)) - own
        if not new or not new <= fields:
            continue
        shared = 0
        for a, b in zip(_segments(template), mine, strict=False):
            if a != b:
                break
            shared += 1
        if best is None or (shared, -len(new)) > best[:2]:
            best = (shared, -len(new), template)
    if best is not None:
        return best[2]
    parents = [t for t in readable if _segments(t) == mine[: len(_segments(t))]]
    return max(parents, key=lambda t: len(_segments(t))) if parents else None


def _schema_fields(doc: dict[str, Any], schema: dict[str, Any]) -> tuple[set[str], str | None]:
    """The top-level fields of a response schema, and the name of its own id: ``OrderView``
    → ``order_id``, ``LedgerEntryOut`` → ``ledger_entry_id``."""
    ref = schema.get("$ref")
    primary = None
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        schema = doc.get("components", {}).get("schemas", {}).get(name, {})
        stem = re.sub(r"(View|Out|Response)$", "", name)
        primary = re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower() + "_id"
    return set(schema.get("properties", {})), primary


def locations_of(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(METHOD, path template) of every ``/v1/`` operation answering 201 → the template of
    its ``Location`` (see :func:`location_template`)."""
    paths: dict[str, Any] = doc.get("paths", {})
    readable = [p for p, item in paths.items() if p.startswith("/v1/") and "get" in item]
    found: dict[tuple[str, str], str] = {}
    for path, item in paths.items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            created = op.get("responses", {}).get("201") if isinstance(op, dict) else None
            if created is None:
                continue
            schema = created.get("content", {}).get("application/json", {}).get("schema", {})
            fields, primary = _schema_fields(doc, schema)
            template = location_template(method, path, fields, readable, primary)
            if template is not None:
                found[(method.upper(), path)] = template
    return found


def _fill(template: str, values: dict[str, Any]) -> str | None:
    missing = False

    def one(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None or isinstance(value, dict | list):
            missing = True
            return ""
        return quote(str(value), safe="")

    path = _PARAM.sub(one, template)
    return None if missing else path


class LocationMiddleware:
    """``Location`` on every 201: the created resource's path (under the root path), read
    from the request's path parameters and the JSON answer, unless the route set one."""

    def __init__(self, app: ASGIApp, locations: Callable[[], dict[tuple[str, str], str]]) -> None:
        self.app = app
        self.locations = locations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message.get("status") == 201:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = list(start.get("headers", []))
            if not any(name.lower() == b"location" for name, _ in headers):
                location = self._location(scope, body)
                if location is not None:
                    headers.append((b"location", location.encode("latin-1")))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)

    def _location(self, scope: Scope, body: bytes) -> str | None:
        route = getattr(scope.get("route"), "path", None)
        template = self.locations().get((scope["method"], route)) if route else None
        if template is None:
            return None
        values: dict[str, Any] = {}
        try:
            document = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict):
            values.update(document)
        values.update(scope.get("path_params") or {})
        path = _fill(template, values)
        return None if path is None else str(scope.get("root_path", "")) + path


def install_locations(app: FastAPI) -> None:
    table: dict[tuple[str, str], str] | None = None

    def locations() -> dict[tuple[str, str], str]:
        nonlocal table
        if table is None:
            table = locations_of(app.openapi())
        return table

    app.add_middleware(LocationMiddleware, locations=locations)
