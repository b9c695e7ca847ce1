"""A subprocess stack harness for the proof suite: the real services as real processes.

It starts every service that is built (``ecomops_platform.registry.implemented()``) with
``ecomops serve <svc>`` on the test ports (REST 18001-18006, gRPC 19001-19006), after
``ecomops topics create`` and ``ecomops migrate <svc>``; waits for ``/readyz``; can SIGKILL,
stop and restart one service, start an extra instance with other settings (for instance the
order service pointed at a fault proxy), stop and start Kafka and PostgreSQL of the running
stack profile through ``deploy/local/stack.sh``, and stops everything at the end. Logs go to
``.local/test/logs/<name>.log``.

The stack's PostgreSQL and Kafka come from the environment (``make test`` exports
``.local/test/env``; for runs by hand export ``.local/dev/env``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
STACK_SH = ROOT / "deploy" / "local" / "stack.sh"
# Logs go with the stack profile's state; ports follow docs/conventions.md (18001-18006 REST,
# 19001-19006 gRPC) unless PROOF_PORT_BASE moves them, so two suites can run side by side.
LOG_DIR = ROOT / ".local" / os.environ.get("ECOMOPS_STACK_PROFILE", "test") / "logs"
_BASE = int(os.environ.get("PROOF_PORT_BASE", "18000"))
_SERVICES = ("order", "inventory", "pricing", "recommendation", "risk", "support")
HTTP_PORTS = {svc: _BASE + 1 + i for i, svc in enumerate(_SERVICES)}
GRPC_PORTS = {svc: _BASE + 1001 + i for i, svc in enumerate(_SERVICES)}
ORDER_DEPENDENCIES = ("inventory", "pricing", "risk")
SUPPORT_DEPENDENCIES = ("order", "pricing")


def ecomops_exe() -> str:
    exe = BIN / "ecomops"
    return str(exe) if exe.exists() else "ecomops"


def load_stack_env() -> None:
    """The stack's settings in os.environ (same rules as the platform's test plugin)."""
    from ecomops_testing import load_test_env

    load_test_env()


def implemented() -> list[str]:
    """The services to run: every built one, or ``PROOF_SERVICES`` (comma-separated) if set."""
    from ecomops_platform import registry

    chosen = os.environ.get("PROOF_SERVICES")
    if chosen:
        return [s.strip() for s in chosen.split(",") if s.strip()]
    return registry.implemented()


@dataclass
class Proc:
    """One running service process."""

    name: str
    service: str
    http_port: int
    grpc_port: int
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class StackError(RuntimeError):
    pass


class Stack:
    """The services as subprocesses on the test ports; fault injection on the infrastructure."""

    def __init__(
        self,
        services: list[str] | None = None,
        *,
        log_dir: Path = LOG_DIR,
        extra_env: dict[str, str] | None = None,
        ready_timeout: float = 90.0,
        port_base: int | None = None,
    ) -> None:
        """``port_base`` moves this stack's ports (REST base+1…, gRPC base+1001…) away from the
        suite's (``PROOF_PORT_BASE``): a second stack beside the shared one."""
        load_stack_env()
        base = _BASE if port_base is None else port_base
        self.http_ports = {svc: base + 1 + i for i, svc in enumerate(_SERVICES)}
        self.grpc_ports = {svc: base + 1001 + i for i, svc in enumerate(_SERVICES)}
        self.services = list(services) if services is not None else implemented()
        self.log_dir = log_dir
        self.extra_env = dict(extra_env or {})
        self.ready_timeout = ready_timeout
        self.procs: dict[str, Proc] = {}
        self.profile = os.environ.get("ECOMOPS_STACK_PROFILE", "test")

    # --- configuration -------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("ECOMOPS_ENV", "test")
        # Load tests and journeys run many requests with one token; the limiter is tested apart.
        env.setdefault("ECOMOPS_RATE_LIMIT_PER_MINUTE", "1000000")
        env["PYTHONUNBUFFERED"] = "1"
        # Harnesses on one shared Kafka (a dev stack) must not steal each other's partitions.
        if _BASE != 18000:
            env.setdefault("ECOMOPS_CONSUMER_GROUP_PREFIX", f"h{_BASE}-")
        # Short payment windows and sweeps, so expiry is observable within the suite's time.
        env.setdefault("ORDER_PAYMENT_TIMEOUT", "40")
        env.setdefault("ORDER_RESERVATION_MARGIN", "2")
        env.setdefault("ORDER_JOB_INTERVAL", "1")
        env.setdefault("INVENTORY_EXPIRY_SWEEP_INTERVAL_SECONDS", "1")
        for svc in self.http_ports:
            up = svc.upper()
            env[f"{up}_HTTP_HOST"] = "127.0.0.1"
            env[f"{up}_GRPC_HOST"] = "127.0.0.1"
            env[f"{up}_HTTP_PORT"] = str(self.http_ports[svc])
            env[f"{up}_GRPC_PORT"] = str(self.grpc_ports[svc])
        for dep in ORDER_DEPENDENCIES:
            env[f"ORDER_{dep.upper()}_TARGET"] = f"127.0.0.1:{self.grpc_ports[dep]}"
        for dep in SUPPORT_DEPENDENCIES:
            env[f"SUPPORT_{dep.upper()}_TARGET"] = f"127.0.0.1:{self.grpc_ports[dep]}"
        env.update(self.extra_env)
        return env

    def url(self, svc: str) -> str:
        if svc in self.procs:
            return self.procs[svc].url
        return f"http://127.0.0.1:{self.http_ports[svc]}"

    def grpc_target(self, svc: str) -> str:
        if svc in self.procs:
            return self.procs[svc].grpc_target
        return f"127.0.0.1:{self.grpc_ports[svc]}"

    def has(self, *services: str) -> bool:
        return all(s in self.procs for s in services)

    def require(self, *services: str) -> None:
        """Fail (never skip) with a clear message when a service the test needs is not built."""
        missing = [s for s in services if s not in self.procs]
        if missing:
            import pytest

            pytest.fail(
                f"this test needs the {', '.join(missing)} service(s), which are not built yet "
                f"(no services/<svc>/<svc>_service/bootstrap.py); running: {sorted(self.procs)}"
            )

    # --- lifecycle -----------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [ecomops_exe(), *args],
            cwd=ROOT,
            env=env or self.base_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"ecomops {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def start(self) -> Stack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._run("topics", "create")
        for svc in self.services:
            self._run("migrate", svc, timeout=180)
        try:
            for svc in self.services:
                self.spawn(svc)
            for svc in self.services:
                self.wait_ready(svc)
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(
        self,
        service: str,
        *,
        name: str | None = None,
        http_port: int | None = None,
        grpc_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """Start one process of ``service`` (by default the service itself, on its test ports)."""
        name = name or service
        if name in self.procs and self.procs[name].alive():
            raise StackError(f"{name} is already running")
        up = service.upper()
        child_env = self.base_env()
        http_port = http_port or self.http_ports[service]
        grpc_port = grpc_port or self.grpc_ports[service]
        child_env[f"{up}_HTTP_PORT"] = str(http_port)
        child_env[f"{up}_GRPC_PORT"] = str(grpc_port)
        child_env.update(env or {})
        proc = Proc(name, service, http_port, grpc_port, child_env)
        self._launch(proc)
        self.procs[name] = proc
        return proc

    def _launch(self, proc: Proc) -> None:
        proc.log_path = self.log_dir / f"{proc.name}.log"
        with proc.log_path.open("ab") as log:
            log.write(f"\n===== harness: starting {proc.name} at {time.ctime()} =====\n".encode())
            log.flush()
            proc.popen = subprocess.Popen(
                [ecomops_exe(), "serve", proc.service],
                cwd=ROOT,
                env=proc.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def readyz(self, name: str, timeout: float = 3.0) -> tuple[int, str]:
        """(status, body) of ``/readyz``; status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.procs[name].url}/readyz", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError):
            return 0, ""

    def wait_ready(self, name: str, timeout: float | None = None) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if not proc.alive():
                raise StackError(
                    f"{name} exited during start-up; see {proc.log_path}:\n{self.tail(name)}"
                )
            if self.readyz(name)[0] == 200:
                return
            time.sleep(0.2)
        raise StackError(f"{name} did not become ready; see {proc.log_path}:\n{self.tail(name)}")

    async def await_ready(self, name: str, timeout: float = 60.0) -> float:
        """Wait (without blocking the loop) until ``/readyz`` answers 200; seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, _ = await asyncio.to_thread(self.readyz, name, 2.0)
            if status == 200:
                return time.monotonic() - started
            await asyncio.sleep(0.3)
        raise StackError(f"{name} did not recover within {timeout}s:\n{self.tail(name)}")

    async def await_not_ready(self, name: str, timeout: float = 30.0) -> tuple[int, str]:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, body = await asyncio.to_thread(self.readyz, name, 3.0)
            if status != 200:
                return status, body
            await asyncio.sleep(0.3)
        raise StackError(f"{name} kept reporting ready for {timeout}s")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.procs[name].log_path
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.popen is not None and proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
            proc.popen.wait(timeout=30)

    def terminate(self, name: str, timeout: float = 20.0) -> None:
        proc = self.procs[name]
        if proc.popen is None or proc.popen.poll() is not None:
            return
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)

    def restart(self, name: str, *, wait: bool = True) -> None:
        proc = self.procs[name]
        if proc.alive():
            self.terminate(name)
        self._launch(proc)
        if wait:
            self.wait_ready(name)

    def remove(self, name: str) -> None:
        if name in self.procs:
            self.terminate(name)
            del self.procs[name]

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.alive() and proc.popen is not None:
                proc.popen.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(name)

    # --- infrastructure faults -----------------------------------------------------------------
    async def _stack(self, action: str) -> None:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(STACK_SH),
            action,
            self.profile,
            cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise StackError(f"stack.sh {action} {self.profile} failed:\n{out.decode()[-3000:]}")

    async def kafka_stop(self) -> None:
        await self._stack("kafka-stop")

    async def kafka_start(self) -> None:
        await self._stack("kafka-start")

    async def kafka_kill(self) -> None:
        """SIGKILL the broker (a crash: no clean shutdown, in-flight batches unanswered)."""
        await self._stack("kafka-kill")

    async def postgres_stop(self) -> None:
        await self._stack("postgres-stop")

    async def postgres_start(self) -> None:
        await self._stack("postgres-start")


class FaultProxy:
    """An asyncio TCP proxy in front of one dependency, adding latency on demand.

    Bytes from the upstream back to the client are held for ``delay`` seconds (each chunk keeps
    its arrival order; latency does not accumulate), so a gRPC call through the proxy takes at
    least ``delay``: set it past the caller's deadline to make the dependency "slow".
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream_host = host or "127.0.0.1"
        self.upstream_port = int(port)
        self.delay = 0.0
        self.port = 0
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, delayed=False),
                self._pipe(up_reader, writer, delayed=True),
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            if task is not None:
                self._tasks.discard(task)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        forwarder = asyncio.create_task(forward())
        try:
            while True:
                data = await src.read(65536)
                due = loop.time() + (self.delay if delayed else 0.0)
                await queue.put((due, data))
                if not data:
                    break
            await forwarder
        finally:
            forwarder.cancel()


_shared: Stack | None = None


def shared_stack() -> Stack:
    """One subprocess stack per test session, shared by the journey, fault and security suites."""
    global _shared
    if _shared is None:
        stack = Stack()
        stack.start()
        _shared = stack
        import atexit

        atexit.register(stack.stop)
    return _shared


def stop_shared_stack() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


if __name__ == "__main__":
    # Manual use: python tests/harness.py  (starts the built services until Ctrl-C)
    stack = Stack(sys.argv[1:] or None)
    stack.start()
    print({name: (p.url, p.grpc_target) for name, p in stack.procs.items()}, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
