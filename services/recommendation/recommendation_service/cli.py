"""``ecomops recommendation <command>``: rebuild the model, evaluate it offline."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .domain.personal import Mode
from .service_layer import evaluation


def _rebuild() -> int:
    from ecomops_platform.bus import MessageBus
    from ecomops_platform.db import Database

    from .adapters.unit_of_work import SqlRecommendationUnitOfWork
    from .bootstrap import SPEC, dependencies_of, load_settings
    from .service_layer.rebuild import RebuildModel
    from .service_layer.views import RebuildStats

    settings = load_settings()

    async def run() -> RebuildStats:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        try:
            bus = MessageBus(
                service=SPEC.name,
                uow=lambda: SqlRecommendationUnitOfWork(db, SPEC.name),
                deps=dependencies_of(settings),
                handlers=SPEC.handlers,
            )
            return await bus.handle(RebuildModel(), bus.system)
        finally:
            await db.dispose()

    stats = asyncio.run(run())
    print(
        f"rebuilt the model from {stats.interactions} interactions: "
        f"{stats.pairs} item pairs, {stats.items} items"
    )
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ecomops recommendation")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("rebuild", help="recompute the whole model from stored interactions")
    ev = sub.add_parser("evaluate", help="offline evaluation on purchase history (CSV)")
    ev.add_argument("--csv", required=True, help="customer_id,order_id,sku,ordered_at")
    ev.add_argument("--k", type=int, default=10, help="list length (default 10)")
    ev.add_argument(
        "--output",
        help="write the service's answer (customer_id,rank,sku,score,reason) per held-out "
        "customer here",
    )
    ev.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.PERSONAL.value,
        help="the answers --output writes (default personal)",
    )
    ev.add_argument(
        "--tune",
        action="store_true",
        help="choose order_decay, frequency_weight and neighbour_weight on a validation split "
        "of the training orders first (default: the service's parameters)",
    )
    args = parser.parse_args(argv)
    if args.command == "rebuild":
        return _rebuild()
    if args.k < 1:
        parser.error("--k must be at least 1")
    try:
        report, tuning = evaluation.evaluate_csv(
            args.csv, k=args.k, output=args.output, mode=Mode(args.mode), tuned=args.tune
        )
    except evaluation.EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if tuning is not None:
        print(tuning.table(args.k))
    print(report.table())
    return 0
