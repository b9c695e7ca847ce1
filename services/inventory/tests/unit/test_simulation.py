"""The replay behind ``ecomops inventory simulate``: mechanics on hand-made series (expected
values computed by hand in the comments), no peeking, the service's own policy, and the CLI."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inventory_service import cli
from inventory_service.domain.simulation import (
    IntArray,
    NaiveMinMax,
    Outcome,
    Policy,
    ReplayConfig,
    fit_schedule,
    replay,
    simulate_series,
)
from inventory_service.service_layer.replay import ServiceFit, service_policies
from inventory_service.settings import InventorySettings
from inventory_service.simulate_cmd import initial_stock, naive_at, read_demand


def _order_up_to(level: int) -> Callable[[object, int], int]:
    return lambda _state, position: max(0, level - position)


def _history_length(history: IntArray) -> int:
    return int(history.size)


def test_receipts_arrive_after_the_lead_time_and_shortfalls_are_lost() -> None:
    # Order up to 10 every day, lead time 2, 5 units at the start, demand 3 a day.
    # day 0: position 5 → order 5 (due day 2); serve 3 → 2 on hand
    # day 1: position 2+5 → order 3 (due day 3); serve 2 of 3 (1 lost) → 0: a stock-out day
    # day 2: +5 → 5, position 5+3 → order 2 (due 4); serve 3 → 2
    # day 3: +3 → 5, position 5+2 → order 3 (due 5); serve 3 → 2
    # day 4: +2 → 4, position 4+3 → order 3 (due 6, after the data); serve 3 → 1
    # day 5: +3 → 4, position 4+3 → order 3; serve 3 → 1
    cfg = ReplayConfig(lead_time_days=2, refit_days=1, cover_days=0, initial_stock=5)
    demand = np.array([3, 3, 3, 3, 3, 3])
    fitted = fit_schedule(demand, cfg, _history_length)
    out = replay(demand, cfg, fitted, _order_up_to(10), keep_daily=True)
    assert out.daily == [
        (0, 0, 5, 3, 2),
        (1, 0, 3, 2, 0),
        (2, 5, 2, 3, 2),
        (3, 3, 3, 3, 2),
        (4, 2, 3, 3, 1),
        (5, 3, 3, 3, 1),
    ]
    assert (out.days, out.demand, out.served, out.lost) == (6, 18, 17, 1)
    assert out.stockout_days == 1
    assert out.stockout_rate == pytest.approx(1 / 6)
    assert out.fill_rate == pytest.approx(17 / 18)
    assert out.orders == 6 and out.ordered_units == 19
    assert out.average_stock == pytest.approx(8 / 6)
    # excess: window lead 2 + cover 0 = the next 2 days' demand (6) > any end-of-day stock
    assert (out.excess_sum, out.excess_days) == (0, 4)


def test_zero_lead_time_receives_at_once_and_excess_is_stock_above_the_next_window() -> None:
    # Lead time 0: an order is on hand the same day. The rule orders 5 when nothing is left.
    # end-of-day stock: 4 3 2 1 0 4 3 2; need = next day's demand (lead 0 + cover 1) = 1,
    # window inside the data for days 0..6 → excess 3 2 1 0 0 3 2 = 11 over 7 days.
    cfg = ReplayConfig(lead_time_days=0, refit_days=1, cover_days=1)
    demand = np.ones(8, dtype=np.int64)
    fitted = fit_schedule(demand, cfg, _history_length)
    out = replay(demand, cfg, fitted, lambda _s, pos: 5 if pos == 0 else 0, keep_daily=True)
    assert [row[4] for row in out.daily] == [4, 3, 2, 1, 0, 4, 3, 2]
    assert out.orders == 2 and out.stockout_days == 0 and out.fill_rate == 1.0
    assert (out.excess_sum, out.excess_days) == (11, 7)
    assert out.average_excess == pytest.approx(11 / 7)


def test_review_period_warmup_and_refit_cadence() -> None:
    # Warm-up 2 (days 0-1 history only), review every 3 days from day 2, refit every 2 days.
    # Before the first fit no order can be placed, and nothing counts in the warm-up.
    cfg = ReplayConfig(lead_time_days=1, review_period_days=3, refit_days=2, warmup_days=2)
    demand = np.array([9, 9, 1, 1, 1, 1, 1, 1, 1])
    fitted = fit_schedule(demand, cfg, _history_length)
    assert sorted(fitted) == [2, 4, 6, 8]
    assert fitted == {2: 2, 4: 4, 6: 6, 8: 8}
    out = replay(demand, cfg, fitted, _order_up_to(3), keep_daily=True)
    assert [t for t, *_ in out.daily] == list(range(2, 9))
    assert [row[2] for row in out.daily] == [3, 0, 0, 2, 0, 0, 3]  # reviews on days 2, 5, 8
    # day 2: nothing on hand, order 3 (due 3), its 1 unit lost; days 3-5 served from the
    # receipt (3 → 2 → 1 → 0), day 5 orders 2 (due 6); days 6-7 served (2 → 1 → 0); day 8
    # orders 3 (due after the data) and loses its unit
    assert [row[4] for row in out.daily] == [0, 2, 1, 0, 1, 0, 0]
    assert out.demand == 7 and out.served == 5 and out.stockout_days == 2


def test_replay_days_limits_the_window() -> None:
    cfg = ReplayConfig(lead_time_days=0, warmup_days=1, replay_days=3)
    assert cfg.window(10) == range(1, 4)
    assert cfg.window(2) == range(1, 2)
    with pytest.raises(ValueError):
        ReplayConfig(lead_time_days=-1)
    with pytest.raises(ValueError):
        ReplayConfig(lead_time_days=1, review_period_days=0)


def test_naive_min_max_rule() -> None:
    rule = NaiveMinMax(lead_time_days=3, safety_days=1, cover_days=5, window_days=4)
    assert rule.fit(np.array([100, 1, 3, 2, 2])) == 2.0  # the last 4 days only
    assert rule.levels(2.0) == (8, 18)  # min 2 × (3 + 1), max 8 + 2 × 5
    assert rule.order(2.0, 8) == 10
    assert rule.order(2.0, 9) == 0
    assert rule.order(0.0, 0) == 0


# --- no peeking ---------------------------------------------------------------------------------


def assert_no_peeking(make_policies: Callable[[IntArray], list[Policy[Any]]]) -> None:
    """Two series equal up to day k and different from day k on must get the same orders on every
    day up to and including k (day k's order is placed before day k's demand is seen).
    ``make_policies`` is given the series, so that a policy that cheats can be built."""
    cfg = ReplayConfig(lead_time_days=3, refit_days=1, warmup_days=14, cover_days=7)
    base = np.array([5, 7, 6, 4, 8, 9, 3] * 3, dtype=np.int64)
    for k in (14, 18):
        changed = base.copy()
        changed[k:] = 400
        a = simulate_series(base, cfg, make_policies(base), keep_daily=True)
        b = simulate_series(changed, cfg, make_policies(changed), keep_daily=True)
        for oa, ob in zip(a, b, strict=True):
            orders_a = [(t, ordered) for t, _, ordered, _, _ in oa.daily if t <= k]
            orders_b = [(t, ordered) for t, _, ordered, _, _ in ob.daily if t <= k]
            assert orders_a == orders_b, f"a decision up to day {k} depends on later demand"


def test_fit_sees_only_the_days_before_the_refit_day() -> None:
    seen: list[IntArray] = []

    def fit(history: IntArray) -> int:
        seen.append(history)
        return 0

    demand = np.arange(10, dtype=np.int64)
    fit_schedule(demand, ReplayConfig(lead_time_days=1, refit_days=3, warmup_days=1), fit)
    assert [h.tolist() for h in seen] == [[0], [0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6]]
    assert all(not h.flags.writeable for h in seen)


def test_the_no_peeking_check_catches_a_policy_that_peeks() -> None:
    def make(demand: IntArray) -> list[Policy[Any]]:
        def peeking_fit(history: IntArray) -> float:  # reads the day it is about to replay
            return float(demand[history.size]) if history.size < demand.size else 0.0

        return [Policy("peek", peeking_fit, lambda today, pos: int(today) * 2)]

    with pytest.raises(AssertionError, match="depends on later demand"):
        assert_no_peeking(make)


def _settings(**kw: object) -> InventorySettings:
    return InventorySettings(database_url="offline", **kw)  # type: ignore[arg-type]


def test_service_policy_does_not_peek() -> None:
    settings = _settings()

    def make(_demand: IntArray) -> list[Policy[Any]]:
        return service_policies(
            "SKU-1", "WH", date(2024, 1, 1), 3, settings, [Decimal("0.9"), Decimal("0.99")]
        )

    assert_no_peeking(make)


def test_service_fit_uses_the_planning_jobs_window() -> None:
    settings = _settings(forecast_history_days=30)
    fit = ServiceFit("SKU-1", "WH", date(2024, 1, 1), 2, settings)
    # 40 days of 2 units: the job keeps the last 30 whole days
    plan = fit(np.full(40, 2, dtype=np.int64))
    assert plan.history_days == 30
    assert plan.daily_demand == pytest.approx(2.0)
    assert plan.lead_time_demand == pytest.approx(4.0)
    # no rows for days without demand: history starts at the first sale, like demand_daily
    plan = fit(np.array([0, 0, 0, 1, 1, 1, 1, 1], dtype=np.int64))
    assert plan.history_days == 5


def test_service_levels_order_more_safety_at_higher_levels() -> None:
    rng = np.random.default_rng(7)
    demand = rng.poisson(20, 140).astype(np.int64)
    cfg = ReplayConfig(lead_time_days=5, warmup_days=56, cover_days=14, initial_stock=400)
    pols = service_policies(
        "S", "W", date(2024, 1, 1), 5, _settings(), [Decimal("0.6"), Decimal("0.99")]
    )
    low, high = simulate_series(demand, cfg, pols)
    assert high.average_stock > low.average_stock
    assert high.lost <= low.lost
    assert low.demand == high.demand == int(demand[56:].sum())


def test_initial_stock_from_the_warmup() -> None:
    demand = np.array([100] + [2] * 28 + [50], dtype=np.int64)
    assert initial_stock(demand, 29, 10) == 20  # last 28 warm-up days average 2
    assert initial_stock(demand, 0, 10) == 0


# --- the command -------------------------------------------------------------------------------


def _write_demand(path: Path, days: int = 100) -> None:
    rng = np.random.default_rng(3)
    start = date(2024, 1, 1)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "warehouse", "date", "quantity"])
        for sku, lam in (("A", 12.0), ("B", 3.0)):
            for i, q in enumerate(rng.poisson(lam, days)):
                if sku == "B" and i == 10:
                    continue  # a missing day counts as no demand
                w.writerow([sku, "W1", (start + timedelta(days=i)).isoformat(), int(q)])
        # C sells only in its first 10 days: nothing to serve in the replayed days
        for i in range(days):
            w.writerow(["C", "W1", (start + timedelta(days=i)).isoformat(), 4 if i < 10 else 0])


def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "demand.csv"
    _write_demand(data)
    series = read_demand(data)
    assert [(s.sku, s.demand.size) for s in series] == [("A", 100), ("B", 100), ("C", 100)]
    assert series[1].demand[10] == 0
    out_csv = tmp_path / "out.csv"
    argv = [
        "simulate",
        "--csv",
        str(data),
        "--service-levels",
        "0.9,0.99",
        "--lead-time-days",
        "4",
        "--warmup-days",
        "42",
        "--cover-days",
        "14",
        "--naive-safety-days",
        "0,7",
        "--output",
        str(out_csv),
    ]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    for name in ("service 0.9", "service 0.99", "naive min/max +0d", "naive min/max +7d"):
        assert name in first
    assert "174 series-days after a 42-day warm-up" in first
    assert "1 series had no demand in the replayed days" in first
    assert "target" in first
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 4
    for r in rows:
        assert int(r["days"]) == 58
        assert int(r["served"]) + int(r["lost"]) == int(r["demand"])
        assert 0.0 <= float(r["fill_rate"]) <= 1.0
    # deterministic: the same input gives the same table
    assert cli.main(argv) == 0
    second = capsys.readouterr().out
    strip = [ln for ln in first.splitlines() if not ln.startswith("replay took")]
    assert strip == [ln for ln in second.splitlines() if not ln.startswith("replay took")]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("sku,warehouse,date\nA,W,2024-01-01\n", [], "missing column"),
        ("sku,warehouse,date,quantity\nA,W,2024-01-01,-1\n", [], "non-negative integer"),
        ("sku,warehouse,date,quantity\nA,W,2024-01-01,1.5\n", [], "non-negative integer"),
        ("sku,warehouse,date,quantity\nA,W,01/02/2024,1\n", [], "YYYY-MM-DD"),
        ("sku,warehouse,date,quantity\n,W,2024-01-01,1\n", [], "must not be empty"),
        ("sku,warehouse,date,quantity\nA,W,2024-01-01,1\n", [], "longer than the warm-up"),
        ("sku,warehouse,date,quantity\nA,W,2024-01-01,1\n", ["--service-levels", "1.2"], "(0, 1)"),
        ("sku,warehouse,date,quantity\nA,W,2024-01-01,1\n", ["--lead-time-days", "-1"], "at least"),
        ("sku,warehouse,date,quantity\nA,W,2024-01-01,1\n", ["--refit-days", "0"], "at least 1"),
    ],
)
def test_simulate_refuses_bad_input(
    tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        cli.main(["simulate", "--csv", str(bad), *args])


def test_naive_rules_interpolated_at_a_stock_out_rate() -> None:
    def o(stockout_days: int, excess: int, stock: int) -> Outcome:
        return Outcome(
            days=100,
            stockout_days=stockout_days,
            excess_sum=excess * 100,
            excess_days=100,
            stock_sum=stock * 100,
        )

    naive = [("+0d", o(4, 10, 100)), ("+1d", o(2, 20, 120)), ("+2d", o(0, 40, 200))]
    assert naive_at(naive, 0.03) == pytest.approx((15.0, 110.0))
    assert naive_at(naive, 0.01) == pytest.approx((30.0, 160.0))
    assert naive_at(naive, 0.04) == pytest.approx((10.0, 100.0))
    assert naive_at(naive, 0.05) is None
