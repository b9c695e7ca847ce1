"""Knowledge-base retrieval, pure Python (no I/O): BM25 over articles, English and Chinese.

Interface only in this commit; the retrieval itself follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Article:
    """One knowledge-base article. ``language`` is ``"en"`` or ``"zh"``."""

    article_id: str
    title: str
    body: str
    category: str
    language: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """One search hit; ``score`` is a confidence in [0, 1] comparable to one threshold."""

    article_id: str
    title: str
    score: float


class KnowledgeIndex:
    """An immutable search index over a set of articles."""

    def __init__(self, articles: Sequence[Article]) -> None:
        self._articles = tuple(articles)

    @classmethod
    def build(cls, articles: Sequence[Article]) -> KnowledgeIndex:
        return cls(articles)

    def search(self, query: str, language: str | None = None, k: int = 3) -> list[Match]:
        """The ``k`` best articles for ``query``, best first (language detected when None)."""
        raise NotImplementedError("retrieval lands in the next commit on branch support-kb")
