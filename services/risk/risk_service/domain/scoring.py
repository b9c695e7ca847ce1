"""Scoring: each rule evaluated on the order, combined with the model into a decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .models import ONE, ZERO, Decision, OrderFacts, Signals, q
from .rules import VELOCITY_DIMENSION, Rule, RuleSet, RuleType


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str
    weight: Decimal
    shadow: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "detail": self.detail,
            "weight": str(self.weight),
            "shadow": self.shadow,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that fired, with its detail (and the blocklist kind, for blocklists)."""

    code: str
    detail: str


def evaluate_rule(rule: Rule, order: OrderFacts, signals: Signals) -> list[Hit]:
    """The hits of one rule on one order (empty when it does not fire)."""
    dim = VELOCITY_DIMENSION.get(rule.type)
    if dim is not None:
        window = int(rule.param("window_seconds"))
        limit = int(rule.param("max_count"))
        count = signals.velocity.get((dim, window))
        if count is not None and count > limit:
            return [
                Hit(
                    rule.code,
                    f"{count} orders per {dim.value} in {window}s (limit {limit})",
                )
            ]
        return []
    if rule.type is RuleType.AMOUNT_VS_HISTORY:
        history = signals.history
        ratio = rule.param("ratio")
        if history.paid_orders >= int(rule.param("min_history")) and history.mean_amount_minor > 0:
            actual = Decimal(order.amount_minor) / history.mean_amount_minor
            if actual > ratio:
                return [
                    Hit(
                        rule.code,
                        f"amount is {actual.quantize(Decimal('0.01'))}x the customer's mean of "
                        f"{history.paid_orders} paid orders (limit {ratio}x)",
                    )
                ]
        return []
    if rule.type is RuleType.NEW_ACCOUNT_LARGE_BASKET:
        minimum = int(rule.param("min_amount_minor"))
        if order.account_created_at is None:
            # Unknown age: new when the rule says so (the default rule set does: a first order
            # from an account nobody can date is the riskiest kind, not the safest).
            if rule.param("unknown_age_is_new") == ONE and order.amount_minor >= minimum:
                return [
                    Hit(
                        rule.code,
                        f"account age unknown (treated as new) with an order of "
                        f"{order.amount_minor} (>= {minimum}) {order.currency}",
                    )
                ]
            return []
        if signals.now is None:
            return []
        age = signals.now - order.account_created_at
        max_age = timedelta(days=float(rule.param("max_account_age_days")))
        if age <= max_age and order.amount_minor >= minimum:
            return [
                Hit(
                    rule.code,
                    f"account {age.days} days old with an order of {order.amount_minor} "
                    f"(>= {minimum}) {order.currency}",
                )
            ]
        return []
    if rule.type is RuleType.COUNTRY_MISMATCH:
        billing, shipping = order.billing_country, order.shipping_country
        if billing and shipping and billing.upper() != shipping.upper():
            return [Hit(rule.code, f"billing country {billing} != shipping country {shipping}")]
        return []
    if rule.type is RuleType.BLOCKLIST:
        return [
            Hit(f"{rule.code}_{kind.value}", f"{kind.value} is blocklisted")
            for kind in sorted(signals.blocklisted)
        ]
    raise AssertionError(f"unhandled rule type {rule.type}")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ModelOutput:
    version: str
    probability: Decimal


@dataclass(frozen=True, slots=True)
class Outcome:
    score: Decimal
    decision: Decision
    reasons: tuple[Reason, ...]


def score_order(
    rules: RuleSet,
    order: OrderFacts,
    signals: Signals,
    model: ModelOutput | None,
    *,
    model_failed: str | None = None,
) -> Outcome:
    """Combine the rules and the model: score = 1 - prod(1 - w) over counted contributions.

    Shadow rules are recorded with weight 0. When the active model failed at scoring time the
    decision is at least ``review`` (fail closed), with a ``model_unavailable`` reason.
    """
    reasons: list[Reason] = []
    keep = ONE
    for rule in rules.rules:
        for hit in evaluate_rule(rule, order, signals):
            if rule.shadow:
                reasons.append(Reason(hit.code, hit.detail + " (shadow)", ZERO, shadow=True))
            else:
                reasons.append(Reason(hit.code, hit.detail, rule.weight))
                keep *= ONE - rule.weight
    if model is not None:
        contribution = q(rules.model_weight * model.probability)
        reasons.append(
            Reason(
                "model_score",
                f"model {model.version}: fraud probability {q(model.probability)}",
                contribution,
            )
        )
        keep *= ONE - contribution
    score = q(ONE - keep)
    decision = rules.decide(score)
    if model_failed is not None:
        reasons.append(Reason("model_unavailable", model_failed, ZERO))
        if decision is Decision.APPROVE:
            decision = Decision.REVIEW
    return Outcome(score, decision, tuple(reasons))


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """A trained model version: its learner, the features it expects (names of
    ``features.FEATURES``), its held-out metrics and the sha256 of its artifact."""

    version: str
    algorithm: str
    features: tuple[str, ...]
    metrics: Mapping[str, str]
    sha256: str
    created_at: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)
