"""The compiled load generators and the meters of ``make bench``.

- :func:`vegeta` runs ``vegeta attack`` (HTTP, Go; built by ``deploy/local/fetch-tools.sh``) on a
  JSON targets file, closed loop (``-rate=0``, a fixed number of workers), and reads every result
  back (status, latency, body), so the bench can count what the services accepted.
- :func:`ghz` runs ``ghz`` (gRPC, Go) against a unary method, closed loop (``-c`` workers).
- :class:`CpuMeter` reads utime + stime of a process and its descendants from ``/proc``.
- :class:`PgMeter` reads ``pg_stat_statements`` (statements per database) and
  ``pg_stat_database`` (transactions per database) so deltas can be taken around a workload.

The generators run as their own processes: the Python process that drives the bench only
writes target files and reads results, so it is not in the measured path.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".local" / "bin"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise BenchError(f"{path} is missing: run bash deploy/local/fetch-tools.sh vegeta ghz")
    return str(path)


def load_average() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"{one}/{five}/{fifteen}"


# --- HTTP: vegeta ------------------------------------------------------------------------------
def target(
    method: str, url: str, headers: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    """One vegeta JSON target (``-format=json``)."""
    t: dict[str, Any] = {"method": method, "url": url}
    hdr = {k: [v] for k, v in (headers or {}).items()}
    if body is not None:
        hdr.setdefault("Content-Type", ["application/json"])
        t["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    if hdr:
        t["header"] = hdr
    return t


@dataclass
class HttpResult:
    """Every response of one attack."""

    elapsed: float
    codes: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds
    bodies: list[bytes] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # requests without an HTTP answer
    command: str = ""
    generator_cpu: float = 0.0  # seconds of CPU vegeta itself used (user + system)

    def count(self, *codes: int) -> int:
        return sum(1 for c in self.codes if c in codes)

    def rate(self, *codes: int) -> float:
        n = self.count(*codes) if codes else len(self.codes)
        return n / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        from bench.common import percentile

        return percentile(self.latencies, q) * 1000.0

    def generator_share(self) -> str:
        """How much of one core the generator used: far below 100 % means it was not the
        bottleneck."""
        if not self.elapsed:
            return "vegeta CPU n/a"
        return f"vegeta used {self.generator_cpu / self.elapsed:.0%} of one core"

    def statuses(self) -> str:
        tally: dict[int, int] = {}
        for c in self.codes:
            tally[c] = tally.get(c, 0) + 1
        return ", ".join(f"{c or 'error'}: {n}" for c, n in sorted(tally.items()))


def vegeta(
    targets: list[dict[str, Any]],
    *,
    workers: int,
    duration: float | None = None,
    timeout: float = 60.0,
    keep_bodies: bool = False,
) -> HttpResult:
    """Closed loop with ``workers`` connections: each target once (``duration`` None: the file is
    read lazily and the attack ends at its end), or the targets round robin for ``duration`` s."""
    exe = tool("vegeta")
    with tempfile.TemporaryDirectory(prefix="vegeta-") as tmp:
        tfile, out = Path(tmp) / "targets.json", Path(tmp) / "results.bin"
        with tfile.open("w") as fh:
            for t in targets:
                fh.write(json.dumps(t, separators=(",", ":")) + "\n")
        cmd = [
            exe,
            "attack",
            "-format=json",
            f"-targets={tfile}",
            "-rate=0",
            f"-workers={workers}",
            f"-max-workers={workers}",
            f"-timeout={timeout:g}s",
            f"-output={out}",
        ]
        cmd += [f"-duration={duration:g}s"] if duration else ["-lazy"]
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if run.returncode != 0:
            raise BenchError(f"vegeta attack failed: {run.stderr[-2000:]}")
        enc = subprocess.run(
            [exe, "encode", "-to=json", str(out)], capture_output=True, check=True
        ).stdout
    shown = " ".join(c if not c.startswith(("-targets=", "-output=")) else "" for c in cmd[1:])
    result = HttpResult(elapsed=0.0, command="vegeta " + " ".join(shown.split()))
    result.generator_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    first, last = None, None
    for line in enc.splitlines():
        r = json.loads(line)
        code = int(r.get("code", 0))
        if code == 0 and "no targets to attack" in str(r.get("error")):
            continue  # the lazy targeter's end-of-file marker, not a request
        lat = int(r.get("latency", 0)) / 1e9
        result.codes.append(code)
        result.latencies.append(lat)
        if code == 0:  # no HTTP answer (connection refused/reset/closed, timeout)
            err = str(r.get("error"))[-120:]
            result.errors[err] = result.errors.get(err, 0) + 1
        if keep_bodies:
            result.bodies.append(base64.b64decode(r.get("body") or ""))
        started = _ts(r["timestamp"])
        first = started if first is None else min(first, started)
        last = started + lat if last is None else max(last, started + lat)
    if first is not None and last is not None:
        result.elapsed = last - first
    return result


def _ts(stamp: str) -> float:
    from datetime import datetime

    # vegeta writes RFC 3339 with nanoseconds; Python parses microseconds.
    head, _, tail = stamp.partition(".")
    frac, zone = tail, ""
    for i, ch in enumerate(tail):
        if not ch.isdigit():
            frac, zone = tail[:i], tail[i:]
            break
    zone = "+00:00" if zone in ("Z", "") else zone
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6]:0<6}{zone}").timestamp()


# --- gRPC: ghz ---------------------------------------------------------------------------------
@dataclass
class GrpcResult:
    count: int
    ok: int
    rps: float
    p50: float  # ms
    p99: float
    errors: dict[str, int]
    command: str


def ghz(
    *,
    target_addr: str,
    call: str,
    proto: Path,
    import_paths: list[Path],
    data: dict[str, Any],
    concurrency: int,
    total: int,
    metadata: dict[str, str] | None = None,
) -> GrpcResult:
    cmd = [
        tool("ghz"),
        "--insecure",
        # A compiled image (``buf build -o x.binpb``) for contracts ghz's own parser refuses
        # (proto3 ``optional`` fields); a .proto file otherwise.
        *(
            [f"--protoset={proto}"]
            if proto.suffix == ".binpb"
            else [f"--proto={proto}", *(f"--import-paths={p}" for p in import_paths)]
        ),
        f"--call={call}",
        f"--concurrency={concurrency}",
        f"--connections={min(concurrency, 4)}",
        f"--total={total}",
        "--timeout=30s",
        "--format=json",
        f"--data={json.dumps(data)}",
    ]
    if metadata:
        cmd.append(f"--metadata={json.dumps(metadata)}")
    cmd.append(target_addr)
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if not run.stdout.strip():
        raise BenchError(f"ghz failed: {run.stderr[-2000:]}")
    rep = json.loads(run.stdout)
    dist = {
        int(d["percentage"]): int(d["latency"]) / 1e6 for d in rep.get("latencyDistribution") or []
    }
    codes = rep.get("statusCodeDistribution") or {}
    shown = [
        c
        for c in cmd[1:]
        if not c.startswith(("--data=", "--metadata=", "--proto=", "--protoset="))
    ]
    return GrpcResult(
        count=int(rep.get("count", 0)),
        ok=int(codes.get("OK", 0)),
        rps=float(rep.get("rps", 0.0))
        * (int(codes.get("OK", 0)) / max(1, int(rep.get("count", 0)))),
        p50=dist.get(50, float("nan")),
        p99=dist.get(99, float("nan")),
        errors={str(k): int(v) for k, v in (rep.get("errorDistribution") or {}).items()},
        command="ghz " + " ".join(shown).replace(str(ROOT) + "/", ""),
    )


# --- CPU per process ---------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every live descendant (worker processes included)."""
    kids = _children()
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        todo.extend(kids.get(p, []))
    return total


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {k: cpu_seconds(p) for k, p in pids.items()}

    def delta(self) -> dict[str, float]:
        return {k: cpu_seconds(p) - self.start[k] for k, p in self.pids.items()}


