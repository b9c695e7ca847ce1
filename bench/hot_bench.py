"""Pricing quote and risk assessment request paths, alone: throughput and latency from vegeta
(REST) and ghz (gRPC) against ``ecomops serve pricing`` / ``ecomops serve risk`` in their own
processes, beside a bare uvicorn/FastAPI POST (own process, same generator, same workers), with
SQL statements and transactions per request (``pg_stat_statements`` / ``pg_stat_database``
deltas of the service's database) and CPU milliseconds per request of the service process.

Assumes a stack's env is exported (``set -a; . .local/dev/env; set +a``) and vegeta and ghz in
``.local/bin`` (``bash deploy/local/fetch-tools.sh vegeta ghz``). The services run on
``PROOF_PORT_BASE`` (41000 unless set) so that they never collide with a test run.

Run: ``python -m bench.hot_bench [SECONDS]`` (8 by default). Other users of a shared stack's
databases show up in the statement counts: the idle rate of each database, measured just
before, is printed beside every figure.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("PROOF_PORT_BASE", "41000")

from bench import tools
from bench.load_bench import (
    ROOT,
    _bearer,
    _harness,
    _superuser_dsn,
    assess_order_call,
    baseline_process,
)

WORKERS = 16
GRPC_TOTAL = 1500


async def _seed_pricing(url: str, tag: str) -> list[str]:
    import asyncpg
    import httpx

    skus = [f"HB-{tag}-{i}" for i in range(5)]
    dsn = os.environ["PRICING_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO skus (sku, title, category, status, updated_at) "
            "VALUES ($1, $1, $2, 'active', now())",
            [(s, f"hb-{tag}") for s in skus],
        )
    finally:
        await conn.close()
    ops = {"Authorization": _bearer("bench-ops", "ops")}
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i, sku in enumerate(skus):
            r = await client.put(
                f"/v1/prices/{sku}",
                json={
                    "currency": "EUR",
                    "list_price_minor": 2000 + 1000 * i,
                    "unit_cost_minor": 500,
                    "commission_rate": "0.05",
                    "marketing_cost_rate": "0.05",
                },
                headers=ops,
            )
            r.raise_for_status()
        for body in (
            {
                "name": "bench 10%",
                "kind": "percent",
                "value": "0.10",
                "scope": {"categories": [f"hb-{tag}"]},
                "stackable": True,
            },
            {
                "name": "bench 3 for 2",
                "kind": "buy_x_get_y",
                "value": {"buy": 2, "get": 1},
                "scope": {"skus": skus[:2]},
                "stackable": True,
            },
        ):
            r = await client.post(
                "/v1/promotions",
                json={
                    **body,
                    "starts_at": (now - timedelta(minutes=1)).isoformat(),
                    "ends_at": (now + timedelta(hours=2)).isoformat(),
                },
                headers={**ops, "Idempotency-Key": uuid.uuid4().hex},
            )
            r.raise_for_status()
    return skus


def _py_spy(pid: int, name: str, seconds: float) -> subprocess.Popen[bytes] | None:
    """With ``HOT_BENCH_PYSPY=DIR``: a py-spy profile (collapsed stacks, ``.txt``) of the
    service during the attack."""
    out = os.environ.get("HOT_BENCH_PYSPY")
    if not out:
        return None
    Path(out).mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(Path(out) / f"{slug}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Meter:
    """Statements, transactions (one database) and CPU (one process) over a measured window."""

    def __init__(self, pg: tools.PgMeter, db: str, pid: int) -> None:
        self.pg, self.db, self.pid = pg, db, pid

    async def idle(self, seconds: float = 3.0) -> tuple[float, float]:
        a = await self.pg.snapshot()
        await asyncio.sleep(seconds)
        b = await self.pg.snapshot()
        c, x = tools.PgMeter.delta(a, b).get(self.db, (0, 0))
        return c / seconds, x / seconds

    async def around(self, fn: Any) -> tuple[Any, int, int, float]:
        a = await self.pg.snapshot()
        cpu0 = tools.cpu_seconds(self.pid)
        res = await asyncio.to_thread(fn)
        cpu = tools.cpu_seconds(self.pid) - cpu0
        b = await self.pg.snapshot()
        c, x = tools.PgMeter.delta(a, b).get(self.db, (0, 0))
        return res, c, x, cpu


def _line(
    name: str,
    rate: float,
    p50: float,
    p99: float,
    n: int,
    st: int,
    xa: int,
    cpu: float,
    idle: tuple[float, float],
    base: float,
    extra: str = "",
) -> str:
    per = max(n, 1)
    return (
        f"| {name} | {rate:,.0f}/s | {p50:.1f} | {p99:.1f} | {rate / base:.3f} | "
        f"{st / per:.2f} | {xa / per:.2f} | {1000 * cpu / per:.2f} | "
        f"{idle[0]:.1f}/{idle[1]:.1f} | {extra} |"
    )


async def run(seconds: float) -> None:
    harness = _harness()
    stack = harness.Stack(services=["pricing", "risk"])
    await asyncio.to_thread(stack.start)
    lines: list[str] = []
    try:
        pg = tools.PgMeter(_superuser_dsn())
        await pg.setup()
        tag = uuid.uuid4().hex[:6]
        skus = await _seed_pricing(stack.url("pricing"), tag)
        pids = {svc: stack.procs[svc].popen.pid for svc in ("pricing", "risk")}
        cust = f"hb-{tag}-c"
        cust_auth = {"Authorization": _bearer(cust, "customer")}
        svc_auth = {"Authorization": _bearer("service:order", "service")}
        body = {
            "currency": "EUR",
            "lines": [{"sku": s, "quantity": 1 + i % 3} for i, s in enumerate(skus)],
        }
        n = int(seconds * 1500) + 200
        quote_targets = [
            tools.target(
                "POST",
                f"{stack.url('pricing')}/v1/quotes",
                {**cust_auth, "Idempotency-Key": uuid.uuid4().hex},
                body,
            )
            for _ in range(n)
        ]
        from bench.risk_bench import _orders

        assess_targets = [
            tools.target("POST", f"{stack.url('risk')}/v1/assessments", svc_auth, o)
            for o in _orders(n, seed=int(tag, 16))
        ]
        with baseline_process("http") as (port, _pid):
            tools.vegeta(
                [tools.target("POST", f"http://127.0.0.1:{port}/v1/echo", cust_auth, body)],
                workers=WORKERS,
                duration=1,
            )
            bare = tools.vegeta(
                [tools.target("POST", f"http://127.0.0.1:{port}/v1/echo", cust_auth, body)],
                workers=WORKERS,
                duration=seconds,
            )
        base = bare.rate(200)
        lines.append(
            f"| bare FastAPI POST /v1/echo | {base:,.0f}/s | {bare.p(0.5):.1f} | "
            f"{bare.p(0.99):.1f} | 1.000 | | | | | {bare.statuses()} |"
        )
        for name, svc, db, tgts, code in (
            ("pricing POST /v1/quotes", "pricing", "ecomops_pricing", quote_targets, 201),
            ("risk POST /v1/assessments", "risk", "ecomops_risk", assess_targets, 201),
        ):
            meter = Meter(pg, db, pids[svc])
            tools.vegeta(tgts[-150:], workers=WORKERS, duration=1)  # warm
            idle = await meter.idle()
            spy = _py_spy(pids[svc], name, seconds)
            res, st, xa, cpu = await meter.around(
                lambda t=tgts: tools.vegeta(t[:-150], workers=WORKERS, duration=seconds)
            )
            if spy is not None:
                spy.wait(timeout=60)
            count = len(res.codes)
            lines.append(
                _line(
                    name,
                    res.rate(code),
                    res.p(0.5),
                    res.p(0.99),
                    count,
                    st,
                    xa,
                    cpu,
                    idle,
                    base,
                    f"{res.statuses()}; {res.generator_share()}",
                )
            )
        # gRPC, ghz: pricing CreateQuote (keyed, as order's checkout calls it), risk AssessOrder
        grpc_calls = (
            (
                "pricing gRPC CreateQuote (keyed)",
                "pricing",
                "ecomops_pricing",
                "ecomops.pricing.v1.PricingService.CreateQuote",
                None,  # ghz's parser refuses proto3 optional fields: a buf image
                {
                    "customer_id": f"hb-{tag}-g",
                    "currency": "EUR",
                    "lines": [{"sku": s, "quantity": 1 + i % 3} for i, s in enumerate(skus)],
                    "idempotency_key": f"hb-{tag}-{{{{.RequestNumber}}}}-{{{{.WorkerID}}}}",
                },
            ),
            (
                "risk gRPC AssessOrder",
                "risk",
                "ecomops_risk",
                "ecomops.risk.v1.RiskService.AssessOrder",
                ROOT / "proto" / "ecomops" / "risk" / "v1" / "risk_service.proto",
                assess_order_call(tag),
            ),
        )
        with baseline_process("grpc") as (gport, _gpid):
            bare_g = tools.ghz(
                target_addr=f"127.0.0.1:{gport}",
                call="ecomops.bench.v1.BareService.Echo",
                proto=ROOT / "bench" / "bare.proto",
                import_paths=[ROOT / "bench"],
                data={"payload": "x" * 64},
                concurrency=WORKERS,
                total=GRPC_TOTAL * 2,
            )
        lines.append(
            f"| bare grpc.aio Echo | {bare_g.rps:,.0f}/s | {bare_g.p50:.1f} | {bare_g.p99:.1f} | "
            f"1.000 | | | | | {bare_g.ok}/{bare_g.count} OK |"
        )
        image = Path(tempfile.mkdtemp(prefix="hot-bench-")) / "contracts.binpb"
        # buf comes from PyPI (buf-bin, a dev dependency), not from .local/bin.
        buf = str(ROOT / ".venv" / "bin" / "buf")
        subprocess.run([buf, "build", "-o", str(image)], cwd=ROOT, check=True)
        for name, svc, db, call, proto, data in grpc_calls:
            proto = proto or image
            meter = Meter(pg, db, pids[svc])
            idle = await meter.idle()

            def attack(
                call: str = call, proto: Any = proto, data: Any = data, svc: str = svc
            ) -> Any:
                return tools.ghz(
                    target_addr=stack.grpc_target(svc),
                    call=call,
                    proto=proto,
                    import_paths=[ROOT / "proto"],
                    data=data,
                    concurrency=WORKERS,
                    total=GRPC_TOTAL,
                    metadata={"authorization": svc_auth["Authorization"]},
                )

            g, st, xa, cpu = await meter.around(attack)
            lines.append(
                _line(
                    name,
                    g.rps,
                    g.p50,
                    g.p99,
                    g.count,
                    st,
                    xa,
                    cpu,
                    idle,
                    bare_g.rps,
                    f"{g.ok}/{g.count} OK {g.errors or ''}",
                )
            )
    finally:
        await asyncio.to_thread(stack.stop)
    print(
        f"\nhot_bench at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, "
        f"{WORKERS} workers, {seconds:g} s per HTTP figure, {GRPC_TOTAL} gRPC calls; "
        f"load average {tools.load_average()}\n"
    )
    print(
        "| figure | throughput | p50 ms | p99 ms | ratio to bare | statements/req | "
        "transactions/req | CPU ms/req (service) | idle stmts/s / xacts/s of the db | notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for line in lines:
        print(line)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    asyncio.run(run(seconds))


if __name__ == "__main__":
    main()
