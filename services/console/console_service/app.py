"""The console's app: the platform's REST conventions (problem documents, /healthz, /readyz,
/metrics, the JSON access log, body limit and rate limit), ``/api/*``, and the built
single-page app with its security headers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecomops_platform.auth import TokenVerifier
from ecomops_platform.errors import DependencyUnavailable, NotFound
from ecomops_platform.rest import create_app
from ecomops_platform.settings import CommonSettings

from .api import build_router
from .oidc import build_oidc_router
from .settings import ConsoleSettings
from .upstream import Upstreams

log = logging.getLogger("ecomops.console")

#: Every answer: no framing (the approve buttons cannot be click-jacked), scripts and styles
#: only from the console itself (inline style attributes: the charts draw with them).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_NOT_PAGES = ("api/", "healthz", "readyz", "metrics", "docs", "openapi.json", "redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_console(
    settings: ConsoleSettings | None = None,
    common: CommonSettings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The app; tests pass ``transport`` (an httpx transport standing in for the services)."""
    settings = settings or ConsoleSettings()
    common = common or CommonSettings()
    verifier = TokenVerifier(common)
    upstreams = Upstreams(
        settings.service_urls(),
        settings.upstream_timeout_seconds,
        settings.upstream_concurrency,
        transport,
    )
    dist = settings.dist_dir()

    async def readiness() -> dict[str, Any]:
        # Ready while the process serves: a service that is down only blanks its KPIs.
        built = (dist / "index.html").is_file()
        return {"ready": True, "checks": {"spa": built}, "degraded": [] if built else ["spa"]}

    routers = [build_router(settings, verifier, upstreams)]
    if settings.oidc_enabled:
        routers.append(build_oidc_router(settings, verifier))
    app = create_app(
        service="console",
        title="ecomops operations console",
        description="The console's backend-for-frontend: sign-in, the overview KPIs and the "
        "pages' calls of the six services, on the signed-in user's behalf.",
        version="0.1.0",
        verifier=verifier,
        readiness=readiness,
        routers=routers,
        max_body_bytes=common.max_body_bytes,
        rate_limit_per_minute=common.rate_limit_per_minute,
        access_log=common.access_log,
    )
    app.add_middleware(SecurityHeaders)
    app.state.upstreams = upstreams
    app.state.settings = settings

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await upstreams.close()

    app.router.lifespan_context = lifespan

    @app.get("/{page:path}", include_in_schema=False)
    async def spa(request: Request, page: str) -> Response:
        """The single-page app: a built file, else index.html (the app routes itself)."""
        if page.startswith(_NOT_PAGES):
            raise NotFound(f"no such resource: /{page}")
        index = dist / "index.html"
        if not index.is_file():
            raise DependencyUnavailable(
                f"the console's page is not built ({dist}): run bash services/console/build.sh"
            )
        candidate = (dist / page).resolve()
        if page and candidate.is_file() and _inside(candidate, dist):
            cache = (
                "public, max-age=31536000, immutable"
                if page.startswith("assets/")
                else ("no-cache")
            )
            return FileResponse(candidate, headers={"cache-control": cache})
        return FileResponse(index, headers={"cache-control": "no-cache"})

    return app


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root.resolve())
    except ValueError:
        return False
    return True
