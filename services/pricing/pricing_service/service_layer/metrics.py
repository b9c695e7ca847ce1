"""Business metrics of the pricing service (Prometheus, on /metrics beside the platform's)."""

from __future__ import annotations

from prometheus_client import Counter

quotes_total = Counter("pricing_quotes_total", "Quotes created", ["currency", "discounted"])
redemptions_total = Counter(
    "pricing_redemptions_total",
    "RedeemQuote outcomes (redeemed, replayed, refused: a promotion could not be redeemed)",
    ["outcome"],
)
uses_released_total = Counter(
    "pricing_uses_released_total",
    "Promotion uses given back, by cause (rpc, order_cancelled, order_rejected, unconfirmed)",
    ["cause"],
)
