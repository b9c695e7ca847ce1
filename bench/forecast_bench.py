"""Speed of the planning job's forecaster on many SKU×warehouse daily series.

The series are shaped from real ones (for timing only): each takes the shape of a randomly
chosen series of a ``series_id,period,value`` CSV (the backtest format, e.g. M3 monthly),
stretched over ``--days`` days, scaled to a daily mean drawn log-uniformly between 0.05 and 50
units, times a weekly profile, and drawn as Poisson counts — slow movers come out intermittent
(Croston-SBA), fast movers seasonal (the ensemble). Each series is fitted exactly as the planning
job does (``forecasting.forecast_many``: 90-day horizon, weekly season, 7-day lead time,
rolling-origin errors over the last 90 days).

``python -m bench.forecast_bench --csv FILE --series 10000 --jobs 2`` prints seconds, series per
second and how many series took each method. Fixed seed.
"""

from __future__ import annotations

import argparse
import collections
import csv
import resource
import time
from pathlib import Path

import numpy as np

from inventory_service.domain import forecasting


def shaped_series(path: Path, n: int, days: int, seed: int) -> list[np.ndarray]:
    shapes: dict[str, list[tuple[str, float]]] = collections.defaultdict(list)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            shapes[row["series_id"]].append((row["period"], float(row["value"])))
    real = [
        np.asarray(forecasting.order_periods(sid, pts), dtype=np.float64)
        for sid, pts in shapes.items()
    ]
    real = [r for r in real if r.size >= 8 and r.min() > 0]
    rng = np.random.default_rng(seed)
    week = np.array([0.9, 0.95, 1.0, 1.0, 1.1, 1.3, 0.75])
    out = []
    for _ in range(n):
        r = real[rng.integers(len(real))]
        shape = np.interp(np.linspace(0, r.size - 1, days), np.arange(r.size), r)
        shape /= shape.mean()
        level = float(np.exp(rng.uniform(np.log(0.05), np.log(50))))
        lam = level * shape * np.tile(week, days // 7 + 1)[:days]
        out.append(rng.poisson(lam).astype(np.float64))
    return out


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=15)
    args = p.parse_args()
    series = shaped_series(args.csv, args.series, args.days, args.seed)
    requests = [forecasting.SeriesRequest(i, y, 90, 7) for i, y in enumerate(series)]
    started = time.perf_counter()
    cpu_before = _cpu_seconds()
    results = forecasting.forecast_many(requests, 7, error_window=90, workers=args.jobs)
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    methods = collections.Counter(
        r.method.split("(")[0] if isinstance(r, forecasting.Forecast) else "failed" for r in results
    )
    failed = sum(1 for r in results if isinstance(r, str))
    print(
        f"{len(series)} series × {args.days} days, {args.jobs} process(es): {elapsed:.1f} s "
        f"({len(series) / elapsed:.1f} series/s); CPU {cpu:.1f} s ({cpu / len(series):.3f} s "
        f"per series, this process and its workers); failed {failed}; methods {dict(methods)}"
    )


if __name__ == "__main__":
    main()
