"""gRPC servicer ``ecomops.inventory.v1.InventoryService``: the same handlers as REST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from ecomops.common.v1 import common_pb2
from ecomops.inventory.v1 import events_pb2
from ecomops.inventory.v1 import inventory_service_pb2 as pb
from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from ecomops_platform.auth import Role
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.grpc_server import authorize
from ecomops_platform.idempotency import check_key, run_idempotent
from ecomops_platform.iso_codes import is_currency
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..adapters.events import ts
from ..domain import models as m
from ..domain.planning import AbcClass, Suggestion
from ..service_layer import handlers as h
from ..service_layer import planning as p
from ..settings import InventorySettings

SERVICE_NAME = "ecomops.inventory.v1.InventoryService"

_SKU_STATUS = {
    m.SkuStatus.ACTIVE: pb.SKU_STATUS_ACTIVE,
    m.SkuStatus.DISCONTINUED: pb.SKU_STATUS_DISCONTINUED,
}
_SKU_STATUS_IN = {v: k for k, v in _SKU_STATUS.items()}
_RES_STATUS = {
    m.ReservationStatus.HELD: pb.RESERVATION_STATUS_HELD,
    m.ReservationStatus.COMMITTED: pb.RESERVATION_STATUS_COMMITTED,
    m.ReservationStatus.RELEASED: pb.RESERVATION_STATUS_RELEASED,
    m.ReservationStatus.EXPIRED: pb.RESERVATION_STATUS_EXPIRED,
}
_REASON_IN = {
    pb.ADJUSTMENT_REASON_RECEIPT: m.AdjustmentReason.RECEIPT,
    pb.ADJUSTMENT_REASON_COUNT: m.AdjustmentReason.COUNT,
    pb.ADJUSTMENT_REASON_DAMAGE: m.AdjustmentReason.DAMAGE,
    pb.ADJUSTMENT_REASON_RETURN: m.AdjustmentReason.RETURN,
    pb.ADJUSTMENT_REASON_CORRECTION: m.AdjustmentReason.CORRECTION,
}
_ABC = {AbcClass.A: pb.ABC_CLASS_A, AbcClass.B: pb.ABC_CLASS_B, AbcClass.C: pb.ABC_CLASS_C}


def _opt_ts(value: datetime | None) -> Any:
    return ts(value) if value is not None else None


def sku_pb(x: m.Sku) -> pb.Sku:
    return pb.Sku(
        sku=x.sku,
        title=x.title,
        category=x.category,
        brand=x.brand or "",
        attributes=x.attributes,
        status=_SKU_STATUS[x.status],
        lead_time_days=x.lead_time_days or 0,
        created_at=ts(x.created_at),
        updated_at=ts(x.updated_at),
    )


def warehouse_pb(w: m.Warehouse) -> pb.Warehouse:
    return pb.Warehouse(code=w.code, name=w.name, region=w.region or "", priority=w.priority)


def ledger_pb(e: m.LedgerEntry) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        entry_id=e.entry_id,
        sku=e.sku,
        warehouse=e.warehouse,
        delta=e.delta,
        reason=e.reason,
        reference=e.reference or "",
        on_hand_after=e.on_hand_after,
        occurred_at=ts(e.occurred_at),
    )


def reservation_pb(r: m.Reservation) -> pb.Reservation:
    return pb.Reservation(
        reservation_id=r.reservation_id,
        status=_RES_STATUS[r.status],
        expires_at=ts(r.expires_at),
        allocations=[
            events_pb2.Allocation(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity)
            for a in r.allocations
        ],
        lines=[common_pb2.SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in r.lines],
        region=r.region or "",
        created_at=_opt_ts(r.created_at),
        closed_at=_opt_ts(r.closed_at),
    )


def suggestion_pb(sg: Suggestion, computed_at: datetime | None) -> pb.ReplenishmentSuggestion:
    return pb.ReplenishmentSuggestion(
        sku=sg.sku,
        warehouse=sg.warehouse,
        forecast_daily_demand=sg.forecast_daily_demand,
        safety_stock=sg.safety_stock,
        reorder_point=sg.reorder_point,
        suggested_order_quantity=sg.suggested_order_quantity,
        days_of_cover=sg.days_of_cover,
        abc_class=_ABC[sg.abc_class] if sg.abc_class else pb.ABC_CLASS_UNSPECIFIED,
        reason=sg.reason,
        on_hand=sg.on_hand,
        available=sg.available,
        lead_time_days=sg.lead_time_days,
        replenishment_mode=sg.replenishment_mode,
        computed_at=_opt_ts(computed_at),
    )


def _page(page: common_pb2.PageRequest) -> tuple[int, str | None]:
    return check_limit(page.limit or None), page.cursor or None


def _bounded(name: str, value: str, most: int) -> None:
    """The same length limits as the REST parameters (a lookup by an over-long value is a 422,
    not an empty answer)."""
    if len(value) > most:
        raise Unprocessable(f"{name}: at most {most} characters", code="validation-error")


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, uow_factory: Callable[[], UnitOfWork], settings: InventorySettings) -> None:
        self._uow = uow_factory
        self._settings = settings

    async def UpsertSku(
        self, request: pb.UpsertSkuRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertSkuResponse:
        authorize(Role.OPS)
        if not request.title or not request.category:
            raise Unprocessable("title and category are required", code="validation-error")
        status = _SKU_STATUS_IN.get(request.status)
        if status is None:
            raise Unprocessable("status is required", code="validation-error")
        sku, created = await h.upsert_sku(
            self._uow(),
            h.UpsertSku(
                sku=request.sku,
                title=request.title,
                category=request.category,
                status=status,
                brand=request.brand or None,
                attributes=dict(request.attributes),
                lead_time_days=request.lead_time_days or None,
            ),
        )
        return pb.UpsertSkuResponse(sku=sku_pb(sku), created=created)

    async def GetSku(
        self, request: pb.GetSkuRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSkuResponse:
        authorize()
        return pb.GetSkuResponse(sku=sku_pb(await h.get_sku(self._uow(), request.sku)))

    async def ListSkus(
        self, request: pb.ListSkusRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSkusResponse:
        authorize()
        _bounded("category", request.category, 100)
        limit, cursor = _page(request.page)
        pos = decode_cursor(cursor)
        items = await h.list_skus(
            self._uow(),
            category=request.category or None,
            status=_SKU_STATUS_IN.get(request.status),
            after=str(pos["sku"]) if pos and "sku" in pos else None,
            limit=limit + 1,
        )
        more = len(items) > limit
        items = items[:limit]
        return pb.ListSkusResponse(
            skus=[sku_pb(x) for x in items],
            page=common_pb2.PageResponse(
                next_cursor=encode_cursor({"sku": items[-1].sku}) if more else ""
            ),
        )

    async def UpsertWarehouse(
        self, request: pb.UpsertWarehouseRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertWarehouseResponse:
        authorize(Role.OPS)
        if not request.name:
            raise Unprocessable("name is required", code="validation-error")
        wh, created = await h.upsert_warehouse(
            self._uow(),
            h.UpsertWarehouse(
                code=request.code,
                name=request.name,
                region=request.region or None,
                priority=request.priority if request.HasField("priority") else None,
            ),
        )
        return pb.UpsertWarehouseResponse(warehouse=warehouse_pb(wh), created=created)

    async def ListWarehouses(
        self, request: pb.ListWarehousesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWarehousesResponse:
        authorize()
        return pb.ListWarehousesResponse(
            warehouses=[warehouse_pb(w) for w in await h.list_warehouses(self._uow())]
        )

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.AdjustStockResponse:
        who = authorize(Role.OPS)
        key = check_key(request.idempotency_key, required=True)
        assert key is not None
        reason = _REASON_IN.get(request.reason)
        if reason is None:
            raise Unprocessable("reason is required", code="validation-error")
        uow = self._uow()

        async def action() -> tuple[int, Any]:
            entry = await h.adjust_stock(
                uow,
                h.AdjustStock(
                    sku=request.sku,
                    warehouse=request.warehouse,
                    delta=request.delta,
                    reason=reason,
                    reference=request.reference or None,
                ),
            )
            return 201, {
                "entry_id": entry.entry_id,
                "sku": entry.sku,
                "warehouse": entry.warehouse,
                "delta": entry.delta,
                "reason": entry.reason,
                "reference": entry.reference,
                "on_hand_after": entry.on_hand_after,
                "occurred_at": entry.occurred_at.isoformat(),
            }

        payload = {
            "sku": request.sku,
            "warehouse": request.warehouse,
            "delta": request.delta,
            "reason": reason.value,
            "reference": request.reference or None,
        }
        stored = await run_idempotent(
            uow,
            caller=who.subject,
            operation="create_adjustment",
            key=key,
            payload=payload,
            action=action,
        )
        body = stored.body
        return pb.AdjustStockResponse(
            entry=ledger_pb(
                m.LedgerEntry(
                    entry_id=body["entry_id"],
                    sku=body["sku"],
                    warehouse=body["warehouse"],
                    delta=int(body["delta"]),
                    reason=body["reason"],
                    reference=body["reference"],
                    on_hand_after=int(body["on_hand_after"]),
                    occurred_at=datetime.fromisoformat(body["occurred_at"]),
                )
            )
        )

    async def GetStock(
        self, request: pb.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStockResponse:
        authorize()
        level = await h.get_stock(self._uow(), request.sku)
        return pb.GetStockResponse(
            stock=pb.StockLevel(
                sku=level.sku,
                on_hand=level.on_hand,
                reserved=level.reserved,
                available=level.available,
                warehouses=[
                    pb.WarehouseStock(
                        warehouse=w.warehouse,
                        on_hand=w.on_hand,
                        reserved=w.reserved,
                        available=w.available,
                    )
                    for w in level.warehouses
                ],
            )
        )

    async def GetAvailability(
        self, request: pb.GetAvailabilityRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAvailabilityResponse:
        authorize()
        if len(request.skus) > 200:
            raise Unprocessable("skus: at most 200", code="validation-error")
        for sku in request.skus:
            _bounded("skus", sku, 64)
        found = await h.get_availability(self._uow(), list(request.skus))
        return pb.GetAvailabilityResponse(
            items=[
                pb.SkuAvailability(
                    sku=a.sku,
                    available=a.available,
                    status=_SKU_STATUS[a.status] if a.status else pb.SKU_STATUS_UNSPECIFIED,
                )
                for a in found
            ]
        )

    async def ListLedger(
        self, request: pb.ListLedgerRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListLedgerResponse:
        authorize(Role.OPS, Role.SERVICE, Role.PARTNER)
        limit, cursor = _page(request.page)
        pos = decode_cursor(cursor)
        before = pos.get("id") if pos else None
        if before is not None and not isinstance(before, int):
            raise Unprocessable("cursor is not valid for this list", code="invalid-cursor")
        rows = await h.list_ledger(self._uow(), request.sku, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return pb.ListLedgerResponse(
            entries=[ledger_pb(e) for _, e in rows],
            page=common_pb2.PageResponse(
                next_cursor=encode_cursor({"id": rows[-1][0]}) if more else ""
            ),
        )

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReserveStockResponse:
        authorize(Role.OPS, Role.SERVICE)
        reservation, _ = await h.reserve_stock(
            self._uow(),
            self._settings,
            h.ReserveStock(
                reservation_id=request.reservation_id,
                lines=[m.Line(ln.sku, ln.quantity) for ln in request.lines],
                ttl_seconds=request.ttl_seconds or None,
                region=request.region or None,
            ),
        )
        return pb.ReserveStockResponse(reservation=reservation_pb(reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommitReservationResponse:
        authorize(Role.OPS, Role.SERVICE)
        r = await h.commit_reservation(self._uow(), request.reservation_id)
        return pb.CommitReservationResponse(reservation=reservation_pb(r))

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseReservationResponse:
        authorize(Role.OPS, Role.SERVICE)
        r = await h.release_reservation(self._uow(), request.reservation_id)
        return pb.ReleaseReservationResponse(reservation=reservation_pb(r))

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReservationResponse:
        if authorize().is_customer:
            raise NotFound(f"reservation {request.reservation_id} not found")
        r = await h.get_reservation(self._uow(), request.reservation_id)
        return pb.GetReservationResponse(reservation=reservation_pb(r))

    async def ListReplenishmentSuggestions(
        self,
        request: pb.ListReplenishmentSuggestionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListReplenishmentSuggestionsResponse:
        authorize(Role.OPS, Role.SERVICE, Role.PARTNER)
        _bounded("warehouse", request.warehouse, 64)
        limit, cursor = _page(request.page)
        pos = decode_cursor(cursor)
        after = (str(pos["sku"]), str(pos["warehouse"])) if pos and "sku" in pos else None
        views = await p.replenishment_suggestions(
            self._uow(),
            self._settings,
            warehouse=request.warehouse or None,
            after=after,
            limit=limit + 1,
        )
        more = len(views) > limit
        views = views[:limit]
        last = views[-1].suggestion if views else None
        return pb.ListReplenishmentSuggestionsResponse(
            suggestions=[suggestion_pb(v.suggestion, v.computed_at) for v in views],
            page=common_pb2.PageResponse(
                next_cursor=encode_cursor({"sku": last.sku, "warehouse": last.warehouse})
                if more and last
                else ""
            ),
        )

    async def GetAbcClassification(
        self, request: pb.GetAbcClassificationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAbcClassificationResponse:
        authorize(Role.OPS, Role.SERVICE, Role.PARTNER)
        if request.currency and not is_currency(request.currency):
            raise Unprocessable("currency: an ISO 4217 code", code="invalid-currency")
        currency = request.currency or self._settings.abc_currency
        entries = await p.abc_classes(self._uow(), self._settings, currency)
        return pb.GetAbcClassificationResponse(
            items=[
                pb.AbcItem(
                    sku=e.sku,
                    revenue_minor=e.revenue_minor,
                    revenue_share=str(e.revenue_share),
                    cumulative_share=str(e.cumulative_share),
                    abc_class=_ABC[e.abc_class],
                    replenishment_mode="just_in_time"
                    if e.abc_class is AbcClass.A
                    else "batch"
                    if e.abc_class is AbcClass.C
                    else "standard",
                )
                for e in entries
            ],
            a_threshold=str(self._settings.abc_a_threshold),
            b_threshold=str(self._settings.abc_b_threshold),
            currency=currency,
            window_days=self._settings.abc_window_days,
        )

    async def GetInventoryKpis(
        self, request: pb.GetInventoryKpisRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInventoryKpisResponse:
        authorize(Role.OPS, Role.SERVICE, Role.PARTNER)
        from_d, to_d = p.parse_range(request.from_date or None, request.to_date or None)
        k = await p.kpis(self._uow(), self._settings, from_d, to_d)
        return pb.GetInventoryKpisResponse(
            kpis=pb.InventoryKpis(
                from_date=k.from_date.isoformat(),
                to_date=k.to_date.isoformat(),
                units_sold=k.units_sold,
                average_on_hand=k.average_on_hand,
                inventory_turnover=k.inventory_turnover,
                stock_out_rate=k.stock_out_rate,
                days_of_cover=k.days_of_cover,
                excess_stock_units=k.excess_stock_units,
                sku_days=k.sku_days,
                stockout_sku_days=k.stockout_sku_days,
            )
        )


def registrar(
    uow_factory: Callable[[], UnitOfWork], settings: InventorySettings
) -> Callable[[grpc.aio.Server], None]:
    servicer = InventoryServicer(uow_factory, settings)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_InventoryServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return register
