"""Lint deploy/Dockerfile and .dockerignore without a Docker engine (hadolint-style rules)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede the first FROM, got {keyword}"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)


def test_multi_stage_with_a_separate_runtime_stage(dockerfile: tuple) -> None:
    _, stages = dockerfile
    assert len(stages) >= 2
    final = stages[-1]
    # the final stage takes only built artefacts from earlier stages, never the source tree
    for arg in final.args("COPY"):
        assert "--from=" in arg, f"final stage copies from the build context: COPY {arg}"


def test_base_images_are_pinned_by_tag(dockerfile: tuple) -> None:
    global_args, stages = dockerfile
    names = {s.name for s in stages if s.name}
    for stage in stages:
        image = resolve(stage.image, global_args)
        if image in names:
            continue
        assert "$" not in image, f"unresolved image {stage.image}"
        if "@sha256:" in image:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{image} has no tag"
        assert tag != "latest", f"{image} uses :latest"
        assert re.search(r"\d+\.\d+", tag), f"{image}: pin a version, not a floating tag"


def test_runs_as_a_numeric_non_root_user(dockerfile: tuple) -> None:
    _, stages = dockerfile
    users = stages[-1].args("USER")
    assert users, "final stage has no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]} must be a numeric non-root uid"
    assert not gid or (gid.isdigit() and int(gid) > 0)


def test_no_healthcheck(dockerfile: tuple) -> None:
    _, stages = dockerfile
    assert not any(s.args("HEALTHCHECK") for s in stages)


def test_entrypoint_is_the_ecomops_cli(dockerfile: tuple) -> None:
    _, stages = dockerfile
    final = stages[-1]
    assert json.loads(final.args("ENTRYPOINT")[-1]) == ["ecomops"]
    assert json.loads(final.args("CMD")[-1]) == ["--help"]


def test_dependencies_come_from_the_lock_file_without_dev(dockerfile: tuple) -> None:
    _, stages = dockerfile
    runs = [arg for s in stages[:-1] for arg in s.args("RUN")]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs, "the build stage installs with uv sync"
    for r in syncs:
        words = shlex.split(r)
        assert "--frozen" in words and "--no-dev" in words, r
    assert any("--no-editable" in shlex.split(r) for r in syncs), "install the project as a wheel"
    copies = " ".join(arg for s in stages[:-1] for arg in s.args("COPY"))
    assert "uv.lock" in copies and "pyproject.toml" in copies


def test_final_stage_installs_no_compilers_or_caches(dockerfile: tuple) -> None:
    _, stages = dockerfile
    final = " ".join(stages[-1].args("RUN"))
    for banned in ("apt-get install", "gcc", "build-essential", "pip install", "uv "):
        assert banned not in final, f"final stage runs {banned!r}"
    envs = " ".join(stages[-1].args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in envs, "no bytecode writes on a read-only root fs"


def test_dockerignore_keeps_state_and_vcs_out() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".local", ".venv"):
        assert required in patterns, f".dockerignore must exclude {required}"
    # and it must not exclude what the Dockerfile copies
    for needed in ("libs", "services", "uv.lock", "pyproject.toml", "README.md"):
        assert needed not in patterns, f".dockerignore excludes {needed}"
