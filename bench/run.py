"""Run every benchmark (``bench/*_bench.py``), print one table and write BENCHMARKS.md."""

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
    args = parser.parse_args()
    modules = sorted(p.stem for p in (ROOT / "bench").glob("*_bench.py"))
    if args.names:
        modules = [m for m in modules if m.removesuffix("_bench") in args.names or m in args.names]
    rows: list[Row] = []
    failures: list[str] = []
    for name in modules:
        print(f"==> {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            got = asyncio.run(module.run())
            rows.extend(got)
            print(table(got))
        except Exception:
            failures.append(name)
            traceback.print_exc()
        print(f"    ({time.perf_counter() - started:.0f} s)", flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    report = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, commit `{commit}`.",
        "",
        "Command: `make bench` (a throw-away PostgreSQL + Kafka stack, every service in-process"
        " with its load generator, baselines measured in the same run on the same machine). The"
        " machine is shared and noisy; compare ratios, not absolute figures. Load generators,"
        " services, PostgreSQL and Kafka all ran on the same 2 cores.",
        "",
        table(rows),
        "",
    ]
    if failures:
        report += [f"Benchmarks that failed in this run: {', '.join(failures)}.", ""]
    Path(args.output).write_text("\n".join(report))
    print()
    print(table(rows))
    print(f"\nwritten to {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
