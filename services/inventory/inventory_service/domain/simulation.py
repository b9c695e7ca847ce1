"""Replay of daily demand through a reorder policy (``ecomops inventory simulate``).

Pure replay mechanics; the policy is passed in. The service's own policy (the planning job's
forecast → safety stock → reorder point → order quantity) is wired in
``service_layer/replay.py``; a naive min/max rule is defined here as the comparison.

Rules of the replay, day ``t`` of a series (days ``start .. end-1``: ``start`` is the warm-up,
days before it are history only; ``end`` the series' end or ``start + replay_days``):

1. Receipts due on day ``t`` are put on hand (an order placed on day ``s`` with lead time ``L``
   arrives at the start of day ``s + L``; with ``L = 0`` it arrives at once).
2. On a refit day (``start`` and every ``refit_days`` after it) the policy is fitted on
   ``demand[:t]`` — whole past days only, never day ``t`` or later (no peeking; the planning job
   likewise fits up to yesterday).
3. On a review day (``start`` and every ``review_period_days`` after it) the policy sees the
   inventory position (on hand + on order, nothing is backordered) and answers an order quantity.
4. Demand of day ``t`` is served from stock on hand; what cannot be served is lost (lost sales:
   an e-commerce checkout that finds no stock is refused, it does not wait).

Measures (per series and policy, over the replayed days):

- stock-out days: days on which some demand was lost; stock-out rate = stock-out days / days.
- fill rate: units served / units demanded.
- average stock: mean on hand at the end of the day.
- excess stock: on hand at the end of day ``t`` above the demand that actually followed over the
  next ``L + cover_days`` days (what a perfect planner needs to hold: the lead time plus one
  order cycle); averaged over the days whose window lies inside the data.
- orders placed.

Deterministic: no randomness, series and policies in input order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

F = TypeVar("F")

#: ``fit(history)`` → a fitted state; ``history`` holds whole past days only.
Fit = Callable[[IntArray], F]
#: ``rule(fitted, position)`` → units to order now (0: none).
Rule = Callable[[F, int], int]


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    lead_time_days: int
    review_period_days: int = 1
    refit_days: int = 7
    warmup_days: int = 0
    cover_days: int = 30
    initial_stock: int = 0
    replay_days: int | None = None

    def __post_init__(self) -> None:
        if self.lead_time_days < 0:
            raise ValueError("lead time must be 0 or more days")
        if self.review_period_days < 1 or self.refit_days < 1:
            raise ValueError("review period and refit cadence must be at least 1 day")
        if self.warmup_days < 0 or self.cover_days < 0 or self.initial_stock < 0:
            raise ValueError("warm-up, cover days and initial stock must not be negative")
        if self.replay_days is not None and self.replay_days < 1:
            raise ValueError("replay days must be at least 1")

    def window(self, n: int) -> range:
        """The replayed days of a series of ``n`` days."""
        start = min(self.warmup_days, n)
        end = n if self.replay_days is None else min(n, start + self.replay_days)
        return range(start, end)


@dataclass(slots=True)
class Outcome:
    """What one policy did on one series (sums, so outcomes add up across series)."""

    days: int = 0
    demand: int = 0
    served: int = 0
    stockout_days: int = 0
    stock_sum: int = 0
    excess_sum: int = 0
    excess_days: int = 0
    orders: int = 0
    ordered_units: int = 0
    daily: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """Per replayed day: (day index, received, ordered, served, on hand at end of day)."""

    @property
    def lost(self) -> int:
        return self.demand - self.served

    @property
    def stockout_rate(self) -> float:
        return self.stockout_days / self.days if self.days else 0.0

    @property
    def fill_rate(self) -> float:
        return self.served / self.demand if self.demand else 1.0

    @property
    def average_stock(self) -> float:
        return self.stock_sum / self.days if self.days else 0.0

    @property
    def average_excess(self) -> float:
        return self.excess_sum / self.excess_days if self.excess_days else 0.0

    def add(self, other: Outcome) -> None:
        self.days += other.days
        self.demand += other.demand
        self.served += other.served
        self.stockout_days += other.stockout_days
        self.stock_sum += other.stock_sum
        self.excess_sum += other.excess_sum
        self.excess_days += other.excess_days
        self.orders += other.orders
        self.ordered_units += other.ordered_units


def as_demand(values: Sequence[int] | IntArray) -> IntArray:
    arr = np.asarray(values, dtype=np.int64)
    if arr.ndim != 1 or (arr.size and int(arr.min()) < 0):
        raise ValueError("demand must be a sequence of non-negative integers")
    return arr


def refit_days(n: int, cfg: ReplayConfig) -> list[int]:
    days = cfg.window(n)
    return list(range(days.start, days.stop, cfg.refit_days))


def fit_schedule(demand: IntArray, cfg: ReplayConfig, fit: Fit[F]) -> dict[int, F]:
    """The fitted state of every refit day, each from the days before it only."""
    out: dict[int, F] = {}
    for day in refit_days(demand.size, cfg):
        history = demand[:day].copy()  # a copy: a policy cannot reach later days through it
        history.setflags(write=False)
        out[day] = fit(history)
    return out


def future_need(demand: IntArray, window: int) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """need[t] = demand[t+1 .. t+window]; valid[t] when that window lies inside the data."""
    n = demand.size
    csum = np.concatenate(([0], np.cumsum(demand, dtype=np.int64)))
    idx = np.arange(n)
    hi = np.minimum(idx + 1 + window, n)
    need = csum[hi] - csum[idx + 1]
    valid = idx + 1 + window <= n
    return need.astype(np.int64), valid


def replay(
    demand: Sequence[int] | IntArray,
    cfg: ReplayConfig,
    fitted: Mapping[int, F],
    rule: Rule[F],
    *,
    keep_daily: bool = False,
) -> Outcome:
    """Replay one policy (``rule`` over the states of ``fit_schedule``) on one series."""
    d = as_demand(demand)
    days = cfg.window(d.size)
    lead = cfg.lead_time_days
    need, valid = future_need(d, lead + cfg.cover_days)
    arrivals: dict[int, int] = {}
    on_hand = cfg.initial_stock
    on_order = 0
    state: F | None = None
    out = Outcome()
    for t in days:
        received = arrivals.pop(t, 0)
        on_hand += received
        on_order -= received
        if t in fitted:
            state = fitted[t]
        ordered = 0
        if (t - days.start) % cfg.review_period_days == 0 and state is not None:
            ordered = max(0, int(rule(state, on_hand + on_order)))
            if ordered:
                out.orders += 1
                out.ordered_units += ordered
                if lead == 0:
                    on_hand += ordered
                else:
                    arrivals[t + lead] = arrivals.get(t + lead, 0) + ordered
                    on_order += ordered
        want = int(d[t])
        served = min(on_hand, want)
        on_hand -= served
        out.days += 1
        out.demand += want
        out.served += served
        if served < want:
            out.stockout_days += 1
        out.stock_sum += on_hand
        if valid[t]:
            out.excess_days += 1
            out.excess_sum += max(0, on_hand - int(need[t]))
        if keep_daily:
            out.daily.append((t, received, ordered, served, on_hand))
    return out


# --- the naive comparison rule --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NaiveMinMax:
    """min = mean daily demand × (lead time + safety days); max = min + mean × cover days.
    When the position is at or below min, order up to max. The mean is over the last
    ``window_days`` days of history (all of it when shorter)."""

    lead_time_days: int
    safety_days: float
    cover_days: int
    window_days: int = 28

    def fit(self, history: IntArray) -> float:
        recent = history[-self.window_days :] if self.window_days > 0 else history
        return float(recent.mean()) if recent.size else 0.0

    def levels(self, mean: float) -> tuple[int, int]:
        low = math.ceil(mean * (self.lead_time_days + self.safety_days) - 1e-9)
        return low, low + math.ceil(mean * self.cover_days - 1e-9)

    def order(self, mean: float, position: int) -> int:
        if mean <= 0:
            return 0
        low, high = self.levels(mean)
        return high - position if position <= low else 0


@dataclass(frozen=True, slots=True)
class Policy(Generic[F]):
    """A named rule over a fitted state; policies sharing ``fit`` share the fits."""

    name: str
    fit: Fit[F]
    rule: Rule[F]


def simulate_series(
    demand: Sequence[int] | IntArray,
    cfg: ReplayConfig,
    policies: Sequence[Policy[Any]],
    *,
    keep_daily: bool = False,
) -> list[Outcome]:
    """Replay every policy on one series (same demand, starting stock and lead time); policies
    with the same ``fit`` function share its fits (the costly part)."""
    d = as_demand(demand)
    fits: dict[int, dict[int, Any]] = {}
    out = []
    for p in policies:
        key = id(p.fit)
        if key not in fits:
            fits[key] = fit_schedule(d, cfg, p.fit)
        out.append(replay(d, cfg, fits[key], p.rule, keep_daily=keep_daily))
    return out
