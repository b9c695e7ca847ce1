"""Risk domain: value objects, rule sets (validated), scoring and the review state machine.

Pure Python: no I/O. Scores and weights are ``Decimal`` in [0, 1], rounded to 4 places.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ecomops_platform.errors import Conflict, Unprocessable

SCORE_PLACES = Decimal("0.0001")
ZERO = Decimal(0)
ONE = Decimal(1)


def q(value: Decimal) -> Decimal:
    """Round a score or weight to 4 places, clamped to [0, 1]."""
    return min(ONE, max(ZERO, value)).quantize(SCORE_PLACES, rounding=ROUND_HALF_EVEN)


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    REJECT = "reject"


class ReviewDecision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    # Closed without a verdict: the order was cancelled or expired while in review.
    CLOSED = "closed"


class BlocklistKind(enum.StrEnum):
    EMAIL = "email"
    IP = "ip"
    DEVICE = "device"
    PAYMENT_FINGERPRINT = "payment_fingerprint"
    CUSTOMER = "customer"


class LabelValue(enum.StrEnum):
    FRAUD = "fraud"
    LEGITIMATE = "legitimate"


class LabelSource(enum.StrEnum):
    CHARGEBACK = "chargeback"
    ANALYST = "analyst"


class Dimension(enum.StrEnum):
    """What velocity is counted per."""

    CUSTOMER = "customer"
    DEVICE = "device"
    IP = "ip"
    PAYMENT_FINGERPRINT = "payment_fingerprint"


def normalise_blocklist_value(kind: BlocklistKind, value: str) -> str:
    value = value.strip()
    if kind is BlocklistKind.EMAIL:
        value = value.lower()
    return value


# --- the order being assessed ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the caller tells about the order (optional fields are None when unknown)."""

    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    lines: tuple[Line, ...]
    email: str | None = None
    ip: str | None = None
    device_id: str | None = None
    payment_fingerprint: str | None = None
    billing_country: str | None = None
    shipping_country: str | None = None
    account_created_at: datetime | None = None

    def dimensions(self) -> dict[Dimension, str]:
        """The velocity keys this order counts towards."""
        dims = {Dimension.CUSTOMER: self.customer_id}
        if self.device_id:
            dims[Dimension.DEVICE] = self.device_id
        if self.ip:
            dims[Dimension.IP] = self.ip
        if self.payment_fingerprint:
            dims[Dimension.PAYMENT_FINGERPRINT] = self.payment_fingerprint
        return dims

    def blocklist_keys(self) -> dict[BlocklistKind, str]:
        keys = {BlocklistKind.CUSTOMER: self.customer_id}
        if self.email:
            keys[BlocklistKind.EMAIL] = normalise_blocklist_value(BlocklistKind.EMAIL, self.email)
        if self.ip:
            keys[BlocklistKind.IP] = self.ip.strip()
        if self.device_id:
            keys[BlocklistKind.DEVICE] = self.device_id.strip()
        if self.payment_fingerprint:
            keys[BlocklistKind.PAYMENT_FINGERPRINT] = self.payment_fingerprint.strip()
        return keys


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """Paid orders of the customer in the order's currency (before this order)."""

    paid_orders: int = 0
    mean_amount_minor: Decimal = ZERO
    max_amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class Signals:
    """What the service knows beside the order: velocity counts, history, blocklist hits."""

    # (dimension, window seconds) -> orders in the window, this one included.
    velocity: Mapping[tuple[Dimension, int], int] = field(default_factory=dict)
    history: CustomerHistory = field(default_factory=CustomerHistory)
    blocklisted: frozenset[BlocklistKind] = frozenset()
    now: datetime | None = None


# --- rule sets --------------------------------------------------------------------------------


class RuleType(enum.StrEnum):
    VELOCITY_CUSTOMER = "velocity_customer"
    VELOCITY_DEVICE = "velocity_device"
    VELOCITY_IP = "velocity_ip"
    VELOCITY_PAYMENT_FINGERPRINT = "velocity_payment_fingerprint"
    AMOUNT_VS_HISTORY = "amount_vs_history"
    NEW_ACCOUNT_LARGE_BASKET = "new_account_large_basket"
    COUNTRY_MISMATCH = "country_mismatch"
    BLOCKLIST = "blocklist"


VELOCITY_DIMENSION: dict[RuleType, Dimension] = {
    RuleType.VELOCITY_CUSTOMER: Dimension.CUSTOMER,
    RuleType.VELOCITY_DEVICE: Dimension.DEVICE,
    RuleType.VELOCITY_IP: Dimension.IP,
    RuleType.VELOCITY_PAYMENT_FINGERPRINT: Dimension.PAYMENT_FINGERPRINT,
}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    minimum: Decimal
    maximum: Decimal
    integer: bool
    default: Decimal


_VELOCITY_PARAMS = {
    "window_seconds": ParamSpec(Decimal(60), Decimal(30 * 86400), True, Decimal(3600)),
    "max_count": ParamSpec(ONE, Decimal(100_000), True, Decimal(5)),
}

