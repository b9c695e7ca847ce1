"""Fulfilment: shipments (all lines left, or partial) and delivery, recorded by ops, carriers
(partners) and other services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ecomops_platform.bus import Command, handler

from ..domain.models import merge_quantities
from . import events as ev
from .orders import FULFILLERS, actor, order_for, order_view
from .ports import Ctx, ShipmentRecord
from .views import OrderView


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateShipment(Command[OrderView], roles=FULFILLERS, idempotent=True):
    """Record a shipment: the lines given, or every line left to ship when ``lines`` is None."""

    order_id: str
    lines: list[tuple[str, int]] | None = None
    carrier: str
    tracking_number: str

    def idempotency_operation(self) -> str:
        return f"create_shipment:{self.order_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmDelivery(Command[OrderView], roles=FULFILLERS):
    order_id: str


@handler
async def create_shipment(cmd: CreateShipment, ctx: Ctx) -> OrderView:
    async with ctx.uow:
        record = await order_for(ctx, cmd.order_id, for_update=True, fulfilment=True)
        order = record.order
        now = ctx.deps.clock()
        wanted = merge_quantities(cmd.lines) if cmd.lines else None
        before = {line.sku: line.shipped_quantity for line in order.lines}
        complete = order.ship(
            wanted, at=now, actor=actor(ctx.caller), note=f"{cmd.carrier} {cmd.tracking_number}"
        )
        shipped = {
            line.sku: line.shipped_quantity - before[line.sku]
            for line in order.lines
            if line.shipped_quantity > before[line.sku]
        }
        shipment_id = uuid.uuid4().hex
        await ctx.uow.orders.add_shipment(
            ShipmentRecord(
                shipment_id=shipment_id,
                order_id=cmd.order_id,
                carrier=cmd.carrier,
                tracking_number=cmd.tracking_number,
                lines=[{"sku": k, "quantity": v} for k, v in shipped.items()],
                shipped_at=now,
            )
        )
        await ctx.uow.orders.save(order, at=now)
        ctx.uow.add_event(
            ev.order_shipped(
                order,
                shipment_id=shipment_id,
                lines=shipped,
                carrier=cmd.carrier,
                tracking_number=cmd.tracking_number,
                complete=complete,
                at=now,
            ),
            key=cmd.order_id,
        )
        await ctx.uow.commit()
        return await order_view(ctx.uow, ctx.caller, cmd.order_id)


@handler
async def confirm_delivery(cmd: ConfirmDelivery, ctx: Ctx) -> OrderView:
    async with ctx.uow:
        record = await order_for(ctx, cmd.order_id, for_update=True, fulfilment=True)
        now = ctx.deps.clock()
        record.order.deliver(at=now, actor=actor(ctx.caller))
        await ctx.uow.orders.save(record.order, at=now)
        ctx.uow.add_event(ev.order_delivered(record.order, at=now), key=cmd.order_id)
        await ctx.uow.commit()
        return await order_view(ctx.uow, ctx.caller, cmd.order_id)
