"""History import: a batch of historical orders stored as delivered orders and announced with
``OrderImported`` through the outbox, so that inventory (demand and revenue history) and
recommendation (co-purchases, purchases, RFM segments) learn from them and the order KPIs count
them. An imported order takes no stock, no payment and no risk decision: it never enters the
checkout, payment or fulfilment flows, and ``OrderPlaced``/``OrderPaid`` are not published.

Idempotent per order id: an order whose id is already stored with the same customer, total and
time is skipped (a re-run after an interrupted import); one stored with other facts, or a live
order with that id, is a conflict. A batch is validated whole before anything is written and is
written in one transaction; ``dry_run`` validates and reports conflicts without writing (the
importer checks the whole file that way before applying any of it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ecomops.order.v1 import events_pb2
from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, handler
from ecomops_platform.errors import Unprocessable
from ecomops_platform.timestamps import optional_timestamp as ts

from ..domain.history import ImportedOrder, ImportProblem, validate_imported
from .orders import actor
from .ports import Ctx, StoredImport
from .views import ImportConflictView, ImportResultView

#: Importing history is an operator's job.
IMPORTERS = (Role.OPS,)
#: Orders per request (the importer sends 500).
MAX_IMPORT_BATCH = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOrders(Command[ImportResultView], roles=IMPORTERS):
    """Store historical orders (each at most once per order id)."""

    orders: tuple[ImportedOrder, ...]
    import_id: str = ""
    dry_run: bool = False


def invalid_import(problems: list[ImportProblem]) -> Unprocessable:
    def where(p: ImportProblem) -> str:
        line = f".lines[{p.line_index}]" if p.line_index >= 0 else ""
        return f"orders[{p.order_index}]{line}.{p.field}"

    summary = "; ".join(f"{where(p)}: {p.reason}" for p in problems[:10])
    return Unprocessable(
        f"{len({p.order_index for p in problems})} invalid order(s), nothing was imported: "
        f"{summary}",
        code="invalid-import",
        errors=[
            {
                "order_index": p.order_index,
                "line_index": p.line_index if p.line_index >= 0 else None,
                "field": p.field,
                "location": where(p),
                "message": p.reason,
            }
            for p in problems
        ],
    )


def _same(order: ImportedOrder, stored: StoredImport) -> bool:
    return (
        stored.imported
        and stored.customer_id == order.customer_id
        and stored.total_minor == order.total_minor
        and stored.placed_at == order.ordered_at
    )


def order_imported(order: ImportedOrder, import_id: str) -> events_pb2.OrderImported:
    return events_pb2.OrderImported(
        order_id=order.order_id,
        customer_id=order.customer_id,
        currency=order.currency,
        lines=[
            events_pb2.OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                discount_minor=0,
                total_minor=line.total_minor,
            )
            for line in order.lines
        ],
        total_minor=order.total_minor,
        ordered_at=ts(order.ordered_at),
        import_id=import_id,
    )


@handler
async def import_orders(cmd: ImportOrders, ctx: Ctx) -> ImportResultView:
    if not cmd.orders:
        raise Unprocessable("a batch needs at least one order", code="empty-batch")
    if len(cmd.orders) > MAX_IMPORT_BATCH:
        raise Unprocessable(
            f"a batch holds at most {MAX_IMPORT_BATCH} orders (got {len(cmd.orders)})",
            code="batch-too-large",
            max_batch=MAX_IMPORT_BATCH,
        )
    now = ctx.deps.clock()
    problems: list[ImportProblem] = []
    first_index: dict[str, int] = {}
    for index, order in enumerate(cmd.orders):
        problems.extend(validate_imported(index, order, now))
        if order.order_id in first_index:
            problems.append(
                ImportProblem(
                    index,
                    -1,
                    "order_id",
                    f"{order.order_id} appears twice in the batch "
                    f"(orders[{first_index[order.order_id]}])",
                )
            )
        first_index.setdefault(order.order_id, index)
    if problems:
        raise invalid_import(sorted(problems))
    async with ctx.uow:
        stored = await ctx.uow.imports.existing([o.order_id for o in cmd.orders])
        conflicts = [
            ImportConflictView(
                order_id=o.order_id,
                reason="a live order has this id"
                if not stored[o.order_id].imported
                else "imported before with another customer, total or time",
            )
            for o in cmd.orders
            if o.order_id in stored and not _same(o, stored[o.order_id])
        ]
        fresh = [o for o in cmd.orders if o.order_id not in stored]
        if cmd.dry_run or conflicts:
            return ImportResultView(
                dry_run=cmd.dry_run,
                imported=0,
                to_import=len(fresh),
                already_imported=len(cmd.orders) - len(fresh) - len(conflicts),
                conflicts=conflicts,
            )
        import_id = cmd.import_id[:100]
        added = await ctx.uow.imports.add(
            fresh, actor=actor(ctx.caller), note=f"imported{f' ({import_id})' if import_id else ''}"
        )
        for order in fresh:
            if order.order_id in added:
                ctx.uow.add_event(order_imported(order, import_id), key=order.order_id)
        await ctx.uow.commit()
    return ImportResultView(
        dry_run=False,
        imported=len(added),
        to_import=0,
        already_imported=len(cmd.orders) - len(added),
        conflicts=[],
    )