# --- PostgreSQL counters -----------------------------------------------------------------------
STATEMENTS_SQL = """
SELECT d.datname, sum(s.calls)::bigint AS calls
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
GROUP BY d.datname
"""
XACT_SQL = "SELECT datname, xact_commit + xact_rollback AS xacts FROM pg_stat_database"
QUERIES_SQL = """
SELECT d.datname, s.queryid, s.calls, s.query
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname LIKE 'ecomops%'
"""


class PgMeter:
    """Statements (``pg_stat_statements``, BEGIN/COMMIT included) and transactions
    (``pg_stat_database``) per database; the meter's own queries run in ``postgres``."""

    def __init__(self, admin_dsn: str) -> None:
        self.dsn = admin_dsn
        self.has_statements = False

    async def setup(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            preload = await conn.fetchval("SHOW shared_preload_libraries")
            if "pg_stat_statements" in preload:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                self.has_statements = True
        finally:
            await conn.close()

    async def snapshot(self) -> dict[str, tuple[int, int]]:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            # pg_stat_database is a per-transaction snapshot: clear it to read fresh counters.
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            xacts = {r["datname"]: int(r["xacts"]) for r in await conn.fetch(XACT_SQL)}
            calls: dict[str, int] = {}
            if self.has_statements:
                calls = {r["datname"]: int(r["calls"]) for r in await conn.fetch(STATEMENTS_SQL)}
        finally:
            await conn.close()
        return {db: (calls.get(db, 0), xacts.get(db, 0)) for db in set(xacts) | set(calls)}

    async def queries(self) -> dict[tuple[str, int], tuple[int, str]]:
        """(database, queryid) -> (calls, normalised query text)."""
        import asyncpg

        if not self.has_statements:
            return {}
        conn = await asyncpg.connect(self.dsn)
        try:
            return {
                (r["datname"], int(r["queryid"])): (int(r["calls"]), str(r["query"]))
                for r in await conn.fetch(QUERIES_SQL)
            }
        finally:
            await conn.close()

    @staticmethod
    def top_queries(
        before: dict[tuple[str, int], tuple[int, str]],
        after: dict[tuple[str, int], tuple[int, str]],
        limit: int,
    ) -> list[tuple[str, int, str]]:
        """The ``limit`` statements run most often between the snapshots: (db, calls, query)."""
        out = []
        for key, (calls, query) in after.items():
            n = calls - before.get(key, (0, ""))[0]
            if n > 0:
                out.append((key[0], n, " ".join(query.split())))
        out.sort(key=lambda t: -t[1])
        return out[:limit]

    @staticmethod
    def delta(
        before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
    ) -> dict[str, tuple[int, int]]:
        out = {}
        for db, (calls, xacts) in after.items():
            c0, x0 = before.get(db, (0, 0))
            out[db] = (calls - c0, xacts - x0)
        return out


# --- service metrics -------------------------------------------------------------------------
async def consumer_chunks(stack: Any, services: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Per service: committed consumer transactions and the events they applied, so far
    (``ecomops_consumer_chunk_events`` from the service's /metrics)."""
    import httpx

    out: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for svc in services:
            text = (await client.get(f"{stack.url(svc)}/metrics")).text
            count = events = 0.0
            for line in text.splitlines():
                if line.startswith("ecomops_consumer_chunk_events_count"):
                    count += float(line.rsplit(" ", 1)[1])
                elif line.startswith("ecomops_consumer_chunk_events_sum"):
                    events += float(line.rsplit(" ", 1)[1])
            out[svc] = (count, events)
    return out
