"""Planning rules of the operations playbook: safety stock, reorder point, order quantity,
days of cover and ABC classes. Pure functions (Decimal for shares, ints for units)."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import NormalDist

import numpy as np
import numpy.typing as npt


class AbcClass(enum.StrEnum):
    A = "A"
    B = "B"
    C = "C"


def replenishment_mode(abc: AbcClass | None) -> str:
    if abc is AbcClass.A:
        return "just_in_time"
    if abc is AbcClass.C:
        return "batch"
    return "standard"


def z_score(service_level: Decimal | float) -> float:
    """The standard normal quantile for a cycle service level (0.95 → 1.645)."""
    level = float(service_level)
    if not 0.0 < level < 1.0:
        raise ValueError("service level must be in (0, 1)")
    return NormalDist().inv_cdf(level)


def safety_stock(sigma_daily: float, lead_time_days: int, service_level: Decimal | float) -> int:
    """z · σ_d · √L, rounded up (0 when σ_d is 0 or lead time is zero). The planning job's σ_d
    comes from the forecaster's errors (see :func:`safety_stock_from_errors`)."""
    if sigma_daily <= 0 or lead_time_days <= 0:
        return 0
    return max(
        0, math.ceil(z_score(service_level) * sigma_daily * math.sqrt(lead_time_days) - 1e-9)
    )


def safety_stock_from_errors(
    lead_time_errors: Sequence[float] | npt.NDArray[np.float64], service_level: Decimal | float
) -> float:
    """Safety stock from the distribution of forecast errors: the ``service_level`` quantile of
    the lead-time errors (actual minus forecast demand summed over the lead time, one per rolling
    origin), at least 0. Stocking forecast + this covers lead-time demand in that share of the
    past origins — whatever the shape of the errors (skewed for intermittent demand) and however
    much demand itself varies when the forecaster anticipates it (a weekly pattern)."""
    level = float(service_level)
    if not 0.0 < level < 1.0:
        raise ValueError("service level must be in (0, 1)")
    errors = np.asarray(lead_time_errors, dtype=np.float64)
    if errors.size == 0:
        return 0.0
    return max(0.0, float(np.quantile(errors, level)))


def equivalent_daily_sigma(
    safety: float, lead_time_days: int, service_level: Decimal | float
) -> float:
    """The σ_d for which :func:`safety_stock` gives ``safety`` at this lead time and service
    level: how the planning job caches an error-quantile safety stock in the σ_d column."""
    z = z_score(service_level)
    if safety <= 0 or lead_time_days <= 0 or z <= 0:
        return 0.0
    return safety / (z * math.sqrt(lead_time_days))


def reorder_point(lead_time_demand: float, safety: int) -> int:
    return max(0, math.ceil(lead_time_demand - 1e-9) + safety)


def eoq(annual_demand: float, ordering_cost: int, holding_cost_per_unit_year: int) -> int:
    """Economic order quantity √(2DS/H), at least one unit when there is demand."""
    if annual_demand <= 0 or holding_cost_per_unit_year <= 0:
        return 0
    return max(1, round(math.sqrt(2 * annual_demand * ordering_cost / holding_cost_per_unit_year)))


def days_of_cover(available: int, daily_demand: float) -> float:
    """Days the available units last; -1 when there is no demand (infinite cover)."""
    if daily_demand <= 0:
        return -1.0
    return round(max(0, available) / daily_demand, 1)


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    """The fitted demand of one SKU in one warehouse (what the forecasts table caches)."""

    sku: str
    warehouse: str
    daily_demand: float
    lead_time_demand: float
    sigma_daily: float
    lead_time_days: int
    method: str
    history_days: int
    # The forecaster's lead-time errors by rolling origin (not cached in the database: a plan
    # read back has none, and its sigma_daily already holds the equivalent σ_d).
    lead_time_errors: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanningInputs:
    sku: str
    warehouse: str
    on_hand: int
    available: int
    daily_demand: float
    lead_time_demand: float
    sigma_daily: float
    lead_time_days: int
    abc: AbcClass | None
    lead_time_errors: tuple[float, ...] = ()
    #: Units on open inbound orders, not yet received.
    on_order: int = 0


@dataclass(frozen=True, slots=True)
class Suggestion:
    sku: str
    warehouse: str
    forecast_daily_demand: float
    safety_stock: int
    reorder_point: int
    suggested_order_quantity: int
    days_of_cover: float
    abc_class: AbcClass | None
    replenishment_mode: str
    reason: str
    on_hand: int
    available: int
    lead_time_days: int
    on_order: int = 0


def cover_days_for(abc: AbcClass | None, jit: int, standard: int, batch: int) -> int:
    if abc is AbcClass.A:
        return jit
    if abc is AbcClass.C:
        return batch
    return standard


