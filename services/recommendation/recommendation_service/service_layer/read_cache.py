"""A per-process cache of recommendation answers with a bounded staleness.

Answers are kept for ``ttl`` seconds (``RECOMMENDATION_READ_CACHE_SECONDS``) and at most
``max_entries`` of them (the oldest go first). What that means:

- an answer is at most ``ttl`` seconds older than the model: a SKU that went out of stock, or a
  paid order, shows up at the latest ``ttl`` seconds later (plus the consumer's own lag);
- each worker process (and each replica) has its own cache, filled by the requests it serves,
  so two processes may answer the same question from models up to ``ttl`` seconds apart; nothing
  is shared or invalidated across processes, and none is needed for the bound to hold;
- the key is the query itself (customer, SKU, category, limit, mode); the caller is checked
  before the cache is read, so a cached answer is never shown to someone who may not see it.

``ttl`` 0 turns the cache off (every request reads PostgreSQL).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadCache(Generic[V]):
    def __init__(
        self,
        ttl: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is not None:
            if self._clock() < entry[0]:
                self.hits += 1
                return entry[1]
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: V) -> V:
        if self.ttl > 0:
            self._entries[key] = (self._clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
