"""``ecomops support <command>``: evaluate and calibrate the knowledge base's automatic answers;
seed-kb (load the starter knowledge base into the database)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from .domain.knowledge import DEFAULT_AUTO_ANSWER_CONFIDENCE
from .knowledge_base import load_starter_articles
from .service_layer import evaluation

THRESHOLD_ENV = "SUPPORT_AUTO_ANSWER_CONFIDENCE"


def _configured_threshold() -> float:
    raw = os.environ.get(THRESHOLD_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_AUTO_ANSWER_CONFIDENCE
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"error: {THRESHOLD_ENV}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise SystemExit(f"error: {THRESHOLD_ENV}={raw!r} is not between 0 and 1")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def cmd_seed_kb(missing: bool) -> int:
    """Load the starter articles into the service's database (``SUPPORT_DATABASE_URL``): when it
    has no article at all, or with ``missing`` every starter article whose id is absent.
    Existing articles are never overwritten."""
    from ecomops_platform.bus import MessageBus
    from ecomops_platform.db import Database

    from .adapters.unit_of_work import SqlSupportUnitOfWork
    from .bootstrap import SPEC, deps_from, load_settings
    from .service_layer.articles import SeedArticles

    settings = load_settings()
    articles = tuple(load_starter_articles())

    async def run() -> int:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        try:
            bus: MessageBus[Any, Any] = MessageBus(
                service=SPEC.name,
                uow=lambda: SqlSupportUnitOfWork(db, SPEC.name),
                deps=deps_from(settings),
                handlers=SPEC.handlers,
            )
            return await bus.handle(
                SeedArticles(articles=articles, only_when_empty=not missing), bus.system
            )
        finally:
            await db.dispose()

    added = asyncio.run(run())
    print(f"seed-kb: {added} of {len(articles)} starter articles added")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ecomops support")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser(
        "evaluate",
        help="measure the automatic answers of the starter knowledge base on labelled questions",
    )
    ev.add_argument(
        "--csv", required=True, help="question,expected_article_id,language (empty id: none)"
    )
    ev.add_argument(
        "--threshold",
        type=_threshold,
        help=f"auto-answer confidence (default: {THRESHOLD_ENV} or "
        f"{DEFAULT_AUTO_ANSWER_CONFIDENCE})",
    )
    ev.add_argument(
        "--show-errors",
        action="store_true",
        help="also list the questions whose first hit is wrong or that were answered wrongly",
    )
    cal = sub.add_parser(
        "calibrate",
        help="fit the confidence model on a labelled (development) question set and print it",
    )
    cal.add_argument("--csv", required=True, help="question,expected_article_id,language")
    seed = sub.add_parser(
        "seed-kb",
        help="load the starter knowledge base into the database when it has no article",
    )
    seed.add_argument(
        "--missing",
        action="store_true",
        help="add every starter article whose id is missing, even when others exist",
    )
    args = parser.parse_args(argv)
    if args.command == "seed-kb":
        return cmd_seed_kb(args.missing)
    articles = load_starter_articles()
    try:
        if args.command == "calibrate":
            print(evaluation.fit_confidence(args.csv, articles))
            return 0
        threshold = args.threshold if args.threshold is not None else _configured_threshold()
        report = evaluation.evaluate(args.csv, articles, threshold)
    except evaluation.EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(evaluation.format_report(report))
    if args.show_errors:
        for o in report.outcomes:
            if o.correct_top1 and o.auto_answered:
                continue
            if o.question.expected_article_id is None and not o.auto_answered:
                continue
            state = "answered" if o.auto_answered else "to an agent"
            print(
                f"line {o.question.line}: {o.question.question!r} expected "
                f"{o.question.expected_article_id or '(none)'}, got "
                f"{', '.join(o.top) or '(nothing)'} at {o.confidence:.2f}: {state}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
