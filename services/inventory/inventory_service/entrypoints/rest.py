"""REST API under /v1: decode, call one handler, encode. Writes need ``ops`` (reservations also
``service``); reads any authenticated caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from ecomops_platform.auth import Caller, Role
from ecomops_platform.db import UnitOfWork
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_platform.idempotency import run_idempotent
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor
from ecomops_platform.rest import AnyCaller, require, stored_json
from ecomops_platform.strict import IDEMPOTENCY_KEY_REQUIRED, RequiredIdempotencyKey

from ..domain.models import AdjustmentReason, Line, SkuStatus
from ..service_layer import handlers as h
from ..service_layer import planning as p
from ..settings import InventorySettings
from . import schemas as s

Ops = Annotated[Caller, require(Role.OPS)]
OpsOrService = Annotated[Caller, require(Role.OPS, Role.SERVICE)]
# Business data (ledger, revenue, plans) is not for customers; stock levels and SKUs are.
Staff = Annotated[Caller, require(Role.OPS, Role.SERVICE, Role.PARTNER)]


def _cursor_value(cursor: str | None, *keys: str) -> Any:
    pos = decode_cursor(cursor)
    if pos is None:
        return None
    try:
        values = [pos[k] for k in keys]
    except KeyError:
        raise Unprocessable("cursor is not valid for this list", code="invalid-cursor") from None
    return values[0] if len(values) == 1 else tuple(values)


def build_router(uow_factory: Callable[[], UnitOfWork], settings: InventorySettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["inventory"])

    # --- SKUs ------------------------------------------------------------------------------------
    @router.put(
        "/skus/{sku}",
        response_model=s.SkuOut,
        responses={200: {"description": "Updated"}, 201: {"description": "Created"}},
    )
    async def upsert_sku(sku: str, body: s.SkuIn, caller: Ops, response: Response) -> s.SkuOut:
        """Create or update a SKU (201 on create, 200 on update); publishes SkuUpserted."""
        found, created = await h.upsert_sku(
            uow_factory(),
            h.UpsertSku(
                sku=sku,
                title=body.title,
                category=body.category,
                status=SkuStatus(body.status),
                brand=body.brand,
                attributes=body.attributes,
                lead_time_days=body.lead_time_days,
            ),
        )
        response.status_code = 201 if created else 200
        return s.SkuOut.of(found)

    @router.get("/skus/{sku}", response_model=s.SkuOut)
    async def get_sku(sku: str, caller: AnyCaller) -> s.SkuOut:
        """One SKU of the registry."""
        return s.SkuOut.of(await h.get_sku(uow_factory(), sku))

    @router.get("/skus", response_model=s.SkuPage)
    async def list_skus(
        caller: AnyCaller,
        category: Annotated[str | None, Query(max_length=100)] = None,
        status: SkuStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> s.SkuPage:
        """SKUs by id, filtered by category and status; cursor pagination."""
        n = check_limit(limit)
        items = await h.list_skus(
            uow_factory(),
            category=category,
            status=status,
            after=_cursor_value(cursor, "sku"),
            limit=n + 1,
        )
        more = len(items) > n
        items = items[:n]
        return s.SkuPage(
            items=[s.SkuOut.of(x) for x in items],
            next_cursor=encode_cursor({"sku": items[-1].sku}) if more else None,
        )

    # --- warehouses ----------------------------------------------------------------------------
    @router.put(
        "/warehouses/{code}",
        response_model=s.WarehouseOut,
        responses={200: {"description": "Updated"}, 201: {"description": "Created"}},
    )
    async def upsert_warehouse(
        code: str, body: s.WarehouseIn, caller: Ops, response: Response
    ) -> s.WarehouseOut:
        """Create or update a warehouse (lower priority is preferred; default 100)."""
        wh, created = await h.upsert_warehouse(
            uow_factory(),
            h.UpsertWarehouse(
                code=code, name=body.name, region=body.region, priority=body.priority
            ),
        )
        response.status_code = 201 if created else 200
        return s.WarehouseOut.of(wh)

    @router.get("/warehouses", response_model=s.WarehouseList)
    async def list_warehouses(caller: AnyCaller) -> s.WarehouseList:
        """Every warehouse, by priority then code."""
        return s.WarehouseList(
            items=[s.WarehouseOut.of(w) for w in await h.list_warehouses(uow_factory())]
        )

    # --- stock -----------------------------------------------------------------------------------
    @router.post(
        "/stock/adjustments",
        status_code=201,
        response_model=s.LedgerEntryOut,
        responses={201: {"description": "The ledger entry written"}},
        openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    )
    async def create_adjustment(
        body: s.AdjustmentIn, key: RequiredIdempotencyKey, caller: Ops
    ) -> JSONResponse:
        """Change on-hand stock (409 if it would go negative or below the reserved units)."""
        uow = uow_factory()

        async def action() -> tuple[int, Any]:
            entry = await h.adjust_stock(
                uow,
                h.AdjustStock(
                    sku=body.sku,
                    warehouse=body.warehouse,
                    delta=body.delta,
                    reason=AdjustmentReason(body.reason),
                    reference=body.reference,
                ),
            )
            return 201, s.LedgerEntryOut.of(entry).model_dump(mode="json")

        stored = await run_idempotent(
            uow,
            caller=caller.subject,
            operation="create_adjustment",
            key=key,
            payload=body.model_dump(mode="json"),
            action=action,
        )
        return stored_json(stored.status_code, stored.body, replayed=stored.replayed)

    @router.get("/stock/{sku}", response_model=s.StockOut)
    async def get_stock(sku: str, caller: AnyCaller) -> s.StockOut:
        """Stock of a SKU: totals and per warehouse."""
        return s.StockOut.of(await h.get_stock(uow_factory(), sku))

    @router.get("/stock/{sku}/ledger", response_model=s.LedgerPage)
    async def list_ledger(
        sku: str, caller: Staff, limit: int | None = None, cursor: str | None = None
    ) -> s.LedgerPage:
        """The append-only stock movements of a SKU, newest first; they sum to on_hand."""
        n = check_limit(limit)
        before = _cursor_value(cursor, "id")
        if before is not None and not isinstance(before, int):
            raise Unprocessable("cursor is not valid for this list", code="invalid-cursor")
        rows = await h.list_ledger(uow_factory(), sku, before, n + 1)
        more = len(rows) > n
        rows = rows[:n]
        return s.LedgerPage(
            items=[s.LedgerEntryOut.of(e) for _, e in rows],
            next_cursor=encode_cursor({"id": rows[-1][0]}) if more else None,
        )

    @router.get("/availability", response_model=s.AvailabilityOut)
    async def get_availability(
        caller: AnyCaller, skus: Annotated[list[str], Query(min_length=1, max_length=200)]
    ) -> s.AvailabilityOut:
        """Units available now per SKU (repeat ?skus=); unknown SKUs report 0 and 'unknown'."""
        found = await h.get_availability(uow_factory(), skus)
        return s.AvailabilityOut(items=[s.AvailabilityItem.of(a) for a in found])

    # --- reservations --------------------------------------------------------------------------
    @router.post(
        "/reservations",
        status_code=201,
        response_model=s.ReservationOut,
        responses={201: {"description": "Held (or the existing reservation with this id)"}},
    )
    async def create_reservation(body: s.ReservationIn, caller: OpsOrService) -> s.ReservationOut:
        """Hold every line or nothing (409 with `shortages`). reservation_id is the idempotency
        key: the same id again returns the same reservation and never holds twice."""
        reservation, _ = await h.reserve_stock(
            uow_factory(),
            settings,
            h.ReserveStock(
                reservation_id=body.reservation_id,
                lines=[Line(ln.sku, ln.quantity) for ln in body.lines],
                ttl_seconds=body.ttl_seconds,
                region=body.region,
            ),
        )
        return s.ReservationOut.of(reservation)

    @router.get("/reservations/{reservation_id}", response_model=s.ReservationOut)
    async def get_reservation(reservation_id: str, caller: AnyCaller) -> s.ReservationOut:
        """One reservation: held, committed, released or expired. Reservations carry no owner,
        so customers never see them (404, as for anything not theirs)."""
        if caller.is_customer:
            raise NotFound(f"reservation {reservation_id} not found")
        return s.ReservationOut.of(await h.get_reservation(uow_factory(), reservation_id))

    @router.post("/reservations/{reservation_id}/commit", response_model=s.ReservationOut)
    async def commit_reservation(reservation_id: str, caller: OpsOrService) -> s.ReservationOut:
        """Units leave on-hand. Idempotent; 409 when the hold expired or was released."""
        return s.ReservationOut.of(await h.commit_reservation(uow_factory(), reservation_id))

    @router.post("/reservations/{reservation_id}/release", response_model=s.ReservationOut)
    async def release_reservation(reservation_id: str, caller: OpsOrService) -> s.ReservationOut:
        """Units are available again. Idempotent; 409 when already committed."""
        return s.ReservationOut.of(await h.release_reservation(uow_factory(), reservation_id))

    # --- planning --------------------------------------------------------------------------------
    @router.get("/replenishment/suggestions", response_model=s.SuggestionPage)
    async def list_replenishment_suggestions(
        caller: Staff,
        warehouse: Annotated[str | None, Query(max_length=64)] = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> s.SuggestionPage:
        """Per SKU and warehouse: forecast daily demand, safety stock, reorder point, suggested
        order quantity, days of cover, ABC class and why."""
        n = check_limit(limit)
        after = _cursor_value(cursor, "sku", "warehouse")
        views = await p.replenishment_suggestions(
            uow_factory(), settings, warehouse=warehouse, after=after, limit=n + 1
        )
        more = len(views) > n
        views = views[:n]
        last = views[-1].suggestion if views else None
        return s.SuggestionPage(
            items=[s.SuggestionOut.of(v.suggestion, v.computed_at) for v in views],
            next_cursor=encode_cursor({"sku": last.sku, "warehouse": last.warehouse})
            if more and last
            else None,
        )

    @router.get("/inventory/abc", response_model=s.AbcOut)
    async def get_abc_classification(
        caller: Staff, currency: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None
    ) -> s.AbcOut:
        """ABC classes by revenue contribution over the configured window."""
        entries = await p.abc_classes(uow_factory(), settings, currency)
        return s.AbcOut(
            currency=currency or settings.abc_currency,
            window_days=settings.abc_window_days,
            a_threshold=str(settings.abc_a_threshold),
            b_threshold=str(settings.abc_b_threshold),
            items=[s.AbcItemOut.of(e) for e in entries],
        )

    @router.get("/inventory/kpis", response_model=s.KpisOut)
    async def get_inventory_kpis(
        caller: Staff,
        from_: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
        to: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
    ) -> s.KpisOut:
        """Inventory turnover, stock-out rate (share of SKU-days at zero), days of cover and
        excess stock over a date range (default: the last 30 days)."""
        from_d, to_d = p.parse_range(from_, to)
        return s.KpisOut.of(await p.kpis(uow_factory(), settings, from_d, to_d))

    return router
