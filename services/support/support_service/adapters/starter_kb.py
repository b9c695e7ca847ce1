"""The starter knowledge base shipped with the service (``knowledge_base/``), read from the
package's files."""

from __future__ import annotations

import json
from importlib import resources

from ..domain.knowledge import Article


def starter_articles() -> tuple[Article, ...]:
    """Every article of ``knowledge_base/articles*.json`` (a JSON list of objects with
    article_id, title, body, category, language, keywords); none when the files are absent."""
    root = resources.files("support_service") / "knowledge_base"
    found: list[Article] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not (entry.name.startswith("articles") and entry.name.endswith(".json")):
            continue
        for item in json.loads(entry.read_text(encoding="utf-8")):
            found.append(
                Article(
                    article_id=str(item["article_id"]),
                    title=str(item["title"]),
                    body=str(item["body"]),
                    category=str(item["category"]),
                    language=str(item["language"]),
                    keywords=tuple(str(k) for k in item.get("keywords", ())),
                )
            )
    return tuple(found)
