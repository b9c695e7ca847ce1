"""The container image, started as the Helm chart starts it: every service from the image's own
root filesystem, as the image's non-root user, read-only root, only /tmp writable, with the
commands the chart renders, against the stack whose settings are exported.

``make image-test`` builds the image (``make image``) and runs this file with ECOMOPS_IMAGE set;
in other runs it is skipped. ``podman run`` is refused on this VM (the OCI runtime's rlimits),
so deploy/image/chroot-run.sh stands in for the container runtime: the image is mounted with
``podman image mount`` and each command is chrooted into it (see docs/deploy.md). Needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ecomops_platform import registry

sys.path.insert(0, str(Path(__file__).parent))
import shipped

pytestmark = pytest.mark.integration

ROOT = shipped.ROOT
CHROOT_RUN = ROOT / "deploy" / "image" / "chroot-run.sh"
# Every service the platform knows; test_commands.py checks the chart renders exactly these.
SERVICES = tuple(registry.SERVICES)
# What a pod gets from the chart besides the image's own ENV: the stack's settings.
SETTINGS_PREFIXES = ("ECOMOPS_", "OTEL_", *(f"{s.upper()}_" for s in SERVICES))


@pytest.fixture(scope="session")
def image() -> str:
    ref = os.environ.get("ECOMOPS_IMAGE")
    if not ref:
        pytest.skip("ECOMOPS_IMAGE is not set: the image is tested by `make image-test`")
    if os.geteuid() != 0:
        pytest.skip("the image test mounts and chroots into the image: it needs root")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (bash deploy/image/install-tools.sh)")
    return ref


def _podman(*args: str) -> str:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, f"podman {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


@pytest.fixture(scope="session")
def config(image: str) -> dict[str, Any]:
    import json

    (info,) = json.loads(_podman("image", "inspect", image))
    cfg: dict[str, Any] = info["Config"]
    return cfg


@pytest.fixture(scope="session")
def rootfs(image: str) -> Iterator[Path]:
    path = Path(_podman("image", "mount", image))
    try:
        yield path
    finally:
        subprocess.run(["podman", "image", "unmount", image], capture_output=True, check=False)


@pytest.fixture(scope="session")
def image_env(config: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in config.get("Env", []))


@pytest.fixture(scope="session")
def pod_env(image: str, image_env: dict[str, str], stack_env: dict[str, str]) -> dict[str, str]:
    """The container's environment: the image's ENV, then the settings the chart would inject.
    Nothing else from this machine (no PATH, no PYTHONPATH, no virtualenv)."""
    settings = {k: v for k, v in stack_env.items() if k.startswith(SETTINGS_PREFIXES)}
    return {**image_env, **settings}


@pytest.fixture(scope="session")
def user(config: dict[str, Any], chart: dict[tuple[str, str], shipped.Workload]) -> str:
    """The image's USER, which must be the uid:gid the chart runs every container as."""
    image_user = str(config.get("User", ""))
    for workload in chart.values():
        sc = workload.security
        assert image_user == f"{sc['runAsUser']}:{sc['runAsGroup']}", workload
        assert sc["readOnlyRootFilesystem"] is True and workload.tmp_mounted, workload
    return image_user


@pytest.fixture(scope="session")
def entrypoint(config: dict[str, Any]) -> list[str]:
    """What a container runtime would run: the built image's own ENTRYPOINT (checked against
    the Dockerfile below), followed by the chart's args."""
    value: list[str] = config["Entrypoint"]
    return value


def in_image(rootfs: Path, user: str, argv: list[str], workdir: str = "/app") -> list[str]:
    """argv as the container runtime would run it (WORKDIR /app, checked below)."""
    return ["bash", str(CHROOT_RUN), str(rootfs), user, "--workdir", workdir, *argv]


