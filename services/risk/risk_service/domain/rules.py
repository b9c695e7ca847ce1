"""Rule sets: the rules of the risk service, validated (every problem reported at once)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ecomops_platform.errors import Unprocessable

from .models import ONE, ZERO, Decision, Dimension


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
        # 1 (default): an account whose age nobody told risk counts as new (fail closed; rule
        # sets stored before this parameter existed get it too); 0: the rule needs a known age.
        "unknown_age_is_new": ParamSpec(ZERO, ONE, True, ONE),
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
            "params": {
                "max_account_age_days": 7,
                "min_amount_minor": 50000,
                "unknown_age_is_new": 1,
            },
        },
        {"code": "country_mismatch", "type": "country_mismatch", "weight": "0.2"},
        {"code": "blocklist", "type": "blocklist", "weight": "1"},
    ],
}
