"""``ecomops inventory simulate``: replay daily demand through the service's reorder policy and a
naive min/max rule (see ``domain/simulation.py`` for the rules of the replay)."""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from .domain.simulation import (
    IntArray,
    Outcome,
    Policy,
    ReplayConfig,
    refit_days,
    simulate_series,
)
from .settings import InventorySettings

TARGET_STOCKOUT = 0.03
TARGET_EXCESS_CUT = 0.20


@dataclass(frozen=True, slots=True)
class Series:
    sku: str
    warehouse: str
    first_day: date
    demand: IntArray


def read_demand(path: Path) -> list[Series]:
    """``sku,warehouse,date,quantity`` rows (header required; ``date`` YYYY-MM-DD, ``quantity`` a
    non-negative integer). Rows of the same series and day add up; days missing between a
    series' first and last date have no demand."""
    rows: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    try:
        fh = path.open(newline="")
    except OSError as exc:
        raise SystemExit(f"{path}: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = {"sku", "warehouse", "date", "quantity"} - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for n, row in enumerate(reader, start=2):
            sku, wh = (row["sku"] or "").strip(), (row["warehouse"] or "").strip()
            if not sku or not wh:
                raise SystemExit(f"{path}:{n}: sku and warehouse must not be empty")
            try:
                day = date.fromisoformat((row["date"] or "").strip())
            except ValueError:
                raise SystemExit(f"{path}:{n}: date {row['date']!r} is not YYYY-MM-DD") from None
            raw = (row["quantity"] or "").strip()
            if not raw.isdigit():
                raise SystemExit(
                    f"{path}:{n}: quantity {row['quantity']!r} is not a non-negative integer"
                )
            rows[(sku, wh)][day] += int(raw)
    out = []
    for (sku, wh), days in sorted(rows.items()):
        first, last = min(days), max(days)
        values = np.zeros((last - first).days + 1, dtype=np.int64)
        for day, qty in days.items():
            values[(day - first).days] = qty
        out.append(Series(sku, wh, first, values))
    return out


def _levels(text: str) -> list[Decimal]:
    try:
        levels = [Decimal(x.strip()) for x in text.split(",") if x.strip()]
    except InvalidOperation:
        raise SystemExit(f"--service-levels: {text!r} is not a list of numbers") from None
    if not levels or any(not (0 < v < 1) for v in levels):
        raise SystemExit("--service-levels: each level must be in (0, 1), e.g. 0.95,0.98")
    return levels


def _days_list(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--naive-safety-days: {text!r} is not a list of numbers") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise SystemExit("--naive-safety-days: each value must be a number of days >= 0")
    return values


@dataclass(frozen=True, slots=True)
class Job:
    series: Series
    cfg: ReplayConfig
    settings: InventorySettings
    levels: list[Decimal]
    naive_safety_days: list[float]
    naive_window_days: int
    initial_stock_days: float | None


def initial_stock(demand: IntArray, warmup: int, days: float) -> int:
    """The warm-up's mean daily demand (its last 28 days) × ``days``; 0 without a warm-up."""
    past = demand[: min(warmup, demand.size)][-28:]
    return math.ceil(float(past.mean()) * days - 1e-9) if past.size else 0


def run_job(job: Job) -> tuple[list[str], list[Outcome]]:
    from .service_layer.replay import naive_policies, service_policies

    s, cfg = job.series, job.cfg
    days = (
        job.initial_stock_days
        if job.initial_stock_days is not None
        else cfg.lead_time_days + cfg.cover_days
    )
    cfg = ReplayConfig(
        lead_time_days=cfg.lead_time_days,
        review_period_days=cfg.review_period_days,
        refit_days=cfg.refit_days,
        warmup_days=cfg.warmup_days,
        cover_days=cfg.cover_days,
        initial_stock=initial_stock(s.demand, cfg.warmup_days, days),
        replay_days=cfg.replay_days,
    )
    policies: list[Policy[Any]] = [
        *service_policies(
            s.sku, s.warehouse, s.first_day, cfg.lead_time_days, job.settings, job.levels
        ),
        *naive_policies(
            cfg.lead_time_days, job.naive_safety_days, cfg.cover_days, job.naive_window_days
        ),
    ]
    outcomes = simulate_series(s.demand, cfg, policies)
    return [p.name for p in policies], outcomes


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def report(names: list[str], totals: list[Outcome], n_series: int) -> str:
    """The table, then per service level the verdict on the brief's target: stock-out rate under
    3 % with at least 20 % less excess stock than the leanest naive rule that also keeps
    stock-outs under 3 % (naive rules tuned to the same stock-out target)."""
    lines = [
        f"{'policy':<24}{'stock-out days %':>17}{'fill rate %':>12}{'lost units':>12}"
        f"{'avg stock':>12}{'avg excess':>12}{'orders':>9}",
    ]
    for name, t in zip(names, totals, strict=True):
        lines.append(
            f"{name:<24}{_pct(t.stockout_rate):>17}{_pct(t.fill_rate):>12}{t.lost:>12}"
            f"{t.average_stock * n_series:>12.1f}{t.average_excess * n_series:>12.1f}"
            f"{t.orders:>9}"
        )
    lines.append("(avg stock, avg excess: units on hand at the end of the day, summed over series)")
    naive = [
        (n, t)
        for n, t in zip(names, totals, strict=True)
        if n.startswith("naive") and t.stockout_rate < TARGET_STOCKOUT
    ]
    lines.append("")
    if not naive:
        lines.append("no naive rule keeps stock-outs under 3 %: nothing to compare excess with")
        return "\n".join(lines)
    bname, best = min(naive, key=lambda nt: (nt[1].average_excess, nt[1].average_stock))
    lines.append(
        f"leanest naive rule with stock-outs under 3 %: {bname} "
        f"(stock-out {_pct(best.stockout_rate)} %, avg excess "
        f"{best.average_excess * n_series:.1f}, avg stock {best.average_stock * n_series:.1f})"
    )
    all_naive = [(n, t) for n, t in zip(names, totals, strict=True) if n.startswith("naive")]
    for name, t in zip(names, totals, strict=True):
        if name.startswith("naive"):
            continue
        ex = _change(t.average_excess, best.average_excess)
        st = _change(t.average_stock, best.average_stock)
        ok = t.stockout_rate < TARGET_STOCKOUT and ex <= -TARGET_EXCESS_CUT
        lines.append(
            f"  {name:<14} stock-out {_pct(t.stockout_rate):>6} %, excess {100 * ex:+7.1f} %, "
            f"avg stock {100 * st:+6.1f} % -> target {'met' if ok else 'NOT met'}"
        )
    lines.append("same stock-out or better: the leanest naive rule at or below each level's rate")
    for name, t in zip(names, totals, strict=True):
        if name.startswith("naive"):
            continue
        matched = [nt for nt in all_naive if nt[1].stockout_rate <= t.stockout_rate]
        if not matched:
            lines.append(f"  {name:<14} no naive rule reaches stock-out {_pct(t.stockout_rate)} %")
            continue
        mname, m = min(matched, key=lambda nt: (nt[1].average_excess, nt[1].average_stock))
        lines.append(
            f"  {name:<14} vs {mname:<20} (stock-out {_pct(m.stockout_rate)} %): excess "
            f"{100 * _change(t.average_excess, m.average_excess):+7.1f} %, avg stock "
            f"{100 * _change(t.average_stock, m.average_stock):+6.1f} %"
        )
    lines.append(
        "naive rules interpolated to each level's stock-out rate (linear between the two naive "
        "rules around it):"
    )
    for name, t in zip(names, totals, strict=True):
        if name.startswith("naive"):
            continue
        at = naive_at(all_naive, t.stockout_rate)
        if at is None:
            lines.append(f"  {name:<14} outside the naive rules' stock-out range")
            continue
        excess, stock = at
        lines.append(
            f"  {name:<14} stock-out {_pct(t.stockout_rate):>6} %: excess "
            f"{100 * _change(t.average_excess, excess):+7.1f} %, avg stock "
            f"{100 * _change(t.average_stock, stock):+6.1f} %"
        )
    return "\n".join(lines)


def naive_at(naive: list[tuple[str, Outcome]], rate: float) -> tuple[float, float] | None:
    """Average excess and stock of the naive rules at stock-out ``rate``: linear between two
    consecutive rules (in safety-day order) whose rates bracket it; None outside their range."""
    for (_, a), (_, b) in itertools.pairwise(naive):
        lo, hi = sorted((a.stockout_rate, b.stockout_rate))
        if lo <= rate <= hi:
            span = a.stockout_rate - b.stockout_rate
            w = (a.stockout_rate - rate) / span if span else 0.0
            return (
                a.average_excess + w * (b.average_excess - a.average_excess),
                a.average_stock + w * (b.average_stock - a.average_stock),
            )
    return None


def _change(x: float, base: float) -> float:
    if base > 0:
        return (x - base) / base
    return 0.0 if x == 0 else float("inf")


def cmd_simulate(args: argparse.Namespace) -> int:
    if "INVENTORY_DATABASE_URL" in os.environ:
        settings = InventorySettings()
    else:  # offline: no database is used
        settings = InventorySettings(database_url="offline")
    levels = _levels(args.service_levels) if args.service_levels else [settings.service_level]
    lead = settings.default_lead_time_days if args.lead_time_days is None else args.lead_time_days
    cover = settings.standard_cover_days if args.cover_days is None else args.cover_days
    for flag, value, low in (
        ("--lead-time-days", lead, 0),
        ("--review-period", args.review_period, 1),
        ("--refit-days", args.refit_days, 1),
        ("--warmup-days", args.warmup_days, 0),
        ("--cover-days", cover, 1),
        ("--naive-window-days", args.naive_window_days, 1),
        ("--jobs", args.jobs, 1),
        ("--replay-days", 1 if args.replay_days is None else args.replay_days, 1),
        ("--limit-series", 1 if args.limit_series is None else args.limit_series, 1),
    ):
        if value < low:
            raise SystemExit(f"{flag} must be at least {low}")
    if args.initial_stock_days is not None and (
        not math.isfinite(args.initial_stock_days) or args.initial_stock_days < 0
    ):
        raise SystemExit("--initial-stock-days must be a number of days >= 0")
    cfg = ReplayConfig(
        lead_time_days=lead,
        review_period_days=args.review_period,
        refit_days=args.refit_days,
        warmup_days=args.warmup_days,
        cover_days=cover,
        replay_days=args.replay_days,
    )
    series = read_demand(Path(args.csv))
    if args.limit_series is not None:
        series = series[: args.limit_series]
    replayed = [s for s in series if s.demand.size > args.warmup_days]
    if not replayed:
        raise SystemExit("no series is longer than the warm-up: nothing to replay")
    safety_days = _days_list(args.naive_safety_days)
    jobs = [
        Job(
            s,
            cfg,
            settings,
            levels,
            safety_days,
            args.naive_window_days,
            args.initial_stock_days,
        )
        for s in replayed
    ]
    started = time.perf_counter()
    results: Sequence[tuple[list[str], list[Outcome]]]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(run_job, jobs, chunksize=max(1, len(jobs) // (4 * args.jobs))))
    else:
        results = [run_job(j) for j in jobs]
    elapsed = time.perf_counter() - started
    names = results[0][0]
    totals = [Outcome() for _ in names]
    for _, outcomes in results:
        for t, o in zip(totals, outcomes, strict=True):
            t.add(o)
    days = sum(len(cfg.window(s.demand.size)) for s in replayed)
    refits = sum(len(refit_days(s.demand.size, cfg)) for s in replayed)
    print(
        f"series replayed: {len(replayed)} (of {len(series)}; shorter than the warm-up skipped); "
        f"{days} series-days after a {args.warmup_days}-day warm-up; lead time {lead} d, review "
        f"every {args.review_period} d, refit every {args.refit_days} d ({refits} fits), cover "
        f"{cover} d; lost sales"
    )
    idle = sum(1 for _, outcomes in results if outcomes[0].demand == 0)
    if idle:
        print(
            f"{idle} series had no demand in the replayed days (they count as days without a "
            "stock-out, as in the service's stock-out KPI)"
        )
    print(report(names, totals, len(replayed)))
    print(f"\nreplay took {elapsed:.1f} s ({args.jobs} process(es))")
    if args.output:
        with Path(args.output).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "sku",
                    "warehouse",
                    "policy",
                    "days",
                    "demand",
                    "served",
                    "lost",
                    "stockout_days",
                    "stockout_rate",
                    "fill_rate",
                    "average_stock",
                    "average_excess",
                    "orders",
                    "ordered_units",
                ]
            )
            for job, (pnames, outcomes) in zip(jobs, results, strict=True):
                for name, o in zip(pnames, outcomes, strict=True):
                    w.writerow(
                        [
                            job.series.sku,
                            job.series.warehouse,
                            name,
                            o.days,
                            o.demand,
                            o.served,
                            o.lost,
                            o.stockout_days,
                            f"{o.stockout_rate:.6f}",
                            f"{o.fill_rate:.6f}",
                            f"{o.average_stock:.3f}",
                            f"{o.average_excess:.3f}",
                            o.orders,
                            o.ordered_units,
                        ]
                    )
        print(f"per-series results written to {args.output}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="replay daily demand through the reorder policy and a naive min/max rule",
        description="Reads sku,warehouse,date,quantity (daily demand) and replays it day by day "
        "through the service's own reorder policy (the planning job's forecast, safety stock, "
        "reorder point and order quantity) and through naive min/max rules, with the same "
        "demand, starting stock and lead time; lost sales. Prints stock-out rate, fill rate, "
        "average stock, excess stock and orders placed. Settings not given as options come "
        "from INVENTORY_* (forecast horizon, history window, season length, cover days).",
    )
    p.add_argument("--csv", required=True, help="input CSV: sku,warehouse,date,quantity")
    p.add_argument("--lead-time-days", type=int, help="default INVENTORY_DEFAULT_LEAD_TIME_DAYS")
    p.add_argument(
        "--service-levels",
        "--service-level",
        help="comma-separated, e.g. 0.90,0.95,0.99 (default INVENTORY_SERVICE_LEVEL)",
    )
    p.add_argument("--review-period", type=int, default=1, help="days between reviews (1)")
    p.add_argument("--refit-days", type=int, default=7, help="days between forecast refits (7)")
    p.add_argument(
        "--warmup-days", type=int, default=90, help="days used only as history at the start (90)"
    )
    p.add_argument(
        "--cover-days",
        type=int,
        help="one order cycle in days: the naive max and the excess window "
        "(default INVENTORY_STANDARD_COVER_DAYS)",
    )
    p.add_argument(
        "--naive-safety-days",
        default="0,1,2,3,5,7,10,14",
        help="naive min = mean daily demand × (lead time + this); one rule per value "
        "(0,1,2,3,5,7,10,14)",
    )
    p.add_argument(
        "--naive-window-days", type=int, default=28, help="days the naive mean is taken over (28)"
    )
    p.add_argument(
        "--initial-stock-days",
        type=float,
        help="starting stock in days of the warm-up's mean demand (default lead time + cover)",
    )
    p.add_argument("--replay-days", type=int, help="replay at most N days after the warm-up (all)")
    p.add_argument("--limit-series", type=int, help="replay only the first N series (sorted)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (1)")
    p.add_argument("--output", help="also write per-series, per-policy results here")
    p.set_defaults(func=cmd_simulate)
