"""``/api/*``: the session, the overview, the pages' reads and actions (the services' own
endpoints, allow-listed, called with the user's token), and the one composite action (accept a
price suggestion)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from ecomops_platform.auth import Caller, TokenVerifier
from ecomops_platform.errors import Forbidden, NotFound, Unauthenticated, Unprocessable
from ecomops_platform.problems import FastJSONResponse
from ecomops_platform.rest import RequestModel

from . import session as sess
from .overview import MAX_BUCKETS, Overview, bucket_edges
from .settings import ConsoleSettings
from .upstream import SERVICES, UpstreamFailed, Upstreams, unavailable

#: What the pages may call through /api/services/<service>/<path>, by method.
ALLOWED: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    method: [(svc, re.compile(pattern)) for svc, pattern in rules]
    for method, rules in {
        "GET": [
            ("order", r"/v1/orders"),
            ("order", r"/v1/orders/[^/]+"),
            ("order", r"/v1/returns/[^/]+"),
            ("inventory", r"/v1/replenishment/suggestions"),
            ("inventory", r"/v1/inventory/(abc|kpis)"),
            ("inventory", r"/v1/stock/[^/]+(/ledger)?"),
            ("inventory", r"/v1/skus(/[^/]+)?"),
            ("inventory", r"/v1/warehouses"),
            ("pricing", r"/v1/pricing/suggestions"),
            ("pricing", r"/v1/promotions(/[^/]+)?"),
            ("pricing", r"/v1/prices/[^/]+(/history)?"),
            ("risk", r"/v1/reviews(/[^/]+)?"),
            ("risk", r"/v1/rules(/versions)?"),
            ("risk", r"/v1/risk/kpis"),
            ("recommendation", r"/v1/segments"),
            ("recommendation", r"/v1/funnel"),
            ("support", r"/v1/tickets(/[^/]+)?"),
            ("support", r"/v1/support/kpis"),
            ("support", r"/v1/articles"),
        ],
        "POST": [
            ("order", r"/v1/returns/[^/]+/(approve|reject|receive)"),
            ("risk", r"/v1/reviews/[^/]+/decision"),
            ("inventory", r"/v1/stock/adjustments"),
            ("support", r"/v1/tickets/[^/]+/(messages|escalate|deescalate|resolve)"),
        ],
        "PUT": [("pricing", r"/v1/prices/[^/]+")],
    }.items()
}
#: Request headers passed on to a service.
FORWARDED_HEADERS = ("content-type", "idempotency-key", "traceparent")


class SessionOut(BaseModel):
    signed_in: bool
    subject: str | None = None
    role: str | None = None
    expires_at: datetime | None = None
    csrf_token: str | None = None
    oidc: bool = False


class AcceptSuggestionIn(RequestModel):
    currency: str = Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$")
    suggested_price_minor: int = Field(gt=0, le=10**12)


def parse_instant(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Unprocessable(f"{name}: not an ISO 8601 date or date-time: {value!r}") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def window(
    from_: str | None, to: str | None, bucket: str, *, default_days: int = 30
) -> tuple[datetime, datetime]:
    end = parse_instant(to, "to") or datetime.now(UTC)
    start = parse_instant(from_, "from") or end - timedelta(days=default_days)
    if start >= end:
        raise Unprocessable("from must be before to")
    if end - start > timedelta(days=366):
        raise Unprocessable("the window is at most 366 days")
    if len(bucket_edges(start, end, "week" if bucket == "week" else "day")) > MAX_BUCKETS:
        raise Unprocessable(f"at most {MAX_BUCKETS} buckets: use bucket=week or a shorter window")
    return start, end


def build_router(settings: ConsoleSettings, verifier: TokenVerifier, up: Upstreams) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["console"])
    secret = settings.session_secret
    secure = bool(settings.cookie_secure)

    async def signed_in(request: Request) -> tuple[str, Caller]:
        token = sess.session_token(request)
        caller = await sess.ops_caller(verifier, token)
        sess.check_csrf(request, token, secret)
        return token, caller

    @router.post("/session", status_code=204, response_class=Response)
    async def sign_in(
        response: Response,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Sign in with ``Authorization: Bearer <token>`` (role ops): 204 and the session
        cookie (HttpOnly, SameSite=Strict); other roles 403, a bad token 401."""
        if not authorization:
            raise Unauthenticated("send Authorization: Bearer <token>")
        caller = await verifier.verify_header_async(authorization)
        token = authorization.partition(" ")[2].strip()
        await sess.ops_caller(verifier, token)
        del caller
        reply = Response(status_code=204)
        sess.start_session(reply, token, secret=secret, secure=secure)
        return reply

    @router.get("/session", response_model=SessionOut, response_model_exclude_none=True)
    async def get_session(request: Request) -> SessionOut:
        """Who is signed in, and the CSRF token the page sends with every change; without a
        valid session ``signed_in`` is false (200: the page shows its sign-in form)."""
        token = request.cookies.get(sess.SESSION_COOKIE)
        if not token:
            return SessionOut(signed_in=False, oidc=settings.oidc_enabled)
        try:
            caller = await sess.ops_caller(verifier, token)
        except (Unauthenticated, Forbidden):
            return SessionOut(signed_in=False, oidc=settings.oidc_enabled)
        exp = sess.token_expiry(token)
        presented = request.cookies.get(sess.CSRF_COOKIE)
        csrf = (
            presented
            if sess.csrf_valid(secret, token, presented)
            else sess.csrf_token(secret, token)
        )
        return SessionOut(
            signed_in=True,
            subject=caller.subject,
            role=caller.role.value,
            expires_at=datetime.fromtimestamp(exp, UTC) if exp else None,
            csrf_token=csrf,
            oidc=settings.oidc_enabled,
        )

    @router.delete("/session", status_code=204, response_class=Response)
    async def sign_out(request: Request) -> Response:
        """Sign out: the cookies are cleared (the CSRF token is required, as for every change)."""
        token = request.cookies.get(sess.SESSION_COOKIE)
        if token:
            sess.check_csrf(request, token, secret)
        reply = Response(status_code=204)
        sess.end_session(reply, secure=secure)
        return reply

    @router.get("/overview")
    async def overview(
        request: Request,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: Annotated[str | None, Query()] = None,
        bucket: Annotated[Literal["day", "week"], Query()] = "day",
    ) -> Any:
        """The KPIs of the window (default: the last 30 days) and of the previous window of
        equal length, and GMV, orders and conversion per bucket. A service that does not
        answer makes its KPIs null with a reason."""
        token, _ = await signed_in(request)
        start, end = window(from_, to, bucket)
        return FastJSONResponse(await Overview(up, token).build(start, end, bucket))

    @router.get("/risk/series")
    async def risk_series(
        request: Request,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: Annotated[str | None, Query()] = None,
        bucket: Annotated[Literal["day", "week"], Query()] = "day",
    ) -> Any:
        """Fraud KPIs per bucket (assessments, review rate, fraud loss per currency)."""
        import asyncio

        token, _ = await signed_in(request)
        start, end = window(from_, to, bucket)

        async def one(a: datetime, b: datetime) -> dict[str, Any]:
            point: dict[str, Any] = {"from": a.isoformat(), "to": b.isoformat()}
            try:
                body = await up.get_json(
                    "risk", "/v1/risk/kpis", token, **{"from": a.isoformat(), "to": b.isoformat()}
                )
            except UpstreamFailed as exc:
                return {**point, "reason": f"risk service: {exc.reason}"}
            return {
                **point,
                "assessments": body["assessments"],
                "review_rate": float(body["review_rate"]),
                "reject_rate": float(body["reject_rate"]),
                "fraud_loss": body["fraud_loss"],
            }

        points = await asyncio.gather(*(one(a, b) for a, b in bucket_edges(start, end, bucket)))
        return {"from": start.isoformat(), "to": end.isoformat(), "bucket": bucket,
                "points": points}  # fmt: skip

    @router.post("/pricing/suggestions/{sku}/accept")
    async def accept_price_suggestion(request: Request, sku: str, body: AcceptSuggestionIn) -> Any:
        """Accept a price suggestion: the list price is written through pricing (which
        enforces the margin floor: a price under it is refused with its 422)."""
        token, caller = await signed_in(request)
        path = f"/v1/prices/{_segment(sku)}"
        try:
            current = await up.request("pricing", "GET", path, token,
                                       params={"currency": body.currency})  # fmt: skip
            if current.status != 200:
                return _relay(current)
            price = orjson.loads(current.body)
            change = {
                "currency": body.currency,
                "list_price_minor": body.suggested_price_minor,
                "unit_cost_minor": price["unit_cost_minor"],
                "reason": f"price suggestion accepted in the console by {caller.subject}",
            }
            for rate in ("commission_rate", "marketing_cost_rate"):
                if price.get(rate) is not None:
                    change[rate] = price[rate]
            if change["unit_cost_minor"] is None:
                raise Unprocessable("this price has no unit cost: set one in pricing first")
            return _relay(await up.request("pricing", "PUT", path, token, json=change))
        except UpstreamFailed as exc:
            raise unavailable(exc) from exc

    @router.api_route("/services/{service}/{path:path}", methods=["GET", "POST", "PUT"])
    async def service_call(request: Request, service: str, path: str) -> Response:
        """The pages' reads and actions: a call of the service's own REST API (allow-listed)
        with the user's token; the service's answer, problems included, is passed back."""
        token, _ = await signed_in(request)
        # The path as the page sent it (still percent-encoded: a SKU may contain "/").
        raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        prefix = f"/api/services/{service}/"
        target = raw[len(prefix) - 1 :] if raw.startswith(prefix) else "/" + _segment(path)
        segments = [unquote(s) for s in target.split("/")[1:]]
        if (
            any(s in (".", "..", "") for s in segments)
            or service not in SERVICES
            or not any(
                svc == service and rule.fullmatch(target)
                for svc, rule in ALLOWED.get(request.method, [])
            )
        ):
            raise NotFound(f"the console does not offer {request.method} {service} {target}")
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        body = await request.body() if request.method != "GET" else None
        try:
            reply = await up.request(
                service, request.method, target, token,
                params=list(request.query_params.multi_items()), content=body, headers=headers,
            )  # fmt: skip
        except UpstreamFailed as exc:
            raise unavailable(exc) from exc
        return _relay(reply)

    return router


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _relay(reply: Any) -> Response:
    return Response(
        content=reply.body,
        status_code=reply.status,
        media_type=reply.content_type,
        headers=reply.headers,
    )
