"""Fixtures for the deployment tests: render the Helm chart with the real helm binary.

helm is taken from $HELM, else `.local/bin/helm` (built by the Makefile), else `helm` on PATH.
Without one the tests are skipped locally and fail under CI (CI=true), so a missing tool
cannot turn the suite green.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "ecomops"
# The chart declares kubeVersion >=1.27; a helm built without release ldflags assumes 1.20.
KUBE_VERSION = "1.27.0"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required under CI)")
    pytest.skip(what)


def find_helm() -> str | None:
    candidates = [os.environ.get("HELM"), str(ROOT / ".local" / "bin" / "helm")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("helm")


@pytest.fixture(scope="session")
def uv() -> str:
    path = _shipped().find_uv()
    if path is None:
        _missing("uv not found: run make deps")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def helm() -> str:
    path = find_helm()
    if path is None:
        _missing("helm not found: set HELM or build .local/bin/helm (make tools)")
    assert path is not None
    return path


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def _render(
        values_files: Sequence[Path] = (),
        sets: Sequence[str] = (),
        chart: Path = CHART,
        release: str = "ecomops",
    ) -> list[dict[str, Any]]:
        key = (tuple(map(str, values_files)), tuple(sets), str(chart), release)
        if key not in cache:
            cmd = [
                helm,
                "template",
                release,
                str(chart),
                "--namespace",
                "shop",
                "--kube-version",
                KUBE_VERSION,
            ]
            for f in values_files:
                cmd += ["-f", str(f)]
            for s in sets:
                cmd += ["--set", s]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr)  # helm template failed
            cache[key] = [d for d in yaml.safe_load_all(proc.stdout) if d]
        return copy.deepcopy(cache[key])

    return _render


@pytest.fixture(scope="session")
def kube_validate() -> Any:
    """The validator module (tests/deploy/k8s_validate.py), needing kubernetes-validate."""
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        _missing("kubernetes-validate is not installed (dev dependency)")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ecomops_k8s_validate", Path(__file__).with_name("k8s_validate.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def deploy_databases() -> Any:
    """A fresh, empty database per service beside the stack's own (same server, same user),
    dropped afterwards: what ships is migrated from nothing, as on a first install, and no
    other suite's data or schema revision is touched."""
    import asyncio
    import uuid

    from ecomops_platform import registry
    from ecomops_testing import ensure_database, load_test_env

    load_test_env()
    suffix = uuid.uuid4().hex[:8]
    urls = {}
    for info in registry.SERVICES.values():
        base, _, _db = os.environ[f"{info.env_prefix}DATABASE_URL"].rpartition("/")
        urls[f"{info.env_prefix}DATABASE_URL"] = f"{base}/{info.database}_deploy_{suffix}"
    for url in urls.values():
        asyncio.run(ensure_database(url))
    yield urls
    asyncio.run(_drop_databases(list(urls.values())))


async def _drop_databases(urls: list[str]) -> None:
    import asyncpg  # type: ignore[import-untyped]

    for url in urls:
        base, name = url.rsplit("/", 1)
        admin = await asyncpg.connect(
            base.replace("postgresql+asyncpg", "postgresql") + "/postgres"
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def chart(render: Render) -> dict[tuple[str, str], Any]:
    """The rendered chart's Deployments and migration Jobs (shipped.Workload), by
    (component, kind): where the deployment tests take their commands from."""
    return _shipped().workloads(render())


@pytest.fixture(scope="session")
def stack_env(deploy_databases: dict[str, str]) -> dict[str, str]:
    """The exported stack's settings, with a fresh database per service."""
    return dict(_shipped().clean_env(os.environ, **deploy_databases))


def _shipped() -> Any:
    import sys

    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import shipped

    return shipped
