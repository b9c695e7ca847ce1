"""The basket engine: which promotions apply to a basket, how each discount is shared across
lines, and the combination that gives the customer the most without selling any line below its
margin floor. Pure Python, no I/O; money is integer minor units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .models import PriceTerms, Promotion, PromotionKind, floor_price_minor

# --- the basket engine -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasketLine:
    sku: str
    category: str | None
    quantity: int
    unit_price_minor: int
    # The most discount this line may carry and keep its gross margin at the floor (None: no
    # cap, for callers that price without cost data). See ``line_floor_room``.
    floor_room_minor: int | None = None

    @property
    def gross_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(slots=True)
class LineShare:
    promotion_id: str
    name: str
    discount_minor: int
    coupon_code: str | None


@dataclass(slots=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    promotions: list[LineShare] = field(default_factory=list)


@dataclass(slots=True)
class PricedBasket:
    lines: list[PricedLine]
    subtotal_minor: int
    discount_total_minor: int
    total_minor: int
    applied: list[Promotion]


def _allocate(amount: int, weights: list[int]) -> list[int]:
    """Split ``amount`` over ``weights`` proportionally (largest remainder); each share is at
    most its weight when amount <= sum(weights)."""
    total = sum(weights)
    if total == 0 or amount == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    left = amount - sum(shares)
    for i in remainders:
        if left == 0:
            break
        if shares[i] < weights[i]:
            shares[i] += 1
            left -= 1
    return shares


def promotion_line_discounts(promotion: Promotion, lines: Sequence[BasketLine]) -> list[int]:
    """The discount of one promotion on each line, alone (each at most the line's gross)."""
    in_scope = [promotion.scope.covers(line.sku, line.category) for line in lines]
    if promotion.kind is PromotionKind.PERCENT:
        assert promotion.percent is not None
        return [
            int((Decimal(line.gross_minor) * promotion.percent).to_integral_value(ROUND_HALF_UP))
            if ok
            else 0
            for line, ok in zip(lines, in_scope, strict=True)
        ]
    if promotion.kind is PromotionKind.BUY_X_GET_Y:
        assert promotion.buy_quantity and promotion.get_quantity
        group = promotion.buy_quantity + promotion.get_quantity
        # All units of a line share one price, so "the cheapest units" of a line are any units.
        return [
            (line.quantity // group) * promotion.get_quantity * line.unit_price_minor if ok else 0
            for line, ok in zip(lines, in_scope, strict=True)
        ]
    assert promotion.amount_minor is not None
    weights = [line.gross_minor if ok else 0 for line, ok in zip(lines, in_scope, strict=True)]
    return _allocate(min(promotion.amount_minor, sum(weights)), weights)


def line_floor_room(
    terms: PriceTerms, quantity: int, floor: Decimal, *, unit_price_minor: int | None = None
) -> int:
    """The largest discount on a line of ``quantity`` units whose total keeps the line's gross
    margin at or above ``floor`` (0 when the undiscounted line is already under the floor)."""
    unit = terms.list_price_minor if unit_price_minor is None else unit_price_minor
    gross = unit * quantity
    lowest = floor_price_minor(
        terms.unit_cost_minor * quantity, terms.commission_rate, terms.marketing_cost_rate, floor
    )
    if lowest is None:
        return 0
    return max(0, gross - lowest)


def _line_cap(line: BasketLine, alone: list[tuple[Promotion, int]]) -> int:
    """The most the promotions together may take off one line.

    The margin floor holds for the combination actually applied: the combined discount stops at
    the line's floor room. A promotion that was itself allowed under the floor (with a reason)
    keeps the depth it was allowed alone, never more: stacking adds nothing beyond it.
    """
    if line.floor_room_minor is None:
        return line.gross_minor
    allowed = max((d for p, d in alone if p.allow_below_floor), default=0)
    return min(line.gross_minor, max(line.floor_room_minor, allowed))


def _combine(
    promotions: Sequence[Promotion], lines: Sequence[BasketLine]
) -> tuple[int, list[list[tuple[Promotion, int]]]]:
    """Apply promotions together: per line, shares in promotion order, capped at the gross and
    at the margin floor (``_line_cap``)."""
    alone = [promotion_line_discounts(p, lines) for p in promotions]
    caps = [
        _line_cap(line, [(p, alone[j][i]) for j, p in enumerate(promotions)])
        for i, line in enumerate(lines)
    ]
    per_line: list[list[tuple[Promotion, int]]] = [[] for _ in lines]
    for j, promotion in enumerate(promotions):
        discounts = alone[j]
        for i in range(len(lines)):
            used = sum(d for _, d in per_line[i])
            share = min(discounts[i], caps[i] - used)
            if share > 0:
                per_line[i].append((promotion, share))
    total = sum(d for shares in per_line for _, d in shares)
    return total, per_line


def best_combination(
    candidates: Sequence[Promotion], lines: Sequence[BasketLine]
) -> tuple[int, list[list[tuple[Promotion, int]]]]:
    """The combination with the largest total discount.

    Stackable promotions combine with each other (all of them together is best, since discounts
    are never negative and each line is capped at its gross); a non-stackable promotion applies
    alone. Ties go to the earlier option: the stackable set, then promotions by id.
    """
    ordered = sorted(candidates, key=lambda p: p.id)
    stackable = [p for p in ordered if p.stackable]
    options: list[list[Promotion]] = [stackable] if stackable else []
    options += [[p] for p in ordered if not p.stackable]
    best: tuple[int, list[list[tuple[Promotion, int]]]] = (0, [[] for _ in lines])
    for option in options:
        total, per_line = _combine(option, lines)
        if total > best[0]:
            best = (total, per_line)
    return best


def price_basket(lines: Sequence[BasketLine], candidates: Sequence[Promotion]) -> PricedBasket:
    """Price the basket with the best combination of the (already eligible) promotions."""
    _, per_line = best_combination(candidates, lines)
    priced: list[PricedLine] = []
    applied: dict[str, Promotion] = {}
    for line, shares in zip(lines, per_line, strict=True):
        discount = sum(d for _, d in shares)
        priced.append(
            PricedLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                discount_minor=discount,
                total_minor=line.gross_minor - discount,
                promotions=[LineShare(p.id, p.name, d, p.coupon_code) for p, d in shares],
            )
        )
        for p, _ in shares:
            applied[p.id] = p
    subtotal = sum(line.gross_minor for line in lines)
    discount_total = sum(p.discount_minor for p in priced)
    return PricedBasket(
        lines=priced,
        subtotal_minor=subtotal,
        discount_total_minor=discount_total,
        total_minor=sum(p.total_minor for p in priced),
        applied=sorted(applied.values(), key=lambda p: p.id),
    )
