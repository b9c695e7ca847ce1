"""What the deployment tests start, and how: one source for the commands, shared by the wheel
test, the image test and the chart check.

The container command of every workload is the image's ENTRYPOINT (deploy/Dockerfile) followed
by the ``args`` the Helm chart renders (k8s/ecomops): the chart sets no ``command``. The tests
take both from there — never from a list of their own — so a chart that renders is a chart whose
containers were started by ``make test``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

# Environment that would point a process back at the repository or at another interpreter.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")


def dockerfile_entrypoint(path: Path = DOCKERFILE) -> list[str]:
    """The final stage's ENTRYPOINT (exec form) of deploy/Dockerfile."""
    entrypoints = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", path.read_text(), re.MULTILINE)
    assert entrypoints, f"{path} has no exec-form ENTRYPOINT"
    value = json.loads(entrypoints[-1])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


@dataclass(frozen=True)
class Workload:
    """One container of the rendered chart: a service's Deployment or its migration Job."""

    component: str
    kind: str  # "Deployment" or "Job"
    args: tuple[str, ...]
    env: Mapping[str, Any]
    security: Mapping[str, Any]
    tmp_mounted: bool
    grace_seconds: int | None

    @property
    def prefix(self) -> str:
        return self.component.upper()


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, doc["metadata"]["name"]
    container: dict[str, Any] = containers[0]
    return container


def workloads(docs: Sequence[dict[str, Any]]) -> dict[tuple[str, str], Workload]:
    """(component, kind) → Workload for every Deployment and migration Job of a rendering."""
    out: dict[tuple[str, str], Workload] = {}
    for doc in docs:
        kind = doc.get("kind")
        if kind not in ("Deployment", "Job"):
            continue
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        if kind == "Job":
            if not component.endswith("-migrate"):
                continue
            component = component.removesuffix("-migrate")
        pod = doc["spec"]["template"]["spec"]
        c = _container(doc)
        # The chart must leave the image's ENTRYPOINT alone: only args are rendered.
        assert "command" not in c, f"{kind} {component} overrides the image's ENTRYPOINT"
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        out[(component, kind)] = Workload(
            component=component,
            kind=kind,
            args=tuple(str(a) for a in c["args"]),
            env={e["name"]: e for e in c.get("env", [])},
            security=c.get("securityContext", {}),
            tmp_mounted="/tmp" in mounts,
            grace_seconds=pod.get("terminationGracePeriodSeconds"),
        )
    return out


def clean_env(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The stack's settings without anything that leads back to the repository's code."""
    env = {k: v for k, v in base.items() if k not in _LEAKY_ENV}
    env.update(extra)
    return env


def service_env(
    workload: Workload, http_port: int, grpc_port: int, group_prefix: str
) -> dict[str, str]:
    """Settings the chart gives the container that the test stack's env does not have."""
    p = workload.prefix
    env = {
        # the chart's value (production refuses placeholder secrets)
        "ECOMOPS_ENV": str(workload.env["ECOMOPS_ENV"]["value"]),
        # the chart binds 0.0.0.0 inside the pod; here the host's loopback is the pod network
        f"{p}_HTTP_HOST": "127.0.0.1",
        f"{p}_GRPC_HOST": "127.0.0.1",
        f"{p}_HTTP_PORT": str(http_port),
        f"{p}_GRPC_PORT": str(grpc_port),
        # a shared Kafka: consumer groups of our own, reading only what arrives from now on
        "ECOMOPS_CONSUMER_GROUP_PREFIX": group_prefix,
        "ECOMOPS_CONSUMER_OFFSET_RESET": "latest",
        "PYTHONUNBUFFERED": "1",
    }
    for name in (f"{p}_HTTP_PORT", f"{p}_GRPC_PORT", f"{p}_DATABASE_URL"):
        assert name in workload.env, f"the chart no longer sets {name} for {workload.component}"
    return env


@dataclass
class Started:
    """A service process started by a test, with its log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    http_port: int
    grpc_port: int
    timings: dict[str, float] = field(default_factory=dict)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start(
    name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path, **ports: int
) -> Started:
    out = log.open("wb")
    proc = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    return Started(name, proc, log, ports["http_port"], ports["grpc_port"])


def wait_ready(svc: Started, timeout: float = 90) -> None:
    """/readyz answers 200 and gRPC health (overall, service "") is SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    t0 = time.monotonic()
    deadline = t0 + timeout
    url = f"http://127.0.0.1:{svc.http_port}/readyz"
    status: object = None
    while True:
        if svc.proc.poll() is not None:
            raise AssertionError(
                f"{svc.name} exited with {svc.proc.returncode} before it was ready:\n"
                + svc.log_tail()
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError):
            status = None
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{svc.name}: /readyz answered {status} for {timeout:.0f} s:\n" + svc.log_tail()
            )
        time.sleep(0.2)
    svc.timings["ready_http"] = time.monotonic() - t0
    with grpc.insecure_channel(f"127.0.0.1:{svc.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        answer = None
        while True:
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
            except grpc.RpcError as exc:
                answer = exc.code()
            if answer == serving:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{svc.name}: gRPC health answered {answer} for {timeout:.0f} s:\n"
                    + svc.log_tail()
                )
            time.sleep(0.2)
    svc.timings["ready_grpc"] = time.monotonic() - t0


def stop(svc: Started, grace: float) -> tuple[int | None, float]:
    """SIGTERM, then the exit code and how long it took (None: killed after the grace period)."""
    t0 = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = svc.proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        svc.proc.kill()
        svc.proc.wait(timeout=10)
        code = None
    return code, time.monotonic() - t0


def assert_serves_and_stops(svc: Started, deployment: Workload, name: str) -> None:
    """What the chart promises of a started container: it runs the chart's own command, gets
    ready (REST and gRPC), and exits 0 on SIGTERM within the pod's grace period."""
    assert deployment.args == ("serve", name)
    wait_ready(svc)
    grace = deployment.grace_seconds or 30
    code, took = stop(svc, grace)
    assert code == 0, f"{name} exited with {code} {took:.1f} s after SIGTERM:\n{svc.log_tail()}"
    assert took < grace


def kill_quietly(svc: Started) -> None:
    if svc.proc.poll() is None:
        svc.proc.kill()
        svc.proc.wait(timeout=10)


def run_concurrently(
    commands: Mapping[str, Sequence[str]],
    envs: Mapping[str, Mapping[str, str]],
    cwd: Path,
    timeout: float = 300,
) -> dict[str, tuple[int, str]]:
    """Run one command per name at once (as the chart's migration hook Jobs run), each with its
    own environment; name → (exit code, combined output)."""
    procs = {
        name: subprocess.Popen(
            list(argv),
            env=dict(envs[name]),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, argv in commands.items()
    }
    results: dict[str, tuple[int, str]] = {}
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += f"\n(killed after {timeout:.0f} s)"
        results[name] = (proc.returncode, out)
    return results


def find_uv() -> str | None:
    """uv from $UV, else the project's own (``make deps``), else on PATH."""
    for candidate in (os.environ.get("UV"), str(ROOT / ".local" / "tools" / "uv" / "bin" / "uv")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("uv")


def run_ok(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command that must succeed; its failure shows its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return proc
