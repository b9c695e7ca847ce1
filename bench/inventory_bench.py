"""Flash sale on the inventory service: N concurrent clients reserving one hot SKU.

Measured in one run, against the same PostgreSQL:

* the service over REST (``POST /v1/reservations``, one unit per reservation, each client with
  its own token; the clients run in a separate process) — what the order service sees;
* the same through the handler path in-process (no HTTP), to show what HTTP costs;
* baseline: ``pgbench`` with the same client count running the same conditional UPDATE
  (``... WHERE on_hand - reserved >= 1``) on a scratch table, one statement per transaction;
* the sold-out phase: more clients than units; the oversell count (holds beyond the units, and
  rows with reserved > on_hand) must be 0.

Assumes the stack's environment is exported (INVENTORY_DATABASE_URL, ECOMOPS_*). Fixed seed.
``python -m bench.inventory_bench`` prints the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ecomops_platform.auth import Caller, Role
from ecomops_platform.migrations import upgrade_async
from ecomops_testing import unique
from inventory_service.bootstrap import create_service
from inventory_service.domain.models import AdjustmentReason, Line, SkuStatus
from inventory_service.service_layer.catalog import UpsertSku, UpsertWarehouse
from inventory_service.service_layer.reservations import ReserveStock
from inventory_service.service_layer.stock import AdjustStock, GetStock
from inventory_service.settings import InventorySettings

CLIENTS = int(os.environ.get("INVENTORY_BENCH_CLIENTS", "200"))
PER_CLIENT = int(os.environ.get("INVENTORY_BENCH_PER_CLIENT", "4"))
SEED = 20261124

Row = dict[str, object]


def _row(
    figure: str, value: float, unit: str, baseline: str, baseline_value: float, notes: str
) -> Row:
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": value / baseline_value if baseline_value else float("nan"),
        "notes": notes,
    }


async def _setup_sku(svc: Any, units: int) -> str:
    sku = unique("flash")
    wh = unique("flash-wh")
    bus, ops = svc.bus, Caller(subject="bench-ops", role=Role.OPS)
    await bus.handle(
        UpsertSku(sku=sku, title="Flash sale item", category="bench", status=SkuStatus.ACTIVE),
        ops,
    )
    await bus.handle(UpsertWarehouse(code=wh, name="Bench warehouse", region="eu", priority=1), ops)
    await bus.handle(
        AdjustStock(sku=sku, warehouse=wh, delta=units, reason=AdjustmentReason.RECEIPT),
        ops,
        idempotency_key=unique("bench-key"),
    )
    return sku


_LOAD_SCRIPT = r"""
import asyncio, json, sys, time, uuid
import httpx
from ecomops_testing import token

base, sku, clients, per_client = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


