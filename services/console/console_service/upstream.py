"""Calls to the six services' REST APIs on the signed-in user's behalf (their bearer token)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from ecomops_platform.errors import DependencyUnavailable

SERVICES = ("order", "inventory", "pricing", "recommendation", "risk", "support")


class UpstreamFailed(Exception):
    """A service did not answer usefully: ``reason`` says why, in words for the page."""

    def __init__(self, service: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.status = status


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


class Upstreams:
    def __init__(
        self,
        urls: dict[str, str],
        timeout: float,
        concurrency: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = urls
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, transport=transport
        )
        self.limit = asyncio.Semaphore(concurrency)

    async def close(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        token: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One call; a service that cannot be reached or times out raises UpstreamFailed."""
        send = {"Authorization": f"Bearer {token}", **(headers or {})}
        try:
            async with self.limit:
                resp = await self.client.request(
                    method,
                    self.urls[service] + path,
                    params=params,
                    json=json,
                    content=content,
                    headers=send,
                )
        except httpx.TimeoutException as exc:
            raise UpstreamFailed(service, f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailed(service, f"unreachable ({type(exc).__name__})") from exc
        kept = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() in ("location", "idempotent-replayed", "retry-after")
        }
        return Reply(
            resp.status_code,
            resp.content,
            resp.headers.get("content-type", "application/json"),
            kept,
        )

    async def get_json(self, service: str, path: str, token: str, **params: Any) -> Any:
        """A GET whose 200 JSON body is returned; anything else raises UpstreamFailed."""
        reply = await self.request(
            service, "GET", path, token, params={k: v for k, v in params.items() if v is not None}
        )
        if reply.status != 200:
            raise UpstreamFailed(service, _describe(reply), reply.status)
        import orjson

        try:
            return orjson.loads(reply.body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamFailed(service, "answered with a body that is not JSON") from exc


def _describe(reply: Reply) -> str:
    import orjson

    try:
        doc = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return f"answered {reply.status}"
    if isinstance(doc, dict) and doc.get("detail"):
        return f"answered {reply.status}: {doc['detail']}"
    return f"answered {reply.status}"


def unavailable(exc: UpstreamFailed) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"the {exc.service} service did not answer: {exc.reason}",
        service=exc.service,
    )
