"""Run the benchmarks, print one table and write BENCHMARKS.md.

By default (``make bench``) the load benchmark (``bench/load_bench.py``): the services as separate
processes under compiled load generators (vegeta, ghz), every baseline in its own process, the
per-checkout budget. The older per-service micro-benchmarks (``bench/<service>_bench.py``, the
service in the same process as a Python load generator, so their ratios flatter) run only when
named: ``python -m bench.run pricing risk``, or ``--all``.

A correctness counter (a figure named ``correctness: ...``) that is not 0 fails the run (exit 1)
and is written at the top of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
Row = dict[str, object]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def table(rows: list[Row]) -> str:
    header = ["figure", "value", "unit", "baseline (same run)", "baseline value", "ratio", "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                _fmt(r.get(k, ""))
                for k in ("figure", "value", "unit", "baseline", "baseline_value", "ratio", "notes")
            )
            + " |"
        )
    return "\n".join(lines)


def print_table(rows: list[Row]) -> None:
    print(table(rows))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--all", action="store_true", help="every bench/*_bench.py")
    args = parser.parse_args()
    modules = sorted(p.stem for p in (ROOT / "bench").glob("*_bench.py"))
    if args.names:
        modules = [m for m in modules if m.removesuffix("_bench") in args.names or m in args.names]
    elif not args.all:
        modules = ["load_bench"]
    rows: list[Row] = []
    sections: list[str] = []
    failures: list[str] = []
    for name in modules:
        print(f"==> {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            got = asyncio.run(module.run())
            rows.extend(got)
            print(table(got))
            for section in getattr(module, "sections", []):
                sections.append(section)
                print(section)
        except Exception:
            failures.append(name)
            traceback.print_exc()
        print(f"    ({time.perf_counter() - started:.0f} s)", flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    broken = [r for r in rows if str(r["figure"]).startswith("correctness:") and r["value"] != 0]
    loadavg = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    report = ["# Benchmarks", ""]
    if broken:
        report += [
            "**CORRECTNESS FAILED in this run: "
            + "; ".join(f"{r['figure']} = {r['value']}" for r in broken)
            + ".**",
            "",
        ]
    report += [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, commit `{commit}`,"
        f" with `make bench` ({', '.join(modules)}). Load average at the end: {loadavg}.",
        "",
        "**Loaded figures.** This 2-core machine is shared: other engineers' builds and tests"
        " ran at the same time, and the load generators, the services, PostgreSQL and Kafka all"
        " share the same 2 cores. Compare ratios measured in the same run, not absolute figures,"
        " and do not take these as the machine's ceiling. Every figure's command is in its"
        " notes; the services run as separate processes (`ecomops serve <svc>`), HTTP load comes"
        " from vegeta and gRPC load from ghz (`bash deploy/local/fetch-tools.sh vegeta ghz`),"
        " each baseline runs in its own process. Ratios: value / baseline (for latencies, above"
        " 1 is slower than the baseline).",
        "",
        table(rows),
        "",
        *sections,
    ]
    if failures:
        report += [f"Benchmarks that failed in this run: {', '.join(failures)}.", ""]
    Path(args.output).write_text("\n".join(report))
    print()
    print(table(rows))
    for section in sections:
        print(section)
    print(f"\nwritten to {args.output}")
    if broken:
        print(
            "\nCORRECTNESS COUNTERS NOT 0: "
            + "; ".join(f"{r['figure']} = {r['value']}" for r in broken),
            file=sys.stderr,
        )
    return 1 if failures or broken else 0


if __name__ == "__main__":
    sys.exit(main())
