"""The starter knowledge base shipped with the service, and its labelled question sets.

``articles.json``: about forty articles, each in English and Simplified Chinese.
``questions_dev.csv``: questions used to design the retrieval and to write the articles' keywords.
``questions_calibration.csv``: questions used only to fit the confidence and choose the default
threshold, never to write keywords (so that the confidence is not flattered by them).
``questions_heldout.csv``: questions written before the last change, measured once to report the
figures in docs/services/support.md. The history of the three sets is told there.
Both CSVs are ``question,expected_article_id,language``; an empty id means no article answers.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from ..domain.knowledge import Article

_FIELDS = ("article_id", "title", "body", "category", "language", "keywords")


def data_path(name: str) -> Path:
    """The path of one of this package's data files (``questions_dev.csv``...)."""
    return Path(str(resources.files(__package__).joinpath(name)))


def load_starter_articles() -> list[Article]:
    """The starter articles, in file order."""
    raw = json.loads(data_path("articles.json").read_text(encoding="utf-8"))
    articles: list[Article] = []
    for n, item in enumerate(raw):
        missing = [f for f in _FIELDS if f not in item]
        if missing:
            raise ValueError(f"articles.json item {n}: missing {', '.join(missing)}")
        articles.append(
            Article(
                article_id=str(item["article_id"]),
                title=str(item["title"]),
                body=str(item["body"]),
                category=str(item["category"]),
                language=str(item["language"]),
                keywords=tuple(str(k) for k in item["keywords"]),
            )
        )
    return articles
