"""A short in-process cache of what every quote reads and rarely changes: the SKUs (category,
status), the prices of the price book and the live automatic promotions.

Bounded staleness, by construction:

- an entry is used for at most ``seconds`` (``PRICING_READ_CACHE_SECONDS``, 1 s by default;
  0 turns the cache off) after it was read from the database;
- a change made through this process (a price set, a SKU recorded from an event, a promotion
  created, changed, deactivated, or a use of it taken or given back) empties the part it
  touches at once and again after its transaction commits, and a read that started before that
  commit is not stored (a generation counter): this process never quotes from data older than
  its own last committed change;
- a change made by another replica is seen by this one within ``seconds``.

What is never cached: SKUs or prices that were not found (a new SKU or price is used by the next
quote), coupon promotions (a quote with coupon codes reads them, and the candidates, from the
database), customer segments and per-customer uses. The margin floor is applied to the cached
price terms exactly as to fresh ones: a quote is always consistent with the price terms it was
priced from, which are at most ``seconds`` old.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from ecomops_platform.db import Database

from ..domain.models import Promotion

DEFAULT_SECONDS = 1.0
CATALOG, PROMOTIONS = "catalog", "promotions"
_DIRTY = "pricing_read_cache_dirty"


@dataclass(slots=True)
class _Part:
    generation: int = 0
    entries: dict[Any, tuple[float, Any]] = field(default_factory=dict)


class ReadCache:
    """The cache of one database (one service instance); see the module doc."""

    def __init__(self, seconds: float = DEFAULT_SECONDS) -> None:
        self.seconds = float(seconds)
        self._parts = {CATALOG: _Part(), PROMOTIONS: _Part()}

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def generation(self, part: str) -> int:
        return self._parts[part].generation

    def invalidate(self, *parts: str) -> None:
        for name in parts or tuple(self._parts):
            p = self._parts[name]
            p.generation += 1
            p.entries.clear()

    def touched(self, session: AsyncSession, *parts: str) -> None:
        """A write of ``parts`` in ``session``'s transaction: emptied now and after it ends."""
        self.invalidate(*parts)
        dirty: dict[ReadCache, set[str]] = session.info.setdefault(_DIRTY, {})
        dirty.setdefault(self, set()).update(parts)

    def get(self, part: str, keys: Iterable[Any]) -> tuple[dict[Any, Any], list[Any]]:
        """(fresh entries found, keys missing or expired)."""
        entries = self._parts[part].entries
        now = time.monotonic()
        found: dict[Any, Any] = {}
        missing: list[Any] = []
        for key in keys:
            hit = entries.get(key)
            if hit is not None and now - hit[0] < self.seconds:
                found[key] = hit[1]
            else:
                missing.append(key)
        return found, missing

    def put(self, part: str, generation: int, values: dict[Any, Any]) -> None:
        """Store what was read while the part had ``generation`` (dropped if it changed since)."""
        p = self._parts[part]
        if not self.enabled or p.generation != generation:
            return
        stamp = time.monotonic()
        for key, value in values.items():
            p.entries[key] = (stamp, value)


_caches: weakref.WeakKeyDictionary[Database, ReadCache] = weakref.WeakKeyDictionary()


def read_cache(db: Database) -> ReadCache:
    cache = _caches.get(db)
    if cache is None:
        cache = _caches[db] = ReadCache()
    return cache


def configure(db: Database, seconds: float) -> ReadCache:
    cache = read_cache(db)
    cache.seconds = float(seconds)
    cache.invalidate()
    return cache


@event.listens_for(AsyncSession.sync_session_class, "after_commit")
def _after_commit(session: Any) -> None:
    for cache, parts in session.info.pop(_DIRTY, {}).items():
        cache.invalidate(*parts)


@event.listens_for(AsyncSession.sync_session_class, "after_rollback")
def _after_rollback(session: Any) -> None:
    for cache, parts in session.info.pop(_DIRTY, {}).items():
        cache.invalidate(*parts)


def live_automatic(
    promotions: Sequence[Promotion],
    now: datetime,
    currency: str,
    skus: Sequence[str],
    categories: Sequence[str],
) -> list[Promotion]:
    """The cached automatic promotions that the candidates statement would return for this
    basket (the same conditions, in Python)."""
    wanted_skus, wanted_categories = set(skus), set(categories)
    return [
        p
        for p in promotions
        if p.active
        and p.coupon_code is None
        and p.starts_at is not None
        and p.starts_at <= now
        and (p.ends_at is None or p.ends_at > now)
        and (p.currency is None or p.currency == currency)
        and (
            p.scope.all
            or not wanted_skus.isdisjoint(p.scope.skus)
            or not wanted_categories.isdisjoint(p.scope.categories)
        )
    ]
