"""REST API under /v1: decode, send one message through the bus, encode. Who may send what is
declared on the messages (writes ``ops``, reservations also ``service``; ledger and planning
reads staff; other reads any authenticated caller)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from ecomops_platform.auth import Caller
from ecomops_platform.bus import MessageBus
from ecomops_platform.errors import Unprocessable
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor
from ecomops_platform.rest import allowed, replayed
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey

from ..domain.inbound import InboundStatus
from ..domain.models import AdjustmentReason, Line, SkuStatus
from ..service_layer.catalog import GetSku, ListSkus, ListWarehouses, UpsertSku, UpsertWarehouse
from ..service_layer.inbound import (
    CancelInboundOrder,
    GetInboundOrder,
    ListInboundOrders,
    PlaceInboundOrder,
    ReceiveInboundOrder,
    cursor_position,
    page_cursor,
)
from ..service_layer.planning import (
    GetAbcClassification,
    GetInventoryKpis,
    ListReplenishmentSuggestions,
)
from ..service_layer.ports import Deps, InventoryUnitOfWork
from ..service_layer.reservations import (
    CommitReservation,
    GetReservation,
    ReleaseReservation,
    ReserveStock,
)
from ..service_layer.stock import AdjustStock, GetAvailability, GetStock, ListLedger
from . import schemas as s

Bus = MessageBus[InventoryUnitOfWork, Deps]


def _cursor_value(cursor: str | None, *keys: str) -> Any:
    pos = decode_cursor(cursor)
    if pos is None:
        return None
    try:
        values = [pos[k] for k in keys]
    except KeyError:
        raise Unprocessable("cursor is not valid for this list", code="invalid-cursor") from None
    return values[0] if len(values) == 1 else tuple(values)


def build_router(bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["inventory"])

    # --- SKUs ------------------------------------------------------------------------------------
    @router.put(
        "/skus/{sku}",
        response_model=s.SkuOut,
        responses={200: {"description": "Updated"}, 201: {"description": "Created"}},
    )
    async def upsert_sku(
        sku: str,
        body: s.SkuIn,
        caller: Annotated[Caller, allowed(UpsertSku)],
        response: Response,
    ) -> s.SkuOut:
        """Create or update a SKU (201 on create, 200 on update); publishes SkuUpserted."""
        saved = await bus.handle(
            UpsertSku(
                sku=sku,
                title=body.title,
                category=body.category,
                status=SkuStatus(body.status),
                brand=body.brand,
                attributes=body.attributes,
                lead_time_days=body.lead_time_days,
            ),
            caller,
        )
        response.status_code = 201 if saved.created else 200
        return s.SkuOut.of(saved.sku)

    @router.get("/skus/{sku}", response_model=s.SkuOut)
    async def get_sku(sku: str, caller: Annotated[Caller, allowed(GetSku)]) -> s.SkuOut:
        """One SKU of the registry."""
        return s.SkuOut.of(await bus.handle(GetSku(sku=sku), caller))

    @router.get("/skus", response_model=s.SkuPage)
    async def list_skus(
        caller: Annotated[Caller, allowed(ListSkus)],
        category: Annotated[str | None, Query(max_length=100)] = None,
        status: SkuStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> s.SkuPage:
        """SKUs by id, filtered by category and status; cursor pagination."""
        page = await bus.handle(
            ListSkus(
                category=category,
                status=status,
                after=_cursor_value(cursor, "sku"),
                limit=check_limit(limit),
            ),
            caller,
        )
        return s.SkuPage(
            items=[s.SkuOut.of(x) for x in page.items],
            next_cursor=encode_cursor({"sku": page.items[-1].sku}) if page.more else None,
        )

    # --- warehouses ----------------------------------------------------------------------------
    @router.put(
        "/warehouses/{code}",
        response_model=s.WarehouseOut,
        responses={200: {"description": "Updated"}, 201: {"description": "Created"}},
    )
    async def upsert_warehouse(
        code: str,
        body: s.WarehouseIn,
        caller: Annotated[Caller, allowed(UpsertWarehouse)],
        response: Response,
    ) -> s.WarehouseOut:
        """Create or update a warehouse (lower priority is preferred; default 100)."""
        saved = await bus.handle(
            UpsertWarehouse(code=code, name=body.name, region=body.region, priority=body.priority),
            caller,
        )
        response.status_code = 201 if saved.created else 200
        return s.WarehouseOut.of(saved.warehouse)

    @router.get("/warehouses", response_model=s.WarehouseList)
    async def list_warehouses(
        caller: Annotated[Caller, allowed(ListWarehouses)],
    ) -> s.WarehouseList:
        """Every warehouse, by priority then code."""
        found = await bus.handle(ListWarehouses(), caller)
        return s.WarehouseList(items=[s.WarehouseOut.of(w) for w in found])

    # --- stock -----------------------------------------------------------------------------------
    @router.post(
        "/stock/adjustments",
        status_code=201,
        response_model=s.LedgerEntryOut,
        responses={201: {"description": "The ledger entry written"}},
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_adjustment(
        body: s.AdjustmentIn,
        key: RequiredIdempotencyKey,
        caller: Annotated[Caller, allowed(AdjustStock)],
        response: Response,
    ) -> s.LedgerEntryOut:
        """Change on-hand stock (409 if it would go negative or below the reserved units)."""
        outcome = await bus.execute(
            AdjustStock(
                sku=body.sku,
                warehouse=body.warehouse,
                delta=body.delta,
                reason=AdjustmentReason(body.reason),
                reference=body.reference,
            ),
            caller,
            idempotency_key=key,
        )
        return s.LedgerEntryOut.of(replayed(outcome, response))

    @router.get("/stock/{sku}", response_model=s.StockOut)
    async def get_stock(sku: str, caller: Annotated[Caller, allowed(GetStock)]) -> s.StockOut:
        """Stock of a SKU: totals and per warehouse."""
        return s.StockOut.of(await bus.handle(GetStock(sku=sku), caller))

    @router.get("/stock/{sku}/ledger", response_model=s.LedgerPage)
    async def list_ledger(
        sku: str,
        caller: Annotated[Caller, allowed(ListLedger)],
        limit: int | None = None,
        cursor: str | None = None,
    ) -> s.LedgerPage:
        """The append-only stock movements of a SKU, newest first; they sum to on_hand."""
        n = check_limit(limit)
        before = _cursor_value(cursor, "id")
        if before is not None and not isinstance(before, int):
            raise Unprocessable("cursor is not valid for this list", code="invalid-cursor")
        page = await bus.handle(ListLedger(sku=sku, before_id=before, limit=n), caller)
        return s.LedgerPage(
            items=[s.LedgerEntryOut.of(e) for _, e in page.items],
            next_cursor=encode_cursor({"id": page.items[-1][0]}) if page.more else None,
        )

    @router.get("/availability", response_model=s.AvailabilityOut)
    async def get_availability(
        caller: Annotated[Caller, allowed(GetAvailability)],
        skus: Annotated[list[str], Query(min_length=1, max_length=200)],
    ) -> s.AvailabilityOut:
        """Units available now per SKU (repeat ?skus=); unknown SKUs report 0 and 'unknown'."""
        found = await bus.handle(GetAvailability(skus=tuple(skus)), caller)
        return s.AvailabilityOut(items=[s.AvailabilityItem.of(a) for a in found])

    # --- reservations --------------------------------------------------------------------------
    @router.post(
        "/reservations",
        status_code=201,
        response_model=s.ReservationOut,
        responses={201: {"description": "Held (or the existing reservation with this id)"}},
    )
    async def create_reservation(
        body: s.ReservationIn, caller: Annotated[Caller, allowed(ReserveStock)]
    ) -> s.ReservationOut:
        """Hold every line or nothing (409 with `shortages`). reservation_id is the idempotency
        key: the same id again returns the same reservation and never holds twice."""
        reserved = await bus.handle(
            ReserveStock(
                reservation_id=body.reservation_id,
                lines=tuple(Line(ln.sku, ln.quantity) for ln in body.lines),
                ttl_seconds=body.ttl_seconds,
                region=body.region,
            ),
            caller,
        )
        return s.ReservationOut.of(reserved.reservation)

    @router.get("/reservations/{reservation_id}", response_model=s.ReservationOut)
    async def get_reservation(
        reservation_id: str, caller: Annotated[Caller, allowed(GetReservation)]
    ) -> s.ReservationOut:
        """One reservation: held, committed, released or expired. Reservations carry no owner,
        so customers never see them (404, as for anything not theirs)."""
        found = await bus.handle(GetReservation(reservation_id=reservation_id), caller)
        return s.ReservationOut.of(found)

    @router.post("/reservations/{reservation_id}/commit", response_model=s.ReservationOut)
    async def commit_reservation(
        reservation_id: str, caller: Annotated[Caller, allowed(CommitReservation)]
    ) -> s.ReservationOut:
        """Units leave on-hand. Idempotent; 409 when the hold expired or was released."""
        done = await bus.handle(CommitReservation(reservation_id=reservation_id), caller)
        return s.ReservationOut.of(done)

    @router.post("/reservations/{reservation_id}/release", response_model=s.ReservationOut)
    async def release_reservation(
        reservation_id: str, caller: Annotated[Caller, allowed(ReleaseReservation)]
    ) -> s.ReservationOut:
        """Units are available again. Idempotent; 409 when already committed."""
        done = await bus.handle(ReleaseReservation(reservation_id=reservation_id), caller)
        return s.ReservationOut.of(done)

    # --- inbound orders --------------------------------------------------------------------------
    @router.post(
        "/inbound-orders",
        status_code=201,
        response_model=s.InboundOrderOut,
        responses={201: {"description": "The inbound order placed (its units are on order)"}},
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def place_inbound_order(
        body: s.InboundIn,
        key: RequiredIdempotencyKey,
        caller: Annotated[Caller, allowed(PlaceInboundOrder)],
        response: Response,
    ) -> s.InboundOrderOut:
        """Record units on their way to a warehouse (a purchase order, a transfer): they count
        as on order in the replenishment suggestions until received or cancelled."""
        outcome = await bus.execute(
            PlaceInboundOrder(
                sku=body.sku,
                warehouse=body.warehouse,
                quantity=body.quantity,
                expected_on=body.expected_on,
                reference=body.reference,
            ),
            caller,
            idempotency_key=key,
        )
        return s.InboundOrderOut.of(replayed(outcome, response))

    @router.get("/inbound-orders", response_model=s.InboundOrderPage)
    async def list_inbound_orders(
        caller: Annotated[Caller, allowed(ListInboundOrders)],
        sku: Annotated[str | None, Query(max_length=64)] = None,
        warehouse: Annotated[str | None, Query(max_length=64)] = None,
        status: InboundStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> s.InboundOrderPage:
        """Inbound orders, newest first, optionally by SKU, warehouse and status."""
        page = await bus.handle(
            ListInboundOrders(
                sku=sku,
                warehouse=warehouse,
                status=status,
                before=cursor_position(cursor),
                limit=check_limit(limit),
            ),
            caller,
        )
        return s.InboundOrderPage(
            items=[s.InboundOrderOut.of(o) for o in page.items], next_cursor=page_cursor(page)
        )

    @router.get("/inbound-orders/{inbound_id}", response_model=s.InboundOrderOut)
    async def get_inbound_order(
        inbound_id: str, caller: Annotated[Caller, allowed(GetInboundOrder)]
    ) -> s.InboundOrderOut:
        """One inbound order."""
        return s.InboundOrderOut.of(
            await bus.handle(GetInboundOrder(inbound_id=inbound_id), caller)
        )

    @router.post(
        "/inbound-orders/{inbound_id}/receipts",
        status_code=201,
        response_model=s.InboundReceiptOut,
        responses={201: {"description": "The receipt: the order after it and its ledger entry"}},
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def receive_inbound_order(
        inbound_id: str,
        body: s.InboundReceiptIn,
        key: RequiredIdempotencyKey,
        caller: Annotated[Caller, allowed(ReceiveInboundOrder)],
        response: Response,
    ) -> s.InboundReceiptOut:
        """Units of the order arrived: on hand up (a receipt in the ledger), on order down.
        409 beyond what is still expected, or when the order is not open."""
        outcome = await bus.execute(
            ReceiveInboundOrder(inbound_id=inbound_id, quantity=body.quantity),
            caller,
            idempotency_key=key,
        )
        receipt = replayed(outcome, response)
        return s.InboundReceiptOut(
            inbound_order=s.InboundOrderOut.of(receipt.inbound),
            entry=s.LedgerEntryOut.of(receipt.entry),
        )

    @router.post("/inbound-orders/{inbound_id}/cancel", response_model=s.InboundOrderOut)
    async def cancel_inbound_order(
        inbound_id: str, caller: Annotated[Caller, allowed(CancelInboundOrder)]
    ) -> s.InboundOrderOut:
        """Stop expecting the rest (units received stay on hand). Repeating it changes nothing;
        409 when the order was received in full."""
        return s.InboundOrderOut.of(
            await bus.handle(CancelInboundOrder(inbound_id=inbound_id), caller)
        )

    # --- planning --------------------------------------------------------------------------------
    @router.get("/replenishment/suggestions", response_model=s.SuggestionPage)
    async def list_replenishment_suggestions(
        caller: Annotated[Caller, allowed(ListReplenishmentSuggestions)],
        warehouse: Annotated[str | None, Query(max_length=64)] = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> s.SuggestionPage:
        """Per SKU and warehouse: forecast daily demand, safety stock, reorder point, suggested
        order quantity, days of cover, ABC class and why."""
        n = check_limit(limit)
        after = _cursor_value(cursor, "sku", "warehouse")
        page = await bus.handle(
            ListReplenishmentSuggestions(warehouse=warehouse, after=after, limit=n), caller
        )
        last = page.items[-1].suggestion if page.items else None
        return s.SuggestionPage(
            items=[s.SuggestionOut.of(v.suggestion, v.computed_at) for v in page.items],
            next_cursor=encode_cursor({"sku": last.sku, "warehouse": last.warehouse})
            if page.more and last
            else None,
        )

    @router.get("/inventory/abc", response_model=s.AbcOut)
    async def get_abc_classification(
        caller: Annotated[Caller, allowed(GetAbcClassification)],
        currency: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None,
    ) -> s.AbcOut:
        """ABC classes by revenue contribution over the configured window."""
        abc = await bus.handle(GetAbcClassification(currency=currency), caller)
        return s.AbcOut(
            currency=abc.currency,
            window_days=abc.window_days,
            a_threshold=str(abc.a_threshold),
            b_threshold=str(abc.b_threshold),
            items=[s.AbcItemOut.of(e) for e in abc.items],
        )

    @router.get("/inventory/kpis", response_model=s.KpisOut)
    async def get_inventory_kpis(
        caller: Annotated[Caller, allowed(GetInventoryKpis)],
        from_: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
        to: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
    ) -> s.KpisOut:
        """Inventory turnover, stock-out rate (share of SKU-days at zero), days of cover and
        excess stock over a date range (default: the last 30 days)."""
        kpis = await bus.handle(GetInventoryKpis(from_date=from_, to_date=to), caller)
        return s.KpisOut.of(kpis)

    return router
