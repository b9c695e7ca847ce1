"""The console page's own checks, run by `make test`: the vitest tests of its components and
the TypeScript type-check and production build (services/console/build.sh, npm packages from
the lock file, cached under .local). Skipped without npm locally; under CI npm is required."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
BUILD = ROOT / "services" / "console" / "build.sh"


def _npm() -> None:
    if shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("npm not found (required under CI)")
        pytest.skip("npm not found")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BUILD), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_components_pass_their_vitest_tests() -> None:
    _npm()
    proc = _run("test")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert " passed" in out and " failed" not in out, out[-4000:]


def test_the_page_type_checks_and_builds() -> None:
    _npm()
    proc = _run("build")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    dist = ROOT / "services" / "console" / "web" / "dist"
    index = (dist / "index.html").read_text()
    assert '<div id="root">' in index and "/assets/" in index
    assert list((dist / "assets").glob("*.js")), "no script was built"