async def main():
    ok = conflict = 0
    other = []
    retries = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def client(n):
            nonlocal ok, conflict
            headers = {"Authorization": "Bearer " + token(f"bench-{n}", "service")}
            for _ in range(per_client):
                rid = "fr-" + uuid.uuid4().hex
                body = {"reservation_id": rid, "lines": [{"sku": sku, "quantity": 1}]}
                for attempt in range(5):
                    try:
                        r = await http.post("/v1/reservations", json=body, headers=headers)
                        break
                    except httpx.TransportError as exc:
                        # retry with the same reservation_id: idempotent, never a second hold
                        retries.append(type(exc).__name__)
                        await asyncio.sleep(0.1 * (attempt + 1))
                else:
                    other.append("transport errors")
                    continue
                if r.status_code == 201:
                    ok += 1
                elif r.status_code == 409:
                    conflict += 1
                else:
                    other.append(f"{r.status_code}: {r.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    result = {"ok": ok, "conflict": conflict, "other": other, "elapsed": elapsed}
    print(json.dumps(result | {"retries": len(retries)}))


asyncio.run(main())
"""


async def _rest_phase(base: str, sku: str, clients: int, per_client: int) -> tuple[int, int, float]:
    """The load runs in a separate process (as real clients would), not on the service's loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LOAD_SCRIPT,
        base,
        sku,
        str(clients),
        str(per_client),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed with {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    if result["other"]:
        raise RuntimeError(f"unexpected answers: {result['other'][:3]}")
    if result["retries"]:
        print(f"load generator: {result['retries']} transport errors retried", file=sys.stderr)
    return int(result["ok"]), int(result["conflict"]), float(result["elapsed"])


async def _handler_phase(
    svc: Any, sku: str, clients: int, per_client: int
) -> tuple[int, int, float]:
    from ecomops_platform.errors import Conflict

    ok = conflict = 0

    async def client() -> None:
        nonlocal ok, conflict
        for _ in range(per_client):
            try:
                await svc.bus.handle(
                    ReserveStock(reservation_id=unique("fh"), lines=(Line(sku, 1),)),
                    svc.bus.system,
                )
                ok += 1
            except Conflict:
                conflict += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return ok, conflict, time.perf_counter() - started


async def _levels(svc: Any, sku: str) -> tuple[int, int, int]:
    level = await svc.bus.handle(GetStock(sku=sku), svc.bus.system)
    bad_rows = sum(1 for w in level.warehouses if w.reserved > w.on_hand)
    return level.on_hand, level.reserved, bad_rows


def _pgbench(url: str, clients: int, transactions: int) -> tuple[float, str]:
    binary = shutil.which("pgbench")
    if binary is None:
        try:
            bindir = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            binary = str(Path(bindir) / "pgbench")
        except (OSError, subprocess.CalledProcessError):
            return float("nan"), "pgbench not found"
    u = urlparse(url.replace("postgresql+asyncpg", "postgresql"))
    env = {
        **os.environ,
        "PGHOST": u.hostname or "127.0.0.1",
        "PGPORT": str(u.port or 5432),
        "PGUSER": u.username or "",
        "PGPASSWORD": u.password or "",
        "PGDATABASE": u.path.lstrip("/"),
    }
    total = clients * transactions
    setup = (
        "CREATE TABLE IF NOT EXISTS bench_flash_stock (sku text PRIMARY KEY,"
        " on_hand bigint NOT NULL, reserved bigint NOT NULL,"
        " CHECK (reserved >= 0 AND on_hand >= reserved));"
        f"INSERT INTO bench_flash_stock VALUES ('hot', {total}, 0) ON CONFLICT (sku) DO UPDATE"
        f" SET on_hand = {total}, reserved = 0;"
    )
    psql = shutil.which("psql") or str(Path(binary).with_name("psql"))
    subprocess.run([psql, "-q", "-c", setup], env=env, check=True, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(
            "UPDATE bench_flash_stock SET reserved = reserved + 1 "
            "WHERE sku = 'hot' AND on_hand - reserved >= 1;\n"
        )
        script = fh.name
    try:
        out = subprocess.run(
            [binary, "-n", "-c", str(clients), "-j", "2", "-t", str(transactions), "-f", script],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(script)
    check = subprocess.run(
        [psql, "-Atq", "-c", "SELECT reserved FROM bench_flash_stock WHERE sku = 'hot'"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    return (float(m.group(1)) if m else float("nan")), f"pgbench reserved {check}/{total}"


async def run() -> list[Row]:
    random.seed(SEED)
    url = os.environ["INVENTORY_DATABASE_URL"]
    await upgrade_async("inventory", url)
    settings = InventorySettings(
        database_url=url,
        http_port=0,
        grpc_port=0,
        db_pool_size=40,
        db_max_overflow=0,
        planning_interval_seconds=10**9,
        snapshot_interval_seconds=10**9,
    )
    os.environ.setdefault("ECOMOPS_RATE_LIMIT_PER_MINUTE", "100000")
    svc = create_service(settings)
    rows: list[Row] = []
    async with svc.running():
        base = f"http://127.0.0.1:{svc.http_port}"
        units = CLIENTS * PER_CLIENT
        # Warm-up: connections, code paths.
        warm = await _setup_sku(svc, 200)
        await _rest_phase(base, warm, 20, 5)

        sku = await _setup_sku(svc, units)
        ok, conflict, elapsed = await _rest_phase(base, sku, CLIENTS, PER_CLIENT)
        rest_rate = ok / elapsed
        # Sold out: every further attempt must be refused.
        extra_ok, extra_conflict, _ = await _rest_phase(base, sku, CLIENTS, 1)
        on_hand, reserved, bad_rows = await _levels(svc, sku)
        oversell = max(0, ok + extra_ok - units) + max(0, reserved - on_hand) + bad_rows

        sku2 = await _setup_sku(svc, units)
        hok, _, helapsed = await _handler_phase(svc, sku2, CLIENTS, PER_CLIENT)
        hextra, _, _ = await _handler_phase(svc, sku2, CLIENTS, 1)
        on_hand2, reserved2, bad2 = await _levels(svc, sku2)
        oversell2 = max(0, hok + hextra - units) + max(0, reserved2 - on_hand2) + bad2

    tps, pg_note = await asyncio.to_thread(_pgbench, url, CLIENTS, PER_CLIENT)
    note = f"{CLIENTS} clients x {PER_CLIENT}, 1 unit each, {units} units; " + pg_note
    rows.append(
        _row(
            "flash sale: reservations/s (REST)",
            rest_rate,
            "reservations/s",
            f"pgbench -c {CLIENTS} same conditional UPDATE",
            tps,
            f"{ok} held, {conflict} refused; " + note,
        )
    )
    rows.append(
        _row(
            "flash sale: reservations/s (handler path, no HTTP)",
            hok / helapsed,
            "reservations/s",
            f"pgbench -c {CLIENTS} same conditional UPDATE",
            tps,
            f"{hok} held; " + note,
        )
    )
    rows.append(
        _row(
            "flash sale: oversold units (REST + handler runs)",
            float(oversell + oversell2),
            "units",
            "units available",
            float(units),
            f"sold-out phase: {extra_conflict}/{CLIENTS} REST and {CLIENTS - hextra}/{CLIENTS} "
            f"handler attempts refused (409); final reserved {reserved}/{on_hand}",
        )
    )
    return rows


def _print(rows: list[Row]) -> None:
    print(f"{'figure':<52}{'value':>12} {'unit':<16}{'baseline':>12}{'ratio':>8}  notes")
    for r in rows:
        print(
            f"{r['figure']!s:<52}{float(str(r['value'])):>12.1f} {r['unit']!s:<16}"
            f"{float(str(r['baseline_value'])):>12.1f}{float(str(r['ratio'])):>8.3f}  "
            f"{r['baseline']}; {r['notes']}"
        )


if __name__ == "__main__":
    _print(asyncio.run(run()))
