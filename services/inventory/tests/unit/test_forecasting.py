"""Forecasting and its error measures (kept fast: short series)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inventory_service import cli
from inventory_service.domain import forecasting as f


def test_seasonal_naive_repeats_last_season() -> None:
    assert list(f.seasonal_naive([1, 2, 3, 4, 5, 6], 5, 3)) == [4, 5, 6, 4, 5]
    assert list(f.seasonal_naive([7, 8], 3, 4)) == [8, 8, 8]


def test_metrics() -> None:
    a = np.array([10.0, 0.0, 5.0])
    assert f.smape(a, a) == 0.0
    assert f.smape(np.array([1.0]), np.array([0.0])) == pytest.approx(200.0)
    train = np.array([1.0, 2.0, 3.0, 4.0])
    # in-sample naive (m=1) MAE = 1; forecast MAE = 2
    assert f.mase(train, np.array([5.0, 6.0]), np.array([3.0, 4.0]), 1) == pytest.approx(2.0)


def test_forecaster_follows_a_seasonal_pattern_better_than_the_mean() -> None:
    rng = np.random.default_rng(7)
    weekly = np.array([10, 12, 11, 13, 30, 35, 8], dtype=float)
    y = np.tile(weekly, 10) + rng.normal(0, 0.5, 70)
    fc = f.forecast(y[:-7], 7, 7)
    assert fc.method.startswith("auto_ets")
    assert f.smape(y[-7:], fc.mean) < f.smape(y[-7:], np.full(7, y[:-7].mean()))
    assert fc.sigma > 0


def test_intermittent_and_degenerate_series() -> None:
    y = np.array([0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 4, 0, 0], dtype=float)
    fc = f.forecast(y, 10, 7)
    assert fc.method == "croston_sba" and np.all(fc.mean >= 0)
    assert f.forecast([], 5, 7).method == "none"
    assert f.forecast([0, 0, 0, 0, 0], 5, 7).mean.sum() == 0
    assert f.forecast([2, 4], 3, 7).method == "mean"


def test_backtest_command_on_real_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(__file__).parents[1] / "data" / "monthly_statsmodels.csv"
    out = tmp_path / "fc.csv"
    code = cli.main(
        [
            "backtest",
            "--csv",
            str(data),
            "--season-length",
            "12",
            "--horizon",
            "12",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "series evaluated: 2" in text and "seasonal naive" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "series_id,step,forecast"
    assert len(rows) == 1 + 2 * 12
    assert rows[1].startswith("elec_equip_eu_new_orders,1,")


def test_backtest_refuses_bad_csv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,period,value\nx,1,2\n")
    with pytest.raises(SystemExit):
        cli.main(["backtest", "--csv", str(bad), "--season-length", "1", "--horizon", "1"])
