"""The quote's read cache on its own: entries live ``seconds``; a write empties its part at once
and again when its transaction ends; a read that started before a change is not stored."""

from __future__ import annotations

import time
from typing import Any

from pricing_service.adapters import read_cache as rc
from pricing_service.adapters.read_cache import CATALOG, PROMOTIONS, ReadCache


class _Session:
    def __init__(self) -> None:
        self.info: dict[str, Any] = {}


def test_entries_expire_after_their_seconds() -> None:
    cache = ReadCache(0.05)
    cache.put(CATALOG, cache.generation(CATALOG), {"a": 1})
    assert cache.get(CATALOG, ["a", "b"]) == ({"a": 1}, ["b"])
    time.sleep(0.06)
    assert cache.get(CATALOG, ["a"]) == ({}, ["a"])


def test_a_read_that_started_before_a_change_is_not_stored() -> None:
    cache = ReadCache(10)
    before = cache.generation(CATALOG)
    session = _Session()
    cache.touched(session, CATALOG)  # type: ignore[arg-type]
    cache.put(CATALOG, before, {"a": "old"})
    assert cache.get(CATALOG, ["a"]) == ({}, ["a"])
    # read between the write and its commit: stored, then emptied by the commit
    during = cache.generation(CATALOG)
    cache.put(CATALOG, during, {"a": "old"})
    assert cache.get(CATALOG, ["a"])[0] == {"a": "old"}
    rc._after_commit(session)
    assert cache.get(CATALOG, ["a"]) == ({}, ["a"])
    # a read that started before the commit and ends after it is dropped
    cache.put(CATALOG, during, {"a": "old"})
    assert cache.get(CATALOG, ["a"]) == ({}, ["a"])


def test_parts_are_emptied_separately_and_zero_seconds_caches_nothing() -> None:
    cache = ReadCache(10)
    cache.put(CATALOG, cache.generation(CATALOG), {"a": 1})
    cache.put(PROMOTIONS, cache.generation(PROMOTIONS), {"automatic": []})
    session = _Session()
    cache.touched(session, PROMOTIONS)  # type: ignore[arg-type]
    rc._after_rollback(session)
    assert cache.get(CATALOG, ["a"])[0] == {"a": 1}
    assert cache.get(PROMOTIONS, ["automatic"])[0] == {}
    off = ReadCache(0)
    off.put(CATALOG, off.generation(CATALOG), {"a": 1})
    assert off.get(CATALOG, ["a"]) == ({}, ["a"])
