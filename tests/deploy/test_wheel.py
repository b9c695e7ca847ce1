"""The project's wheel, as a user installs it: built once, installed into a fresh virtualenv
(no editable install, no repository on sys.path, run from outside the repository), then every
service started from it against the stack whose settings are exported (the test stack in
``make test``), with the commands the Helm chart renders.

Needs uv (``make deps`` puts it in .local/tools/uv, or on PATH) and helm (``make tools``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecomops_platform import registry

sys.path.insert(0, str(Path(__file__).parent))
import shipped

ROOT = shipped.ROOT
# Every service the platform knows; test_commands.py checks the chart renders exactly these.
SERVICES = tuple(registry.SERVICES)
# The console (services/console) is a deployable without a database: not an ecomops.services
# entry point, but an import root of the wheel.
IMPORT_ROOTS = {
    "ecomops",
    "ecomops_platform",
    "console_service",
    *(f"{s}_service" for s in SERVICES),
}


@pytest.fixture(scope="session")
def wheel(uv: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    shipped.run_ok([uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)], cwd=ROOT)
    (path,) = out.glob("ecomops-*.whl")
    return path


@dataclass(frozen=True)
class Installed:
    venv: Path
    workdir: Path  # outside the repository: the processes run here
    install_seconds: float

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


@pytest.fixture(scope="session")
def installed(uv: str, wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with the locked runtime dependencies and the wheel (not editable).

    The dependencies come from uv.lock (exported as pylock.toml) out of uv's cache, offline:
    ``make deps`` has filled it. The wheel itself is installed with --no-deps, and ``uv pip
    check`` then proves its own metadata is satisfied by what is installed.
    """
    base = tmp_path_factory.mktemp("wheel-venv")
    venv, workdir, lock = base / "venv", base / "work", base / "lock"
    workdir.mkdir()
    lock.mkdir()
    env = shipped.clean_env(
        os.environ,
        UV_CACHE_DIR=str(ROOT / ".local" / "cache" / "uv"),
        UV_PYTHON_DOWNLOADS="never",  # the machine's Python 3.11, as deploy/local does
    )
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    t0 = time.monotonic()
    pylock = lock / "pylock.toml"
    export = ["export", "--frozen", "--no-dev", "--no-emit-project", "--format", "pylock.toml"]
    shipped.run_ok(
        [uv, *export, "--quiet", "-o", str(pylock)],
        cwd=ROOT,
        env=env,
    )
    shipped.run_ok([uv, "venv", "--quiet", "--python", "3.11", str(venv)], cwd=workdir, env=env)
    py = str(venv / "bin" / "python")
    for offline in (["--offline"], []):  # the cache first; the index if the cache lacks a file
        proc = subprocess.run(
            [uv, "pip", "install", "--quiet", *offline, "--python", py, "-r", str(pylock)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, proc.stderr
    shipped.run_ok(
        [uv, "pip", "install", "--quiet", "--offline", "--no-deps", "--python", py, str(wheel)],
        cwd=workdir,
        env=env,
    )
    shipped.run_ok([uv, "pip", "check", "--python", py], cwd=workdir, env=env)
    return Installed(venv, workdir, time.monotonic() - t0)


# ---- the wheel's contents ----


def test_wheel_installs_each_import_root_at_the_top_level(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == IMPORT_ROOTS, f"unexpected top-level entries: {sorted(tops ^ IMPORT_ROOTS)}"
    for contract in ("ecomops/order/v1/events_pb2.py", "ecomops/risk/v1/risk_service_pb2_grpc.py"):
        assert contract in names, f"{contract} is not in the wheel"
    for svc in SERVICES:  # alembic's template and the service's migrations ship too
        assert f"{svc}_service/migrations/script.py.mako" in names
    assert not [n for n in names if "__pycache__" in n or "/tests/" in n]


def test_wheel_declares_every_service_as_an_entry_point(wheel: Path) -> None:
    """The platform finds services only through the ecomops.services entry points."""
    import configparser

    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(name).decode())
    declared = dict(parser["ecomops.services"])
    assert declared == {svc: f"{svc}_service.bootstrap:SPEC" for svc in SERVICES}


# ---- the installed wheel ----


@pytest.mark.integration
def test_the_installed_wheel_imports_only_from_its_virtualenv(installed: Installed) -> None:
    modules = [
        *sorted(IMPORT_ROOTS),
        *(f"{s}_service.bootstrap" for s in SERVICES),
        "ecomops.order.v1.events_pb2",
    ]
    probe = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "print(json.dumps({'files': {m: importlib.import_module(m).__file__ for m in mods},"
        " 'path': sys.path}))\n"
    )
    proc = shipped.run_ok(
        [str(installed.bin / "python"), "-c", probe],
        cwd=installed.workdir,
        env=shipped.clean_env(os.environ),
    )
    found = json.loads(proc.stdout)
    site = installed.venv.resolve()
    for module, file in found["files"].items():
        assert Path(file).resolve().is_relative_to(site), f"{module} imported from {file}"
    assert not [p for p in found["path"] if p and Path(p).resolve().is_relative_to(ROOT)]
    # no editable install left a path file pointing back at the repository
    for pth in installed.venv.glob("lib/python3.11/site-packages/*.pth"):
        assert str(ROOT) not in pth.read_text(), pth


@pytest.mark.integration
def test_install_is_quick_from_the_cache(installed: Installed) -> None:
    # The venv is built once per session; the budget keeps `make test` honest about it.
    assert installed.install_seconds < 60, f"installing took {installed.install_seconds:.1f} s"


@pytest.fixture(scope="session")
def migrated(
    installed: Installed, chart: dict[tuple[str, str], shipped.Workload], stack_env: dict[str, str]
) -> dict[str, list[str]]:
    """Each service's migration Job, run from the wheel on its empty database, all at once (the
    chart's hook Jobs run before the Deployments roll)."""
    entry = shipped.dockerfile_entrypoint()
    jobs = {svc: chart[(svc, "Job")] for svc in SERVICES}
    argvs = {
        svc: [str(installed.bin / entry[0]), *entry[1:], *job.args] for svc, job in jobs.items()
    }
    envs = {
        svc: {**stack_env, "ECOMOPS_ENV": str(job.env["ECOMOPS_ENV"]["value"])}
        for svc, job in jobs.items()
    }
    results = shipped.run_concurrently(argvs, envs, installed.workdir)
    for svc, (code, out) in results.items():
        assert code == 0, f"{' '.join(jobs[svc].args)} failed ({code}):\n{out}"
        assert f"{svc}: database at head" in out, out
    return argvs


@pytest.mark.integration
def test_migration_jobs_run_from_the_wheel(migrated: dict[str, list[str]]) -> None:
    assert set(migrated) == set(SERVICES)


@pytest.fixture
def served(
    installed: Installed,
    chart: dict[tuple[str, str], shipped.Workload],
    stack_env: dict[str, str],
    migrated: dict[str, list[str]],
    tmp_path: Path,
) -> Iterator[Callable[[str], tuple[shipped.Started, shipped.Workload]]]:
    started: list[shipped.Started] = []

    def serve(svc: str) -> tuple[shipped.Started, shipped.Workload]:
        from ecomops_testing import free_port

        deployment = chart[(svc, "Deployment")]
        entry = shipped.dockerfile_entrypoint()
        http_port, grpc_port = free_port(), free_port()
        env = {
            **stack_env,
            **shipped.service_env(
                deployment, http_port, grpc_port, f"wheel-{uuid.uuid4().hex[:8]}-"
            ),
        }
        argv = [str(installed.bin / entry[0]), *entry[1:], *deployment.args]
        s = shipped.start(
            svc,
            argv,
            env,
            installed.workdir,
            tmp_path / f"{svc}.log",
            http_port=http_port,
            grpc_port=grpc_port,
        )
        started.append(s)
        return s, deployment

    yield serve
    for s in started:
        shipped.kill_quietly(s)


@pytest.mark.integration
@pytest.mark.parametrize("svc", SERVICES)
def test_service_starts_from_the_wheel_and_stops_on_sigterm(served: Any, svc: str) -> None:
    s, deployment = served(svc)
    shipped.assert_serves_and_stops(s, deployment, svc)
