"""This proof suite's fixtures: the shared subprocess stack (tests/proof_fixtures.py)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
_HERE = str(Path(__file__).resolve().parent)  # db_scan, shared by this suite's modules
for _path in (_TESTS, _HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from proof_fixtures import http, pytest_sessionfinish, shop, stack  # noqa: E402

__all__ = ["http", "pytest_sessionfinish", "shop", "stack"]
