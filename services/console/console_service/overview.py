"""``GET /api/overview``: the shop's KPIs for a window and the previous window of equal length,
gathered from the services' KPI endpoints, with a time series per bucket.

Sources: order (GMV, orders, AOV, repurchase, abandonment, cancellation and return rates, and
the series' GMV and orders per bucket), recommendation (the funnel view → cart → order → paid
and the series' conversion), inventory (turnover, stock-out rate), risk (fraud loss rate,
review rate). A service that does not answer makes its KPIs ``null`` with a ``reason``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from .upstream import UpstreamFailed, Upstreams

Bucket = Literal["day", "week"]
MAX_BUCKETS = 120
T = TypeVar("T")

#: KPI name → (service, unit).
KPIS: dict[str, tuple[str, str]] = {
    "gmv": ("order", "money"),
    "orders": ("order", "count"),
    "paid_orders": ("order", "count"),
    "aov": ("order", "money"),
    "repurchase_rate": ("order", "rate"),
    "cart_abandonment_rate": ("order", "rate"),
    "cancellation_rate": ("order", "rate"),
    "return_rate": ("order", "rate"),
    "conversion_rate": ("recommendation", "rate"),
    "inventory_turnover": ("inventory", "ratio"),
    "stock_out_rate": ("inventory", "rate"),
    "fraud_loss_rate": ("risk", "rate_by_currency"),
    "review_rate": ("risk", "rate"),
}


def _rate(value: Any) -> float | None:
    return None if value is None else float(value)


def bucket_edges(start: datetime, end: datetime, bucket: Bucket) -> list[tuple[datetime, datetime]]:
    step = timedelta(days=1 if bucket == "day" else 7)
    edges = []
    at = start
    while at < end:
        edges.append((at, min(at + step, end)))
        at += step
    return edges


async def _settle(aw: Awaitable[T]) -> T | UpstreamFailed:
    try:
        return await aw
    except UpstreamFailed as exc:
        return exc


class Overview:
    def __init__(self, upstreams: Upstreams, token: str) -> None:
        self.up = upstreams
        self.token = token

    def _iso(self, at: datetime) -> str:
        return at.astimezone(UTC).isoformat()

    async def _order(self, start: datetime, end: datetime) -> dict[str, Any]:
        window = {"from": self._iso(start), "to": self._iso(end)}
        body = await self.up.get_json("order", "/v1/orders/kpis", self.token, **window)
        return {
            "gmv": body["gmv"],
            "orders": body["orders"],
            "paid_orders": body["paid_orders"],
            "aov": body["average_order_value"],
            "repurchase_rate": _rate(body["repurchase_rate"]),
            "cart_abandonment_rate": _rate(body["cart_abandonment_rate"]),
            "cancellation_rate": _rate(body["cancellation_rate"]),
            "return_rate": _rate(body["return_rate"]),
        }

    async def _funnel(self, start: datetime, end: datetime) -> dict[str, Any]:
        body = await self.up.get_json(
            "recommendation", "/v1/funnel", self.token,
            **{"from": self._iso(start), "to": self._iso(end)},
        )  # fmt: skip
        return {
            "steps": [
                {"step": "view", "count": body["views"], "rate": None},
                {"step": "cart", "count": body["add_to_carts"],
                 "rate": _rate(body["view_to_cart_rate"])},
                {"step": "order", "count": body["orders"],
                 "rate": _rate(body["cart_to_order_rate"])},
                {"step": "paid", "count": body["paid"], "rate": _rate(body["order_to_paid_rate"])},
            ],
            "conversion_rate": _rate(body["view_to_paid_rate"]),
        }  # fmt: skip

    async def _inventory(self, start: datetime, end: datetime) -> dict[str, Any]:
        # Inventory counts whole days, both ends included.
        last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
        body = await self.up.get_json(
            "inventory", "/v1/inventory/kpis", self.token,
            **{"from": start.astimezone(UTC).date().isoformat(), "to": last.isoformat()},
        )  # fmt: skip
        return {
            "inventory_turnover": float(body["inventory_turnover"]),
            "stock_out_rate": float(body["stock_out_rate"]),
        }

    async def _risk(self, start: datetime, end: datetime) -> dict[str, Any]:
        body = await self.up.get_json(
            "risk", "/v1/risk/kpis", self.token, **{"from": self._iso(start), "to": self._iso(end)}
        )
        return {
            "fraud_loss_rate": [
                {
                    "currency": row["currency"],
                    "rate": float(row["fraud_loss_rate"]),
                    "fraud_loss_minor": row["fraud_loss_minor"],
                    "gmv_approved_minor": row["gmv_approved_minor"],
                }
                for row in body["fraud_loss"]
            ],
            "review_rate": _rate(body["review_rate"]),
        }

    async def window(self, start: datetime, end: datetime) -> dict[str, Any]:
        order, funnel, inventory, risk = await asyncio.gather(
            _settle(self._order(start, end)),
            _settle(self._funnel(start, end)),
            _settle(self._inventory(start, end)),
            _settle(self._risk(start, end)),
        )
        values: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        for service, result in (
            ("order", order), ("recommendation", funnel), ("inventory", inventory), ("risk", risk)
        ):  # fmt: skip
            if isinstance(result, UpstreamFailed):
                reasons[service] = f"{service} service: {result.reason}"
            else:
                values.update(result)
        return {"values": values, "reasons": reasons}

    async def series(self, start: datetime, end: datetime, bucket: Bucket) -> dict[str, Any]:
        edges = bucket_edges(start, end, bucket)
        orders = await asyncio.gather(*(_settle(self._order(a, b)) for a, b in edges))
        funnels = await asyncio.gather(*(_settle(self._funnel(a, b)) for a, b in edges))
        points = []
        reasons: dict[str, str] = {}
        for (a, b), o, f in zip(edges, orders, funnels, strict=True):
            if isinstance(o, UpstreamFailed):
                reasons["order"] = f"order service: {o.reason}"
            if isinstance(f, UpstreamFailed):
                reasons["recommendation"] = f"recommendation service: {f.reason}"
            points.append(
                {
                    "from": self._iso(a),
                    "to": self._iso(b),
                    "gmv": None if isinstance(o, UpstreamFailed) else o["gmv"],
                    "orders": None if isinstance(o, UpstreamFailed) else o["orders"],
                    "conversion_rate": (
                        None if isinstance(f, UpstreamFailed) else f["conversion_rate"]
                    ),
                }
            )
        return {"points": points, "reasons": reasons}

    async def build(self, start: datetime, end: datetime, bucket: Bucket) -> dict[str, Any]:
        length = end - start
        prev_start = start - length
        current, previous, series = await asyncio.gather(
            self.window(start, end),
            self.window(prev_start, start),
            self.series(start, end, bucket),
        )
        kpis: dict[str, Any] = {}
        for name, (service, unit) in KPIS.items():
            reason = current["reasons"].get(service)
            kpis[name] = {
                "value": current["values"].get(name),
                "previous": previous["values"].get(name),
                "unit": unit,
                "source": service,
                "reason": reason or previous["reasons"].get(service),
            }
        return {
            "from": self._iso(start),
            "to": self._iso(end),
            "bucket": bucket,
            "previous": {"from": self._iso(prev_start), "to": self._iso(start)},
            "kpis": kpis,
            "funnel": {
                "steps": current["values"].get("steps"),
                "previous_steps": previous["values"].get("steps"),
                "reason": current["reasons"].get("recommendation"),
            },
            "series": series["points"],
            "unavailable": {**previous["reasons"], **current["reasons"], **series["reasons"]},
        }
