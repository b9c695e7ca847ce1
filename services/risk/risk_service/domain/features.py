"""Model features of an order: the one function used at scoring time and for training exports.

The risk service stores the feature vector of every assessment (``assessments.features``), so
``ecomops risk export-features`` writes exactly what the model saw at scoring time; a model
trained on that table can be activated because its features are these names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .models import Dimension, OrderFacts, Signals

SHORT_WINDOW = 3600
LONG_WINDOW = 86400

FEATURES: tuple[str, ...] = (
    "log_amount",
    "line_count",
    "total_quantity",
    "max_unit_price_log",
    "account_age_days",
    "account_age_known",
    "country_mismatch",
    "velocity_customer_1h",
    "velocity_customer_24h",
    "velocity_device_1h",
    "velocity_device_24h",
    "velocity_ip_1h",
    "velocity_ip_24h",
    "velocity_payment_fingerprint_1h",
    "velocity_payment_fingerprint_24h",
    "history_paid_orders",
    "amount_to_history_mean",
    "has_email",
    "has_device",
    "has_ip",
    "has_payment_fingerprint",
    "blocklist_hits",
)

FEATURE_WINDOWS: dict[Dimension, tuple[int, int]] = {
    dim: (SHORT_WINDOW, LONG_WINDOW) for dim in Dimension
}


def order_features(order: OrderFacts, signals: Signals) -> dict[str, float]:
    """Numeric features, every name of FEATURES present (unknown values have a sentinel)."""
    out: dict[str, float] = {
        "log_amount": math.log1p(max(0, order.amount_minor)),
        "line_count": float(len(order.lines)),
        "total_quantity": float(sum(line.quantity for line in order.lines)),
        "max_unit_price_log": math.log1p(
            max((line.unit_price_minor for line in order.lines), default=0)
        ),
    }
    if order.account_created_at is not None and signals.now is not None:
        age = (signals.now - order.account_created_at).total_seconds() / 86400
        out["account_age_days"] = max(0.0, age)
        out["account_age_known"] = 1.0
    else:
        out["account_age_days"] = -1.0
        out["account_age_known"] = 0.0
    billing, shipping = order.billing_country, order.shipping_country
    out["country_mismatch"] = float(
        bool(billing and shipping and billing.upper() != shipping.upper())
    )
    for dim in Dimension:
        short, long = FEATURE_WINDOWS[dim]
        out[f"velocity_{dim.value}_1h"] = float(signals.velocity.get((dim, short), 0))
        out[f"velocity_{dim.value}_24h"] = float(signals.velocity.get((dim, long), 0))
    history = signals.history
    out["history_paid_orders"] = float(history.paid_orders)
    out["amount_to_history_mean"] = (
        float(order.amount_minor / history.mean_amount_minor)
        if history.paid_orders and history.mean_amount_minor > 0
        else -1.0
    )
    out["has_email"] = float(bool(order.email))
    out["has_device"] = float(bool(order.device_id))
    out["has_ip"] = float(bool(order.ip))
    out["has_payment_fingerprint"] = float(bool(order.payment_fingerprint))
    out["blocklist_hits"] = float(len(signals.blocklisted))
    return out


def vector(features: Mapping[str, float], names: tuple[str, ...] | list[str]) -> list[float]:
    """The values in the order a model expects; a name the service does not produce is an error."""
    return [float(features[name]) for name in names]
