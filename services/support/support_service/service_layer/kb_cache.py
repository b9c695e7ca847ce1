"""The in-memory knowledge index of one process, rebuilt when the articles change.

Every article change bumps the knowledge base's version (a database sequence, so every replica
sees the same numbers). Before a search, the cache reads the current version (one indexed
``max``) in the caller's transaction; when it differs from the version its index was built
from, it reloads the articles and rebuilds the index off the event loop. So a change made
through any replica is used by every replica's next search; two concurrent searches in one
process rebuild once (a lock), and a search never waits for another replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from ..domain.knowledge import Article, KnowledgeIndex
from .views import ArticleMatchView, ArticleView


class _Articles(Protocol):
    async def all(self) -> list[ArticleView]: ...

    async def version(self) -> int: ...


class _HasArticles(Protocol):
    @property
    def articles(self) -> _Articles: ...


def article_of(view: ArticleView) -> Article:
    return Article(
        article_id=view.article_id,
        title=view.title,
        body=view.body,
        category=view.category,
        language=view.language,
        keywords=tuple(view.keywords),
    )


def detect_language(text: str) -> str:
    """ "zh" when the text has CJK ideographs, else "en"."""
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


class KnowledgeCache:
    def __init__(self) -> None:
        self.version = -1
        self.index: KnowledgeIndex | None = None
        self.rebuilds = 0
        self._lock = asyncio.Lock()

    async def current(self, uow: _HasArticles) -> tuple[int, KnowledgeIndex]:
        version = await uow.articles.version()
        if version == self.version and self.index is not None:
            return version, self.index
        async with self._lock:
            if version != self.version or self.index is None:
                views = await uow.articles.all()
                articles: Sequence[Article] = [article_of(v) for v in views]
                self.index = await asyncio.to_thread(KnowledgeIndex.build, articles)
                self.version = version
                self.rebuilds += 1
            return self.version, self.index

    async def matches(
        self, uow: _HasArticles, query: str, language: str | None, k: int
    ) -> tuple[int, list[ArticleMatchView]]:
        version, index = await self.current(uow)
        found = await asyncio.to_thread(index.search, query, language, k)
        return version, [
            ArticleMatchView(m.article_id, m.title, round(float(m.score), 4)) for m in found
        ]
