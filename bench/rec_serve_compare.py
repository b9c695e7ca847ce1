"""Recommendation serving, before/after: ``ecomops serve recommendation`` processes of two code
trees (and cache settings) loaded by vegeta in turn, beside the bare FastAPI GET
(``bench.baselines http``), alternating, with the load average of each measurement.

Assumes a stack's env is exported (RECOMMENDATION_DATABASE_URL's server, ECOMOPS_KAFKA_BOOTSTRAP,
ECOMOPS_JWT_SECRET). Uses its own database (``<name>_servebench``, created and migrated once,
seeded once with ``bench.recommendation_bench``'s catalogue of 200 SKUs, 400 paid orders and 1000
views), and its own consumer groups starting at the latest offsets, so it neither reads nor
changes anyone else's data on a shared stack.

Run: ``python -m bench.rec_serve_compare [--seconds 8] [--workers 16] [--rounds 2]
[--variant NAME=ECOMOPS_BIN:CACHE_SECONDS ...]``
(default variants: ``before=/work/main/.venv/bin/ecomops:0`` and
``after=.venv/bin/ecomops:2``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench import tools
from bench.load_bench import ROOT, _free_port, baseline_process

ENDPOINTS = ("personalised", "similar", "bought-together", "trending")


def _db_url() -> str:
    base = os.environ["RECOMMENDATION_DATABASE_URL"]
    head, _, name = base.rpartition("/")
    return f"{head}/{name.split('?')[0]}_servebench"


async def _prepare(url: str) -> tuple[list[str], list[str]]:
    """Create, migrate and (once) seed the bench database; the SKUs and customers to ask for."""
    import asyncpg
    import sqlalchemy as sa

    from ecomops_platform.migrations import upgrade_async
    from ecomops_platform.settings import CommonSettings
    from recommendation_service.bootstrap import create_service
    from recommendation_service.settings import RecommendationSettings

    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    head, _, name = plain.rpartition("/")
    admin = await asyncpg.connect(f"{head}/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await upgrade_async("recommendation", url)
    settings = RecommendationSettings(database_url=url, http_port=0, grpc_port=0)
    service = create_service(settings, CommonSettings(rate_limit_per_minute=10_000_000))
    async with service.running():
        async with service.db.engine.connect() as conn:
            seeded = (
                await conn.execute(sa.text("SELECT count(*) FROM catalog_items"))
            ).scalar_one()
        if not seeded:
            from bench.recommendation_bench import _seed

            await _seed(service, "serve", random.Random(7), 400, 1000)
        async with service.db.engine.connect() as conn:
            skus = [
                r[0]
                for r in await conn.execute(
                    sa.text("SELECT sku FROM catalog_items WHERE sku LIKE 'bench-serve-%'")
                )
            ]
            customers = [
                r[0]
                for r in await conn.execute(
                    sa.text(
                        "SELECT DISTINCT customer_id FROM interactions "
                        "WHERE customer_id LIKE 'bench-serve-%' AND kind = 'purchase'"
                    )
                )
            ]
    return sorted(skus), sorted(customers)


def _targets(base: str, token: str, skus: list[str], customers: list[str]) -> dict[str, Any]:
    auth = {"Authorization": [f"Bearer {token}"]}

    def get(path: str) -> dict[str, Any]:
        return {"method": "GET", "url": f"{base}{path}", "header": auth}

    return {
        "personalised": [get(f"/v1/recommendations/customers/{c}?limit=5") for c in customers],
        "similar": [get(f"/v1/recommendations/skus/{s}/similar?limit=5") for s in skus],
        "bought-together": [
            get(f"/v1/recommendations/skus/{s}/bought-together?limit=5") for s in skus
        ],
        "trending": [get("/v1/recommendations/trending?limit=5")],
    }


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise tools.BenchError(f"the service exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise tools.BenchError(f"{url} not ready in {timeout} s")


def _serve(exe: str, url: str, cache: str, tag: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "RECOMMENDATION_DATABASE_URL": url,
            "RECOMMENDATION_HTTP_PORT": str(port),
            "RECOMMENDATION_GRPC_PORT": str(_free_port()),
            "RECOMMENDATION_READ_CACHE_SECONDS": cache,
            "ECOMOPS_RATE_LIMIT_PER_MINUTE": "100000000",
            "ECOMOPS_CONSUMER_GROUP_PREFIX": f"servebench-{tag}-{uuid.uuid4().hex[:8]}-",
            "ECOMOPS_CONSUMER_OFFSET_RESET": "latest",
            "ECOMOPS_LOG_LEVEL": "WARNING",
        }
    )
    proc = subprocess.Popen(
        [exe, "serve", "recommendation"],
        cwd=str(Path(exe).resolve().parents[2]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, port


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _line(label: str, res: tools.HttpResult) -> str:
    ok = sum(1 for c in res.codes if 200 <= c < 300)
    return (
        f"{label:<40} {res.rate(200):>9.1f} req/s (200)  p50 {res.p(0.5):>7.1f} ms  "
        f"p99 {res.p(0.99):>7.1f} ms  ok {ok}/{len(res.codes)}  load {_loadavg()}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rec_serve_compare")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[])
    args = parser.parse_args(argv)
    variants = args.variant or [
        "before=/work/main/.venv/bin/ecomops:0",
        f"after={ROOT / '.venv/bin/ecomops'}:2",
    ]
    from ecomops_platform.auth import mint_token

    os.environ.setdefault("ECOMOPS_CONSUMER_OFFSET_RESET", "latest")
    os.environ["ECOMOPS_CONSUMER_GROUP_PREFIX"] = f"servebench-seed-{uuid.uuid4().hex[:8]}-"
    url = _db_url()
    skus, customers = asyncio.run(_prepare(url))
    token = mint_token(os.environ["ECOMOPS_JWT_SECRET"], "bench-ops", "ops")
    print(f"database {url.rpartition('/')[2]}: {len(skus)} SKUs, {len(customers)} customers")
    with baseline_process("http") as (bare_port, _pid):
        bare = [{"method": "GET", "url": f"http://127.0.0.1:{bare_port}/v1/ping"}]
        tools.vegeta(bare, workers=args.workers, duration=1)
        for rnd in range(1, args.rounds + 1):
            for spec in variants:
                name, _, rest = spec.partition("=")
                exe, _, cache = rest.rpartition(":")
                res = tools.vegeta(bare, workers=args.workers, duration=args.seconds)
                print(_line(f"round {rnd} bare FastAPI GET", res), flush=True)
                proc, port = _serve(exe, url, cache, name)
                try:
                    tg = _targets(f"http://127.0.0.1:{port}", token, skus, customers)
                    for endpoint in ENDPOINTS:
                        tools.vegeta(tg[endpoint], workers=args.workers, duration=1)  # warm
                        res = tools.vegeta(
                            tg[endpoint], workers=args.workers, duration=args.seconds
                        )
                        print(_line(f"round {rnd} {name} {endpoint}", res), flush=True)
                finally:
                    proc.terminate()
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