PARAM_SPECS: dict[RuleType, dict[str, ParamSpec]] = {
    RuleType.VELOCITY_CUSTOMER: _VELOCITY_PARAMS,
    RuleType.VELOCITY_DEVICE: _VELOCITY_PARAMS,
    RuleType.VELOCITY_IP: _VELOCITY_PARAMS,
    RuleType.VELOCITY_PAYMENT_FINGERPRINT: _VELOCITY_PARAMS,
    RuleType.AMOUNT_VS_HISTORY: {
        "ratio": ParamSpec(ONE, Decimal(1000), False, Decimal(3)),
        "min_history": ParamSpec(ONE, Decimal(1000), True, Decimal(2)),
    },
    RuleType.NEW_ACCOUNT_LARGE_BASKET: {
        "max_account_age_days": ParamSpec(ZERO, Decimal(3650), False, Decimal(7)),
        "min_amount_minor": ParamSpec(ZERO, Decimal(10**15), True, Decimal(50_000)),
    },
    RuleType.COUNTRY_MISMATCH: {},
    RuleType.BLOCKLIST: {},
}


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    type: RuleType
    weight: Decimal
    shadow: bool = False
    params: Mapping[str, Decimal] = field(default_factory=dict)

    def param(self, name: str) -> Decimal:
        value = self.params.get(name)
        return PARAM_SPECS[self.type][name].default if value is None else value

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "type": self.type.value,
            "weight": str(self.weight),
            "shadow": self.shadow,
            "params": {k: str(v) for k, v in sorted(self.params.items())},
        }


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: int
    review_threshold: Decimal
    reject_threshold: Decimal
    model_weight: Decimal
    rules: tuple[Rule, ...]
    created_by: str = "system"
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored definition (version and audit fields are columns)."""
        return {
            "review_threshold": str(self.review_threshold),
            "reject_threshold": str(self.reject_threshold),
            "model_weight": str(self.model_weight),
            "rules": [r.to_json() for r in self.rules],
        }

    def velocity_windows(self) -> dict[Dimension, set[int]]:
        """Which (dimension, window) counts the rules need."""
        out: dict[Dimension, set[int]] = {}
        for rule in self.rules:
            dim = VELOCITY_DIMENSION.get(rule.type)
            if dim is not None:
                out.setdefault(dim, set()).add(int(rule.param("window_seconds")))
        return out

    def decide(self, score: Decimal) -> Decision:
        if score >= self.reject_threshold:
            return Decision.REJECT
        if score >= self.review_threshold:
            return Decision.REVIEW
        return Decision.APPROVE


def _decimal(value: Any, where: str, errors: list[dict[str, str]]) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        errors.append({"location": where, "message": "must be a number"})
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.append({"location": where, "message": f"{value!r} is not a number"})
        return None
    if not result.is_finite():
        errors.append({"location": where, "message": "must be finite"})
        return None
    return result


def _unit_interval(value: Any, where: str, errors: list[dict[str, str]]) -> Decimal | None:
    result = _decimal(value, where, errors)
    if result is not None and not ZERO <= result <= ONE:
        errors.append({"location": where, "message": f"must be between 0 and 1, got {result}"})
        return None
    return result


def parse_rule_set(
    raw: Mapping[str, Any], *, version: int, created_by: str, created_at: datetime | None = None
) -> RuleSet:
    """Validate a rule set definition; every problem is reported at once (422)."""
    errors: list[dict[str, str]] = []
    review = _unit_interval(raw.get("review_threshold"), "review_threshold", errors)
    reject = _unit_interval(raw.get("reject_threshold"), "reject_threshold", errors)
    model_weight = _unit_interval(raw.get("model_weight", "0"), "model_weight", errors)
    # A threshold of 0 is met by every score, even a clean order's: it would review or reject
    # everything, which no analyst means to do.
    for name, value in (("review_threshold", review), ("reject_threshold", reject)):
        if value is not None and value <= 0:
            errors.append(
                {"location": name, "message": "must be greater than 0 (0 matches every order)"}
            )
    if review is not None and reject is not None and reject < review:
        errors.append(
            {
                "location": "reject_threshold",
                "message": f"must be >= review_threshold ({review}), got {reject}",
            }
        )
    raw_rules = raw.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw_rules, Sequence) or isinstance(raw_rules, str | bytes):
        errors.append({"location": "rules", "message": "must be a list of rules"})
        raw_rules = []
    seen: set[str] = set()
    for i, item in enumerate(raw_rules):
        where = f"rules.{i}"
        if not isinstance(item, Mapping):
            errors.append({"location": where, "message": "must be an object"})
            continue
        unknown_fields = set(item) - {"code", "type", "weight", "shadow", "params"}
        if unknown_fields:
            errors.append(
                {
                    "location": where,
                    "message": f"unknown fields: {', '.join(sorted(unknown_fields))}",
                }
            )
        try:
            rule_type = RuleType(str(item.get("type")))
        except ValueError:
            known = ", ".join(t.value for t in RuleType)
            errors.append(
                {
                    "location": f"{where}.type",
                    "message": f"unknown rule type {item.get('type')!r}; known: {known}",
                }
            )
            continue
        code = str(item.get("code") or rule_type.value).strip()
        if not code or len(code) > 64 or not all(c.isalnum() or c in "_-." for c in code):
            errors.append(
                {"location": f"{where}.code", "message": "must be 1..64 of [A-Za-z0-9_.-]"}
            )
        elif code in seen:
            errors.append({"location": f"{where}.code", "message": f"duplicate rule code {code!r}"})
        seen.add(code)
        weight = _unit_interval(item.get("weight"), f"{where}.weight", errors)
        shadow = item.get("shadow", False)
        if not isinstance(shadow, bool):
            errors.append({"location": f"{where}.shadow", "message": "must be true or false"})
            shadow = False
        raw_params = item.get("params") or {}
        params: dict[str, Decimal] = {}
        if not isinstance(raw_params, Mapping):
            errors.append({"location": f"{where}.params", "message": "must be an object"})
            raw_params = {}
        specs = PARAM_SPECS[rule_type]
        for name, value in raw_params.items():
            spec = specs.get(name)
            pwhere = f"{where}.params.{name}"
            if spec is None:
                allowed = ", ".join(sorted(specs)) or "none"
                errors.append(
                    {
                        "location": pwhere,
                        "message": f"unknown parameter for {rule_type.value}; allowed: {allowed}",
                    }
                )
                continue
            number = _decimal(value, pwhere, errors)
            if number is None:
                continue
            if spec.integer and number != number.to_integral_value():
                errors.append({"location": pwhere, "message": "must be a whole number"})
            elif not spec.minimum <= number <= spec.maximum:
                errors.append(
                    {
                        "location": pwhere,
                        "message": f"must be between {spec.minimum} and {spec.maximum}",
                    }
                )
            else:
                params[name] = number
        if weight is not None:
            rules.append(Rule(code, rule_type, weight, shadow, params))
    if errors:
        summary = "; ".join(f"{e['location']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(
            f"invalid rule set: {summary}",
            code="invalid-rule-set",
            title="Invalid rule set",
            errors=errors,
        )
    assert review is not None and reject is not None and model_weight is not None
    return RuleSet(version, review, reject, model_weight, tuple(rules), created_by, created_at)


DEFAULT_RULE_SET: dict[str, Any] = {
    "review_threshold": "0.3",
    "reject_threshold": "0.8",
    "model_weight": "0.5",
    "rules": [
        {
            "code": "velocity_customer",
            "type": "velocity_customer",
            "weight": "0.4",
            "params": {"window_seconds": 3600, "max_count": 5},
        },
        {
            "code": "velocity_device",
            "type": "velocity_device",
            "weight": "0.3",
            "params": {"window_seconds": 3600, "max_count": 5},
        },
        {
            "code": "velocity_ip",
            "type": "velocity_ip",
            "weight": "0.3",
            "params": {"window_seconds": 3600, "max_count": 10},
        },
        {
            "code": "velocity_payment_fingerprint",
            "type": "velocity_payment_fingerprint",
            "weight": "0.4",
            "params": {"window_seconds": 86400, "max_count": 5},
        },
        {
            "code": "amount_vs_history",
            "type": "amount_vs_history",
            "weight": "0.3",
            "params": {"ratio": 3, "min_history": 2},
        },
        {
            "code": "new_account_large_basket",
            "type": "new_account_large_basket",
            "weight": "0.35",
            "params": {"max_account_age_days": 7, "min_amount_minor": 50000},
        },
        {"code": "country_mismatch", "type": "country_mismatch", "weight": "0.2"},
        {"code": "blocklist", "type": "blocklist", "weight": "1"},
    ],
}


# --- evaluation -------------------------------------------------------------------------------


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
        if order.account_created_at is None or signals.now is None:
            return []
        age = signals.now - order.account_created_at
        max_age = timedelta(days=float(rule.param("max_account_age_days")))
        minimum = int(rule.param("min_amount_minor"))
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


# --- review cases -----------------------------------------------------------------------------


def ensure_open(
    status: ReviewStatus, decision: str | None, review_id: str, close_reason: str | None = None
) -> None:
    """A review case is decided once: open -> resolved (or closed with its order), never back."""
    if status is ReviewStatus.CLOSED:
        raise Conflict(
            f"review {review_id} was closed: its order was cancelled ({close_reason})",
            code="review-closed",
            title="Review closed",
            close_reason=close_reason,
        )
    if status is not ReviewStatus.OPEN:
        raise Conflict(
            f"review {review_id} is already resolved ({decision})",
            code="review-already-resolved",
            title="Review already resolved",
            decision=decision,
        )