def test_the_image_is_what_the_dockerfile_and_the_chart_say(
    config: dict[str, Any], user: str
) -> None:
    assert config["Entrypoint"] == shipped.dockerfile_entrypoint()
    assert user == "10001:10001"
    assert config.get("WorkingDir") == "/app"


def test_root_is_read_only_and_only_tmp_is_writable(
    rootfs: Path, user: str, pod_env: dict[str, str], tmp_path: Path
) -> None:
    script = (
        "set -e; touch /tmp/probe; "
        "for d in / /app /app/.venv/bin /etc; do "
        '  if touch "$d/probe" 2>/dev/null; then echo "writable: $d"; exit 1; fi; '
        "done; id -u; id -g; pwd"
    )
    proc = subprocess.run(
        in_image(rootfs, user, ["sh", "-c", script]),
        env=pod_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [*user.split(":"), "/app"]


def test_the_image_ships_no_build_tools_sources_or_secrets(rootfs: Path) -> None:
    for path in ("src", "usr/local/bin/uv", "run/secrets/ca_bundle", "tmp/uv-cache"):
        assert not (rootfs / path).exists(), f"/{path} is in the image"
    site = rootfs / "app/.venv/lib/python3.11/site-packages"
    assert (site / "ecomops/order/v1/events_pb2.py").is_file()
    assert not list(site.glob("*.pth")), "an editable install's path file is in the image"


@pytest.fixture(scope="session")
def migrated(
    rootfs: Path,
    user: str,
    entrypoint: list[str],
    pod_env: dict[str, str],
    chart: dict[tuple[str, str], shipped.Workload],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[str]]:
    """The chart's migration Jobs, each from the image, on its own empty database, at once."""
    jobs = {svc: chart[(svc, "Job")] for svc in SERVICES}
    argvs = {svc: in_image(rootfs, user, [*entrypoint, *job.args]) for svc, job in jobs.items()}
    envs = {
        svc: {**pod_env, "ECOMOPS_ENV": str(job.env["ECOMOPS_ENV"]["value"])}
        for svc, job in jobs.items()
    }
    results = shipped.run_concurrently(argvs, envs, tmp_path_factory.mktemp("migrate"))
    for svc, (code, out) in results.items():
        assert code == 0, f"{' '.join(jobs[svc].args)} failed in the image ({code}):\n{out}"
        assert f"{svc}: database at head" in out, out
    return argvs


def test_migration_jobs_run_from_the_image(migrated: dict[str, list[str]]) -> None:
    assert set(migrated) == set(SERVICES)


@pytest.fixture
def served(
    rootfs: Path,
    user: str,
    entrypoint: list[str],
    pod_env: dict[str, str],
    chart: dict[tuple[str, str], shipped.Workload],
    migrated: dict[str, list[str]],
    tmp_path: Path,
) -> Iterator[Callable[[str], tuple[shipped.Started, shipped.Workload]]]:
    from ecomops_testing import free_port

    started: list[shipped.Started] = []

    def serve(svc: str) -> tuple[shipped.Started, shipped.Workload]:
        deployment = chart[(svc, "Deployment")]
        http_port, grpc_port = free_port(), free_port()
        env = {
            **pod_env,
            **shipped.service_env(
                deployment, http_port, grpc_port, f"image-{uuid.uuid4().hex[:8]}-"
            ),
        }
        argv = in_image(rootfs, user, [*entrypoint, *deployment.args])
        s = shipped.start(
            svc,
            argv,
            env,
            tmp_path,
            tmp_path / f"{svc}.log",
            http_port=http_port,
            grpc_port=grpc_port,
        )
        started.append(s)
        return s, deployment

    yield serve
    for s in started:
        shipped.kill_quietly(s)


@pytest.mark.parametrize("svc", SERVICES)
def test_service_starts_from_the_image_and_stops_on_sigterm(served: Any, svc: str) -> None:
    s, deployment = served(svc)
    shipped.assert_serves_and_stops(s, deployment, svc)
