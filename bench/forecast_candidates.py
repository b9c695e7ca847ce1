"""How the forecaster was chosen: each candidate model fitted once per series, combinations
scored on the hold-out (the table in docs/decisions.md "Forecasting demand").

``python -m bench.forecast_candidates --csv m3_yearly.csv --season-length 1 --horizon 6
[--arima-sample 150]`` prints sMAPE and MASE per candidate and combination. AutoARIMA, ~10× the
cost of the others, is fitted on a random sample of series (fixed seed); the combinations with
it are scored on that sample only. The service's forecaster is ``forecasting.forecast``; this
script only compares the candidates it was chosen from.
"""

from __future__ import annotations

import argparse
import math
import random
import warnings
from pathlib import Path

import numpy as np

from inventory_service.cli import read_series
from inventory_service.domain.forecasting import mase, seasonal_naive, smape

COMBINATIONS = {
    "AutoETS": ("ets",),
    "AutoTheta": ("theta",),
    "AutoCES": ("ces",),
    "AutoARIMA": ("arima",),
    "mean(ets,theta,ces)": ("ets", "theta", "ces"),
    "median(ets,theta,ces)": ("ets", "theta", "ces"),
    "median(ets,theta,ces,arima)": ("ets", "theta", "ces", "arima"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--season-length", type=int, required=True)
    p.add_argument("--horizon", type=int, required=True)
    p.add_argument("--arima-sample", type=int, default=150)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    from statsforecast import models

    h, season = args.horizon, args.season_length
    series = [(sid, np.asarray(v)) for sid, v in read_series(args.csv) if len(v) >= h + 2]
    arima_ids = set(
        random.Random(1).sample([s for s, _ in series], min(args.arima_sample, len(series)))
    )
    scores: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ["seasonal naive", *COMBINATIONS]
    }
    for sid, y in series:
        train, test = y[:-h], y[-h:]
        m = season if season > 1 and train.size >= 2 * season else 1
        makers = {"ets": models.AutoETS, "theta": models.AutoTheta, "ces": models.AutoCES}
        if sid in arima_ids:
            makers["arima"] = models.AutoARIMA
        fc: dict[str, np.ndarray] = {}
        for name, make in makers.items():
            try:
                fc[name] = np.asarray(make(season_length=m).fit(train).predict(h=h)["mean"])
            except Exception:  # a candidate that cannot fit this series
                continue
        naive = seasonal_naive(train, h, season)
        scores["seasonal naive"].append((smape(test, naive), mase(train, test, naive, season)))
        for combo, members in COMBINATIONS.items():
            if not all(k in fc for k in members):
                continue
            stack = np.vstack([fc[k] for k in members])
            f = stack.mean(axis=0) if combo.startswith("mean") else np.median(stack, axis=0)
            if train.min() >= 0:
                f = np.clip(f, 0.0, None)
            scores[combo].append((smape(test, f), mase(train, test, f, season)))
    print(f"{args.csv.name}: {len(series)} series, horizon {h}, season length {season}")
    for name, vals in scores.items():
        if vals:
            s = float(np.mean([v[0] for v in vals]))
            finite = [v[1] for v in vals if not math.isnan(v[1])]
            print(f"{name:<30}{len(vals):>6} series  sMAPE {s:7.2f}  MASE {np.mean(finite):7.3f}")


if __name__ == "__main__":
    main()
