"""Helpers shared by the benchmarks: latency percentiles, load loops, a bare FastAPI baseline."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

Row = dict[str, object]


def row(
    figure: str, value: float, unit: str, baseline: str, baseline_value: float, notes: str = ""
) -> Row:
    ratio = value / baseline_value if baseline_value else float("nan")
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "notes": notes,
    }


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000.0

    def summary(self) -> str:
        return (
            f"{self.ok} ok, {self.failed} failed in {self.elapsed:.2f}s: "
            f"{self.throughput:.0f}/s, p50 {self.p(0.5):.1f} ms, p95 {self.p(0.95):.1f} ms, "
            f"p99 {self.p(0.99):.1f} ms, median of {len(self.latencies)}"
            if self.latencies
            else "no samples"
        )


async def closed_loop(
    call: Callable[[int], Awaitable[bool]], *, concurrency: int, total: int
) -> LoadResult:
    """``concurrency`` workers issue ``total`` calls back to back; latency per call."""
    result = LoadResult()
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            try:
                ok = await call(i)
            except Exception:
                ok = False
            result.latencies.append(time.perf_counter() - started)
            if ok:
                result.ok += 1
            else:
                result.failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/ping")
    async def ping() -> dict[str, Any]:
        return {"status": "ok", "items": [{"sku": "BASE", "score": 1.0}]}

    @app.post("/v1/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    return app


@contextlib.asynccontextmanager
async def bare_server() -> AsyncIterator[int]:
    """A bare FastAPI app under uvicorn in this process: the HTTP baseline."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(bare_app(), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


def pgbench_path() -> str:
    import shutil
    import subprocess

    found = shutil.which("pgbench")
    if found:
        return found
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return bindir.stdout.strip() + "/pgbench"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
