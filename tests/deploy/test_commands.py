"""One source for what the containers run: the Dockerfile's ENTRYPOINT and USER, the chart's
args. The wheel and image tests (test_wheel.py, test_image.py) start exactly ``ENTRYPOINT +
args`` of every rendered Deployment and migration Job; these checks make sure that is the
whole chart, and that every rendered command is one the entrypoint understands.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import shipped

from ecomops_platform import cli, registry

ROOT = shipped.ROOT
EXAMPLES = sorted((ROOT / "k8s" / "examples").glob("*.yaml"))
CASES = [
    pytest.param((), (), id="defaults"),
    pytest.param((), ("kafka.topics.create=true",), id="topics-job"),
    *[pytest.param((f,), (), id=f"example-{f.stem}") for f in EXAMPLES],
]


def test_the_entrypoint_is_the_console_script_the_wheel_installs() -> None:
    entry = shipped.dockerfile_entrypoint()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry[0] in scripts, f"ENTRYPOINT {entry} is not a console script of the wheel"
    assert scripts[entry[0]] == "ecomops_platform.cli:main"


def test_the_deploy_tests_start_every_workload_the_chart_renders(
    chart: dict[tuple[str, str], shipped.Workload],
) -> None:
    # test_wheel.py and test_image.py start every service of the registry; the chart must
    # render exactly those, so none of its containers goes unstarted by `make test`.
    expected = {(svc, kind) for svc in registry.SERVICES for kind in ("Deployment", "Job")}
    assert set(chart) == expected


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_every_rendered_command_is_a_command_of_the_entrypoint(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    parser = cli.build_parser()
    for doc in render(values_files, sets):
        if doc.get("kind") not in ("Deployment", "Job"):
            continue
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert "command" not in container, "the image's ENTRYPOINT must stay in charge"
        args = [str(a) for a in container["args"]]
        parsed = parser.parse_args(args)  # exits (fails the test) on an unknown command
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        if doc["kind"] == "Deployment":
            assert parsed.func is cli.cmd_serve and parsed.service == component, args
        elif component.endswith("-migrate"):
            assert parsed.func is cli.cmd_migrate, args
            assert parsed.service == component.removesuffix("-migrate"), args
        else:
            assert parsed.func is cli.cmd_topics_create, args


def test_the_chart_runs_containers_as_the_images_user(
    chart: dict[tuple[str, str], shipped.Workload],
) -> None:
    users = re.findall(r"^USER\s+(\S+)\s*$", shipped.DOCKERFILE.read_text(), re.MULTILINE)
    assert users, "deploy/Dockerfile sets no USER"
    for workload in chart.values():
        sc = workload.security
        assert f"{sc['runAsUser']}:{sc['runAsGroup']}" == users[-1], workload.component
        assert sc["readOnlyRootFilesystem"] is True, workload.component
        assert workload.tmp_mounted, f"{workload.component}: /tmp is the only writable path"
