"""`make run` starts the console beside the services (ecomops_platform.cli._start_console): a
`python -m console_service` process told the services' URLs from the URL table, ready on its
port, and stopped with the rest."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ecomops_platform import cli
from ecomops_testing import free_port


def test_make_run_starts_the_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("CONSOLE_HTTP_PORT", str(port))
    monkeypatch.setenv("ECOMOPS_JWT_SECRET", "console-run-test-secret-0123456789abcdef")
    monkeypatch.setenv("ECOMOPS_ACCESS_LOG", "false")
    rows = [
        ("order", "http://127.0.0.1:18771/v1", "", ""),
        ("risk", "http://127.0.0.1:18775/v1", "", ""),
    ]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        url = cli._start_console(procs, tmp_path, rows, timeout=60)
        assert url == f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url + "healthz", timeout=5) as resp:
            assert json.load(resp) == {"status": "ok"}
        with urllib.request.urlopen(url + "api/session", timeout=5) as resp:
            assert json.load(resp)["signed_in"] is False
        environ = Path(f"/proc/{procs['console'].pid}/environ").read_bytes().split(b"\0")
        assert b"CONSOLE_ORDER_URL=http://127.0.0.1:18771" in environ
        assert b"CONSOLE_RISK_URL=http://127.0.0.1:18775" in environ
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=15)
    assert (tmp_path / "console.log").exists()
