"""The service's own reorder policy, wired for ``domain/simulation.py``.

Fitting goes through ``fit_all`` — the planning job's function (history window, whole days up to
yesterday, forecast horizon, lead-time demand, σ) — and ordering through ``_suggest``, the
function behind the job's thresholds and ``GET /v1/inventory/replenishment`` (safety stock,
reorder point, order quantity). Nothing of the policy is re-implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from ..domain.planning import SeriesPlan
from ..domain.simulation import IntArray, NaiveMinMax, Policy
from ..settings import InventorySettings
from .planning import _suggest, fit_all


@dataclass(frozen=True, slots=True)
class ServiceFit:
    """``fit(history)`` for one series: history day ``i`` is ``first_day + i``; the replay calls
    it with the days before ``today = first_day + len(history)``."""

    sku: str
    warehouse: str
    first_day: date
    lead_time_days: int
    settings: InventorySettings

    def __call__(self, history: IntArray) -> SeriesPlan:
        today = self.first_day + timedelta(days=int(history.size))
        # What the job reads from demand_daily: a row per day with committed units, at most
        # forecast_history_days back (fit_all applies the same floor).
        keep = min(int(history.size), self.settings.forecast_history_days)
        base = history.size - keep
        rows = {
            self.first_day + timedelta(days=int(base + i)): int(q)
            for i, q in enumerate(history[base:])
            if q > 0
        }
        key = (self.sku, self.warehouse)
        return fit_all({key: rows}, {self.sku: self.lead_time_days}, today, self.settings)[0]


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """The job's order quantity at one service level, for an inventory position."""

    settings: InventorySettings

    def __call__(self, plan: SeriesPlan, position: int) -> int:
        return _suggest(plan, position, position, None, self.settings).suggested_order_quantity


def service_policies(
    sku: str,
    warehouse: str,
    first_day: date,
    lead_time_days: int,
    settings: InventorySettings,
    service_levels: list[Decimal],
) -> list[Policy[SeriesPlan]]:
    """One policy per service level, sharing one fit (the forecast does not depend on it)."""
    fit = ServiceFit(sku, warehouse, first_day, lead_time_days, settings)
    return [
        Policy(
            f"service {level}",
            fit,
            ServiceRule(settings.model_copy(update={"service_level": level})),
        )
        for level in service_levels
    ]


def naive_policies(
    lead_time_days: int, safety_days: list[float], cover_days: int, window_days: int
) -> list[Policy[float]]:
    out: list[Policy[float]] = []
    for s in safety_days:
        rule = NaiveMinMax(lead_time_days, s, cover_days, window_days)
        out.append(Policy(f"naive min/max +{s:g}d", rule.fit, rule.order))
    return out
