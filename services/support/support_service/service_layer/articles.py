"""The knowledge base: articles (ops write them), search (anyone), the starter set."""

from __future__ import annotations

from dataclasses import dataclass

from ecomops_platform.auth import Role
from ecomops_platform.bus import ANY_ROLE, Command, Query, handler
from ecomops_platform.errors import Unprocessable

from ..domain.knowledge import Article
from ..domain.tickets import Category
from .ports import Ctx
from .views import ArticleSearchView, ArticleView

LANGUAGES = ("en", "zh")


@dataclass(frozen=True, slots=True, kw_only=True)
class PutArticle(Command[ArticleView], roles=(Role.OPS,)):
    """Create or replace an article; every replica's next search uses it."""

    article_id: str
    title: str
    body: str
    category: str
    language: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchArticles(Query[ArticleSearchView], roles=ANY_ROLE):
    q: str
    language: str | None = None
    k: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedArticles(Command[int], roles=(Role.OPS, Role.SERVICE)):
    """Load articles that do not exist yet (the starter knowledge base); returns how many."""

    articles: tuple[Article, ...]
    #: Only when the knowledge base has no article at all (start-up seeding).
    only_when_empty: bool = False


def check_article(a: Article) -> None:
    errors = []
    if not a.article_id.strip() or len(a.article_id) > 100:
        errors.append("article_id must be 1..100 characters")
    if not a.title.strip() or len(a.title) > 300:
        errors.append("title must be 1..300 characters")
    if not a.body.strip() or len(a.body) > 20000:
        errors.append("body must be 1..20000 characters")
    if a.category not in {c.value for c in Category}:
        errors.append("category must be one of " + ", ".join(c.value for c in Category))
    if a.language not in LANGUAGES:
        errors.append("language must be en or zh")
    if len(a.keywords) > 50 or any(not k.strip() or len(k) > 100 for k in a.keywords):
        errors.append("keywords: at most 50, each 1..100 characters")
    if errors:
        raise Unprocessable("; ".join(errors), code="invalid-article", errors=errors)


@handler
async def put_article(cmd: PutArticle, ctx: Ctx) -> ArticleView:
    article = Article(
        article_id=cmd.article_id,
        title=cmd.title.strip(),
        body=cmd.body.strip(),
        category=cmd.category,
        language=cmd.language,
        keywords=tuple(k.strip() for k in cmd.keywords),
    )
    check_article(article)
    async with ctx.uow:
        view = await ctx.uow.articles.put(article, ctx.deps.clock())
        await ctx.uow.commit()
    return view


@handler
async def search_articles(query: SearchArticles, ctx: Ctx) -> ArticleSearchView:
    q = query.q.strip()
    if not q or len(q) > 2000:
        raise Unprocessable("q must be 1..2000 characters", code="validation-error")
    if query.language not in (None, "", *LANGUAGES):
        raise Unprocessable("language must be en or zh", code="validation-error")
    if not 1 <= query.k <= 20:
        raise Unprocessable("k must be between 1 and 20", code="validation-error")
    async with ctx.uow:
        version, matches = await ctx.deps.knowledge.matches(
            ctx.uow, q, query.language or None, query.k
        )
    return ArticleSearchView(tuple(matches), version)


@handler
async def seed_articles(cmd: SeedArticles, ctx: Ctx) -> int:
    for a in cmd.articles:
        check_article(a)
    added = 0
    async with ctx.uow:
        if cmd.only_when_empty and await ctx.uow.articles.version() > 0:
            return 0
        for a in cmd.articles:
            added += await ctx.uow.articles.put_if_absent(a, ctx.deps.clock())
        await ctx.uow.commit()
    return added