def suggest(
    p: PlanningInputs,
    *,
    service_level: Decimal,
    jit_cover_days: int,
    standard_cover_days: int,
    batch_cover_days: int,
    ordering_cost: int | None,
    holding_cost: int | None,
) -> Suggestion:
    """Reorder when the inventory position (available + on order) is at or below the reorder
    point; order up to the reorder point plus one cycle (the cycle is EOQ when costs are
    known, else cover days by class).
    Safety stock: the service-level quantile of ``lead_time_errors`` when the plan carries them
    (a fresh fit), else z · σ_d · √L from the cached σ_d."""
    if p.lead_time_errors and p.lead_time_days > 0:
        # the quantile at this very service level (exact also when it is not the configured one)
        ss = max(0, math.ceil(safety_stock_from_errors(p.lead_time_errors, service_level) - 1e-9))
    else:
        ss = safety_stock(p.sigma_daily, p.lead_time_days, service_level)
    rop = reorder_point(p.lead_time_demand, ss)
    mode = replenishment_mode(p.abc)
    cover = days_of_cover(p.available, p.daily_demand)
    cycle_days = cover_days_for(p.abc, jit_cover_days, standard_cover_days, batch_cover_days)
    cycle_qty = math.ceil(p.daily_demand * cycle_days)
    basis = f"{cycle_days} days of {mode.replace('_', ' ')} cover"
    if ordering_cost is not None and holding_cost is not None and p.daily_demand > 0:
        q = eoq(p.daily_demand * 365, ordering_cost, holding_cost)
        if p.abc is AbcClass.A:
            cycle_qty = min(cycle_qty, q) if cycle_qty > 0 else q
            basis = f"just-in-time (min of EOQ {q} and {cycle_days} days of demand)"
        else:
            cycle_qty = q
            basis = f"EOQ {q} (ordering cost {ordering_cost}, holding cost {holding_cost}/unit/yr)"
    # The inventory position: what is available plus what is already on its way. Without the
    # units on order, a purchase placed yesterday would be suggested again every day of its
    # lead time.
    position = p.available + p.on_order
    pending = f" + on order {p.on_order}" if p.on_order else ""
    if p.daily_demand <= 0:
        qty = 0
        reason = "no demand in the history window: nothing to reorder"
    elif position <= rop:
        qty = max(0, rop + cycle_qty - position)
        reason = (
            f"available {p.available}{pending} is at or below the reorder point {rop} "
            f"(lead-time demand {p.lead_time_demand:.1f} over {p.lead_time_days} d + safety "
            f"stock {ss} at service level {service_level}); order up to reorder point + {basis}"
        )
    else:
        qty = 0
        reason = (
            f"available {p.available}{pending} is above the reorder point {rop}; no order needed"
        )
    return Suggestion(
        sku=p.sku,
        warehouse=p.warehouse,
        forecast_daily_demand=round(p.daily_demand, 4),
        safety_stock=ss,
        reorder_point=rop,
        suggested_order_quantity=qty,
        days_of_cover=cover,
        abc_class=p.abc,
        replenishment_mode=mode,
        reason=reason,
        on_hand=p.on_hand,
        available=p.available,
        lead_time_days=p.lead_time_days,
        on_order=p.on_order,
    )


@dataclass(frozen=True, slots=True)
class AbcEntry:
    sku: str
    revenue_minor: int
    revenue_share: Decimal
    cumulative_share: Decimal
    abc_class: AbcClass


SHARE_QUANTUM = Decimal("0.0001")


def classify_abc(
    revenue: Sequence[tuple[str, int]], a_threshold: Decimal, b_threshold: Decimal
) -> list[AbcEntry]:
    """Pareto classes by revenue: an item belongs to A while the cumulative share *before* it is
    under the A threshold (the item crossing 80% is still A), likewise B; the rest is C. Items
    without revenue are C."""
    ordered = sorted(revenue, key=lambda r: (-r[1], r[0]))
    total = sum(max(0, r) for _, r in ordered)
    out: list[AbcEntry] = []
    cumulative = Decimal(0)
    for sku, rev in ordered:
        share = Decimal(max(0, rev)) / Decimal(total) if total > 0 else Decimal(0)
        before = cumulative
        cumulative += share
        if rev <= 0:
            cls = AbcClass.C
        elif before < a_threshold:
            cls = AbcClass.A
        elif before < b_threshold:
            cls = AbcClass.B
        else:
            cls = AbcClass.C
        out.append(
            AbcEntry(
                sku,
                rev,
                share.quantize(SHARE_QUANTUM, ROUND_HALF_EVEN),
                min(Decimal(1), cumulative).quantize(SHARE_QUANTUM, ROUND_HALF_EVEN),
                cls,
            )
        )
    return out
