"""``ecomops inventory <command>``: offline forecast evaluation and a one-off planning run."""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .domain.forecasting import BacktestResult, PeriodError, backtest, order_periods


def read_series(path: Path) -> list[tuple[str, list[float]]]:
    """``series_id,period,value`` rows (with a header); each series in period order: numeric
    periods numerically, ISO 8601 dates chronologically (``forecasting.order_periods``); a series
    mixing both, an unparseable or a repeated period stops with an error naming it."""
    rows: dict[str, list[tuple[str, float]]] = defaultdict(list)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"series_id", "period", "value"} - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for n, row in enumerate(reader, start=2):
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                raise SystemExit(f"{path}:{n}: value {row['value']!r} is not a number") from None
            if not math.isfinite(value):
                raise SystemExit(f"{path}:{n}: value must be finite")
            rows[row["series_id"]].append((row["period"], value))
    try:
        return [(sid, order_periods(sid, points)) for sid, points in sorted(rows.items())]
    except PeriodError as exc:
        raise SystemExit(f"{path}: {exc}") from None


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def _row(name: str, smape: float, mase: float) -> str:
    return f"{name:<22}{_fmt(smape):>10}{_fmt(mase):>10}"


def report(result: BacktestResult) -> str:
    s = result.summary()
    lines = [
        f"series evaluated: {s['series']} (skipped, too short: {s['skipped']}; "
        f"failed: {s['failed']}); "
        f"horizon {result.horizon}, season length {result.season_length}",
        f"{'method':<22}{'sMAPE %':>10}{'MASE':>10}",
        _row("forecaster", float(s["smape_model"]), float(s["mase_model"])),
        _row("seasonal naive", float(s["smape_naive"]), float(s["mase_naive"])),
        _row("theta (standard)", float(s["smape_theta"]), float(s["mase_theta"])),
        f"forecaster better than seasonal naive on {s['model_better_smape']}/{s['series']} "
        f"series by sMAPE, {s['model_better_mase']}/{s['series']} by MASE",
        "",
        f"{'series_id':<28}{'method':<26}{'sMAPE':>9}{'naive':>9}{'MASE':>9}{'naive':>9}",
    ]
    for sid, why in result.failed:
        lines.append(f"{sid[:27]:<28}failed: {why}")
    for sc in result.series:
        lines.append(
            f"{sc.series_id[:27]:<28}{sc.method[:25]:<26}{_fmt(sc.smape_model):>9}"
            f"{_fmt(sc.smape_naive):>9}{_fmt(sc.mase_model):>9}{_fmt(sc.mase_naive):>9}"
        )
    return "\n".join(lines)


def cmd_backtest(args: argparse.Namespace) -> int:
    if args.horizon < 1 or args.season_length < 1 or args.jobs < 1:
        raise SystemExit("--horizon, --season-length and --jobs must be positive")
    series = read_series(Path(args.csv))
    started = time.perf_counter()
    import statsforecast.models  # noqa: F401 - timed apart: the library's start-up cost

    imported = time.perf_counter()
    result = backtest(series, args.horizon, args.season_length, workers=args.jobs)
    elapsed = time.perf_counter() - imported
    print(report(result))
    print(
        f"\nstatsforecast import {imported - started:.1f} s; fitting and scoring "
        f"{len(result.series)} series {elapsed:.1f} s"
    )
    if args.output:
        with Path(args.output).open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["series_id", "step", "forecast"])
            for sc in result.series:
                for step, value in enumerate(sc.forecast, start=1):
                    writer.writerow([sc.series_id, step, f"{value:.6g}"])
        print(f"forecasts written to {args.output}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from ecomops_platform.bus import MessageBus
    from ecomops_platform.db import Database, singleton

    from .adapters.unit_of_work import SqlInventoryUnitOfWork
    from .bootstrap import SPEC, load_settings
    from .service_layer.planning import RunPlanning
    from .service_layer.ports import Deps

    settings = load_settings()

    async def main() -> int:
        db = Database(settings.database_url, pool_size=2, max_overflow=0)
        try:
            bus: MessageBus[Any, Deps] = MessageBus(
                service=SPEC.name,
                uow=lambda: SqlInventoryUnitOfWork(db, SPEC.name),
                deps=Deps(settings=settings),
                handlers=SPEC.handlers,
            )
            # The periodic job's lock: never two planning runs at once.
            async with singleton(db, f"{SPEC.name}-planning") as mine:
                if not mine:
                    return 0
                return await bus.handle(RunPlanning(force=True), bus.system)
        finally:
            await db.dispose()

    n = asyncio.run(main())
    print(f"planning: {n} series fitted (0: another replica holds the planning lock)")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ecomops inventory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "backtest",
        help="score the forecaster against seasonal naive on held-out data",
        description="Reads series_id,period,value; holds out the last H points of each series; "
        "prints sMAPE and MASE of the service's forecaster, of seasonal naive and of the "
        "standard Theta method.",
    )
    p.add_argument("--csv", required=True, help="input CSV: series_id,period,value")
    p.add_argument("--season-length", type=int, required=True, help="periods per season (M)")
    p.add_argument("--horizon", type=int, required=True, help="held-out points per series (H)")
    p.add_argument("--output", help="also write series_id,step,forecast here")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes to fit in (default 1; the planning job's INVENTORY_FORECAST_WORKERS)",
    )
    p.set_defaults(func=cmd_backtest)
    p = sub.add_parser(
        "plan", help="recompute forecasts and reorder points now (normally a periodic job)"
    )
    p.set_defaults(func=cmd_plan)
    from .simulate_cmd import add_parser as add_simulate

    add_simulate(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
