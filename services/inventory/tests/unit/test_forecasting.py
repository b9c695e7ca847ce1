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
    assert fc.method == "median(ets,theta,ces;m=7)"
    assert set(fc.components) == {"AutoETS", "AutoTheta", "AutoCES"}
    assert f.smape(y[-7:], fc.mean) < f.smape(y[-7:], np.full(7, y[:-7].mean()))
    assert fc.sigma == 0 and fc.lead_time_errors.size == 0  # errors not asked for


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


def test_numeric_periods_are_ordered_numerically_not_as_text() -> None:
    points = [(str(p), float(p)) for p in (100, 2, 10, 1, 11, 3)]
    assert f.order_periods("s", points) == [1, 2, 3, 10, 11, 100]
    assert f.order_periods("s", [("2.5", 2.0), ("-1", 0.0), ("1e1", 3.0)]) == [0.0, 2.0, 3.0]


def test_dates_are_ordered_chronologically() -> None:
    days = [("2024-01-10", 3.0), ("2023-12-31", 1.0), ("2024-01-02", 2.0)]
    assert f.order_periods("s", days) == [1.0, 2.0, 3.0]
    months = [("2024-10", 3.0), ("2024-02", 2.0), ("2023-11", 1.0)]
    assert f.order_periods("s", months) == [1.0, 2.0, 3.0]
    quarters = [("1960-Q1", 3.0), ("1959-Q4", 2.0), ("1959-Q2", 1.0)]
    assert f.order_periods("s", quarters) == [1.0, 2.0, 3.0]
    weeks = [("2024-W10", 2.0), ("2024-W02", 1.0), ("2025-W01", 3.0)]
    assert f.order_periods("s", weeks) == [1.0, 2.0, 3.0]
    times = [("2024-01-01T10:00+02:00", 2.0), ("2024-01-01T07:30Z", 1.0)]
    assert f.order_periods("s", times) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([("1", 1.0), ("2024-01-01", 2.0)], "mixes numeric periods and dates"),
        ([("2024-01-01", 1.0), ("soon", 2.0)], "period 'soon' is neither"),
        ([("2024-13", 1.0)], "period '2024-13' is neither"),
        ([("3", 1.0), ("3.0", 2.0)], "period '3.0' appears twice"),
    ],
)
def test_unorderable_periods_are_refused_naming_series_and_value(
    points: list[tuple[str, float]], message: str
) -> None:
    with pytest.raises(f.PeriodError, match="series 'sku-7'") as err:
        f.order_periods("sku-7", points)
    assert message in str(err.value)


def test_backtest_command_reads_periods_in_numeric_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A trend 1..30 written in text order of its period: read as text it is scrambled.
    rows = sorted((str(p), p) for p in range(1, 31))
    data = tmp_path / "trend.csv"
    data.write_text("series_id,period,value\n" + "".join(f"t,{p},{v}\n" for p, v in rows))
    out = tmp_path / "fc.csv"
    args = ["backtest", "--csv", str(data), "--season-length", "1", "--horizon", "3"]
    assert cli.main([*args, "--output", str(out)]) == 0
    assert "theta (standard)" in capsys.readouterr().out
    forecasts = [float(r.split(",")[2]) for r in out.read_text().splitlines()[1:]]
    assert forecasts == pytest.approx([28, 29, 30], abs=1.5)


def test_backtest_command_refuses_mixed_periods(tmp_path: Path) -> None:
    bad = tmp_path / "mixed.csv"
    bad.write_text("series_id,period,value\nA,1,2\nA,2,3\nB,2024-01-01,1\nB,7,2\n")
    with pytest.raises(SystemExit, match="series 'B' mixes numeric periods and dates"):
        cli.main(["backtest", "--csv", str(bad), "--season-length", "1", "--horizon", "1"])


@pytest.mark.parametrize("workers", [1, 2])
def test_forecast_many_keeps_order_and_one_bad_series_never_stops_the_others(
    workers: int,
) -> None:
    requests = [f.SeriesRequest(i, np.array([float(i), float(i)]), 3) for i in range(10)]
    requests[4] = f.SeriesRequest(4, np.array([1.0, 2.0]), -1)  # a horizon no model can give
    results = f.forecast_many(requests, 7, workers=workers, chunk_size=3)
    assert isinstance(results[4], str) and "negative" in results[4]
    for i, r in enumerate(results):
        if i != 4:
            assert isinstance(r, f.Forecast) and list(r.mean) == [float(i)] * 3
