"""How ``ecomops demo seed`` talks to a running local stack (the services' public APIs, with
tokens of the stack's issuer), and how it shows its progress."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx

from .history_import import (
    service_url,
)

T = TypeVar("T")


# --- talking to the stack ----------------------------------------------------------------------
class DemoError(Exception):
    pass


class Stack:
    def __init__(self, client: httpx.AsyncClient, seed: int, concurrency: int = 12) -> None:
        self.client = client
        self.seed = seed
        self.url = {
            s: service_url(s) for s in ("order", "inventory", "pricing", "recommendation", "risk")
        }
        self.limit = asyncio.Semaphore(concurrency)
        secret = os.environ.get("ECOMOPS_JWT_SECRET")
        if not secret:
            raise DemoError(
                "ECOMOPS_JWT_SECRET is not set and no local stack env was found (.local/run/env):"
                " start the stack with 'make run' first"
            )
        self.secret = secret
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, subject: str, role: str) -> dict[str, str]:
        key = (subject, role)
        if key not in self._tokens:
            from .auth import mint_token

            self._tokens[key] = mint_token(
                self.secret,
                subject,
                role,
                ttl_seconds=3600,
                issuer=os.environ.get("ECOMOPS_JWT_ISSUER", "ecomops"),
                audience=os.environ.get("ECOMOPS_JWT_AUDIENCE", "ecomops"),
            )
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-demo", "ops")

    def key(self, *parts: object) -> dict[str, str]:
        """An Idempotency-Key derived from the seed. Parts are joined with "_": digits joined
        with "-" could read as a card number, which every service refuses."""
        return {"Idempotency-Key": "demo_" + "_".join(str(p) for p in (self.seed, *parts))}

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok: Iterable[int] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """One request; 429/503 and transport errors are retried (every write here is
        idempotent: PUTs, Idempotency-Keys, or moves guarded by the current status)."""
        delay = 0.2
        for attempt in range(6):
            try:
                async with self.limit:
                    resp = await self.client.request(
                        method,
                        self.url[service] + path,
                        headers=headers or self.ops,
                        json=json,
                        params=params,
                    )
            except httpx.TransportError as exc:
                if attempt == 5:
                    raise DemoError(
                        f"{service} at {self.url[service]} unreachable: {exc}"
                    ) from None
            else:
                if resp.status_code not in (429, 502, 503, 504) or attempt == 5:
                    if resp.status_code not in ok:
                        raise DemoError(
                            f"{method} {service}{path}: {resp.status_code} {resp.text[:300]}"
                        )
                    return resp
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def ready(self) -> None:
        for service, url in self.url.items():
            try:
                resp = await self.client.get(url + "/readyz", timeout=5)
            except httpx.TransportError:
                raise DemoError(
                    f"{service} is not running at {url}: start the stack with 'make run'"
                ) from None
            if resp.status_code != 200:
                raise DemoError(f"{service} at {url} is not ready ({resp.status_code})")


async def gather(items: Iterable[T], fn: Callable[[T], Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*(fn(i) for i in items)))


# --- the steps ----------------------------------------------------------------------------------
class Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.perf_counter()
        self.facts: list[str] = []

    def step(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {text}", flush=True)

    def note(self, text: str) -> None:
        self.facts.append(text)
        self.step(text)
