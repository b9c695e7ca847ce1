"""The OpenAPI documents as a front end uses them: TypeScript types generated from every
service's document (and the combined one) by openapi-typescript, and a small storefront client
(clients/typescript/src) type-checked against them with tsc --noEmit. The client also states,
with ``@ts-expect-error``, that a call without the required Idempotency-Key does not compile.

npm packages from clients/typescript/package-lock.json, installed once into .local/tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import shipped

ROOT = shipped.ROOT


def test_generated_typescript_types_compile_a_client(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("npm not found (required under CI)")
        pytest.skip("npm not found")
    build = tmp_path / "ts-client"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ts_client_check.sh"), str(build)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    generated = {p.stem for p in (build / "generated").glob("*.ts")}
    assert generated == {
        "ecomops",
        "inventory",
        "order",
        "pricing",
        "recommendation",
        "risk",
        "support",
    }
    order = (build / "generated" / "order.ts").read_text()
    assert '"Idempotency-Key": string;' in order  # required, not "?:"
    assert "application/problem+json" in order
