"""The pricing handlers through the bus on the in-memory unit of work: price book, promotions,
quotes and checkout, signals (no PostgreSQL, no Kafka)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ecomops.pricing.v1 import events_pb2
from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Conflict, Forbidden, NotFound, Unprocessable
from pricing_service.domain.models import PriceTerms, PromotionKind
from pricing_service.domain.records import CONFIRMED, RELEASED
from pricing_service.service_layer.price_book import GetPrice, GetPriceHistory, SetPrice
from pricing_service.service_layer.promotions import (
    ConfirmRedemptions,
    CreatePromotion,
    DeactivatePromotion,
    SweepUnconfirmedRedemptions,
    UpdatePromotion,
)
from pricing_service.service_layer.quotes import (
    CreateQuote,
    CreateQuoteByRpc,
    CreateQuoteUnkeyed,
    GetQuote,
    QuoteExpired,
    QuoteLine,
    RedeemQuote,
    ReleaseRedemption,
)
from pricing_service.service_layer.signals import (
    ListSuggestions,
    RecordSku,
    RecordStock,
    SetCompetitorPrice,
)

from .fakes import Clock, FakePricingUnitOfWork, build_bus

OPS = Caller("pm-1", Role.OPS)
ORDER = Caller("service:order", Role.SERVICE)
ANNA = Caller("anna", Role.CUSTOMER)


@pytest.fixture
def uow() -> FakePricingUnitOfWork:
    return FakePricingUnitOfWork()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bus(uow: FakePricingUnitOfWork, clock: Clock):  # type: ignore[no-untyped-def]
    bus = build_bus(uow, clock)
    for sku in ("shoe", "sock"):
        await bus.handle(
            RecordSku(sku=sku, title=sku, category="wear", status="active", at=clock.now),
            bus.system,
        )
    return bus


def terms(price: int, cost: int) -> PriceTerms:
    return PriceTerms(
        list_price_minor=price,
        unit_cost_minor=cost,
        commission_rate=Decimal("0.05"),
        marketing_cost_rate=Decimal("0.05"),
    )


def percent_off(clock: Clock, rate: str, **extra: object) -> CreatePromotion:
    fields: dict[str, object] = {
        "name": f"{rate} off",
        "kind": PromotionKind.PERCENT,
        "percent": Decimal(rate),
        "skus": ("shoe",),
        "starts_at": clock.now - timedelta(hours=1),
        "ends_at": clock.now + timedelta(days=1),
        "stackable": True,
        **extra,
    }
    return CreatePromotion(**fields)  # type: ignore[arg-type]


# --- price book -------------------------------------------------------------------------------


async def test_set_price_records_history_and_one_event(bus, uow) -> None:  # type: ignore[no-untyped-def]
    price = await bus.handle(SetPrice(sku="shoe", currency="eur", terms=terms(10000, 3000)), OPS)
    assert (price.currency, price.gross_margin, price.updated_by) == ("EUR", "0.6000", "pm-1")
    again = await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    assert again.updated_at == price.updated_at  # the same price: nothing changes
    changed = uow.events_of(events_pb2.PriceChanged)
    assert len(changed) == 1 and changed[0].list_price_minor == 10000
    history = await bus.handle(GetPriceHistory(sku="shoe", currency="EUR", limit=10), OPS)
    assert [c.list_price_minor for c in history.changes] == [10000]
    assert history.lowest_price_30d_minor == 10000


async def test_price_of_an_unknown_sku_or_under_the_floor_is_refused(bus, uow) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unprocessable) as unknown:
        await bus.handle(SetPrice(sku="hat", currency="EUR", terms=terms(1000, 100)), OPS)
    assert unknown.value.code == "unknown-sku"
    with pytest.raises(Unprocessable) as low:
        await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(1000, 900)), OPS)
    assert low.value.code == "margin-below-floor"
    assert uow.state.prices == {} and uow.events == []
    with pytest.raises(Forbidden):
        await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(1000, 100)), ANNA)


async def test_costs_are_shown_to_ops_only(bus) -> None:  # type: ignore[no-untyped-def]
    await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    seen = await bus.handle(GetPrice(sku="shoe", currency="EUR"), ANNA)
    assert seen.list_price_minor == 10000
    assert seen.unit_cost_minor is None and seen.gross_margin is None and seen.updated_by is None
    full = await bus.handle(GetPrice(sku="shoe", currency="EUR"), OPS)
    assert full.unit_cost_minor == 3000 and full.margin_floor == "0.3000"
    with pytest.raises(NotFound):
        await bus.handle(GetPrice(sku="shoe", currency="USD"), OPS)


async def test_a_new_cost_may_not_sell_under_the_floor_through_a_live_promotion(
    bus,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    await bus.handle(percent_off(clock, "0.20"), OPS, idempotency_key="k1")
    with pytest.raises(Unprocessable) as refused:
        await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 5500)), OPS)
    assert refused.value.code == "margin-below-floor"


# --- promotions -------------------------------------------------------------------------------


async def test_promotion_margin_guard_idempotency_and_coupon_codes(bus, uow, clock) -> None:  # type: ignore[no-untyped-def]
    await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    with pytest.raises(Unprocessable) as deep:
        await bus.handle(percent_off(clock, "0.60"), OPS, idempotency_key="deep")
    assert deep.value.code == "margin-below-floor"
    command = percent_off(clock, "0.10", coupon_code="save10")
    first = await bus.execute(command, OPS, idempotency_key="k")
    replay = await bus.execute(command, OPS, idempotency_key="k")
    assert replay.replayed and replay.result == first.result
    assert first.result.coupon_code == "SAVE10" and first.result.value == "0.10"
    assert len(uow.state.promotions) == 1
    with pytest.raises(Conflict) as taken:
        await bus.handle(percent_off(clock, "0.05", coupon_code="SAVE10"), OPS, idempotency_key="x")
    assert taken.value.code == "coupon-code-taken"


async def test_update_reads_value_by_kind_and_deactivation_is_final(bus, clock) -> None:  # type: ignore[no-untyped-def]
    await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    created = await bus.handle(percent_off(clock, "0.10"), OPS, idempotency_key="k")
    pid = created.promotion_id
    with pytest.raises(Unprocessable):
        await bus.handle(UpdatePromotion(promotion_id=pid, changes={}, value=500), OPS)
    updated = await bus.handle(
        UpdatePromotion(promotion_id=pid, changes={"name": "fifteen"}, value=Decimal("0.15")), OPS
    )
    assert (updated.name, updated.value) == ("fifteen", "0.15")
    with pytest.raises(Unprocessable):
        await bus.handle(UpdatePromotion(promotion_id=pid, changes={"name": None}), OPS)
    gone = await bus.handle(DeactivatePromotion(promotion_id=pid), OPS)
    assert not gone.active
    with pytest.raises(Conflict):
        await bus.handle(UpdatePromotion(promotion_id=pid, changes={"name": "x"}), OPS)


# --- quotes and checkout ----------------------------------------------------------------------


async def priced_with_coupon(bus, clock, **extra: object) -> str:  # type: ignore[no-untyped-def]
    await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    await bus.handle(SetPrice(sku="sock", currency="EUR", terms=terms(1000, 200)), OPS)
    created = await bus.handle(
        percent_off(clock, "0.10", coupon_code="TEN", **extra), OPS, idempotency_key="c"
    )
    promotion_id: str = created.promotion_id
    return promotion_id


async def test_quote_applies_the_coupon_and_customers_quote_for_themselves(bus, clock) -> None:  # type: ignore[no-untyped-def]
    await priced_with_coupon(bus, clock)
    lines = (QuoteLine("shoe", 2), QuoteLine("sock", 1))
    quote = await bus.handle(
        CreateQuote(currency="EUR", lines=lines, coupon_codes=("ten",)), ANNA, idempotency_key="q"
    )
    assert quote.customer_id == "anna"  # filled in for the customer
    assert (quote.subtotal_minor, quote.discount_total_minor, quote.total_minor) == (
        21000,
        2000,
        19000,
    )
    with pytest.raises(Forbidden, match="only ask quotes for themselves"):
        await bus.handle(
            CreateQuote(customer_id="bob", currency="EUR", lines=lines), ANNA, idempotency_key="b"
        )
    with pytest.raises(Unprocessable) as bad:
        await bus.handle(
            CreateQuote(currency="EUR", lines=lines, coupon_codes=("NOPE",)),
            ANNA,
            idempotency_key="n",
        )
    assert bad.value.code == "invalid-coupon"


async def test_quote_visibility_and_expiry(bus, clock) -> None:  # type: ignore[no-untyped-def]
    await priced_with_coupon(bus, clock)
    quote = await bus.handle(
        CreateQuote(currency="EUR", lines=(QuoteLine("shoe", 1),)), ANNA, idempotency_key="q"
    )
    assert (await bus.handle(GetQuote(quote_id=quote.quote_id), ORDER)) == quote
    with pytest.raises(NotFound):
        await bus.handle(GetQuote(quote_id=quote.quote_id), Caller("bob", Role.CUSTOMER))
    with pytest.raises(Forbidden):
        await bus.handle(GetQuote(quote_id=quote.quote_id), Caller("p", Role.PARTNER))
    clock.now += timedelta(hours=1)
    with pytest.raises(QuoteExpired) as expired:
        await bus.handle(GetQuote(quote_id=quote.quote_id), ANNA)
    assert expired.value.status == 410


async def test_redeem_takes_uses_once_and_release_gives_them_back_once(bus, uow, clock) -> None:  # type: ignore[no-untyped-def]
    promotion_id = await priced_with_coupon(bus, clock, usage_limit=1)
    lines = (QuoteLine("shoe", 1),)
    first = await bus.handle(
        CreateQuote(currency="EUR", lines=lines, coupon_codes=("TEN",)), ANNA, idempotency_key="1"
    )
    second = await bus.handle(
        CreateQuote(currency="EUR", lines=lines, coupon_codes=("TEN",)), ANNA, idempotency_key="2"
    )
    redeemed = await bus.handle(RedeemQuote(quote_id=first.quote_id, order_id="o-1"), ORDER)
    assert [r.state for r in redeemed.redemptions] == ["redeemed"] and not redeemed.replayed
    again = await bus.handle(RedeemQuote(quote_id=first.quote_id, order_id="o-1"), ORDER)
    assert again.replayed
    with pytest.raises(Conflict) as exhausted:
        await bus.handle(RedeemQuote(quote_id=second.quote_id, order_id="o-2"), ORDER)
    assert exhausted.value.code == "coupon-unavailable"
    assert uow.state.promotions[promotion_id].used == 1
    released = await bus.handle(ReleaseRedemption(order_id="o-1"), ORDER)
    twice = await bus.handle(ReleaseRedemption(order_id="o-1"), ORDER)
    assert (released.released_count, twice.released_count) == (1, 0)
    assert uow.state.promotions[promotion_id].used == 0
    states = [e.state for e in uow.events_of(events_pb2.CouponRedemptionChanged)]
    assert states == ["redeemed", "returned"]
    with pytest.raises(Forbidden):
        await bus.handle(ReleaseRedemption(order_id="o-1"), ANNA)


async def test_the_sweep_gives_back_only_unconfirmed_uses(bus, uow, clock) -> None:  # type: ignore[no-untyped-def]
    promotion_id = await priced_with_coupon(bus, clock)
    for order_id in ("placed", "lost"):
        q = await bus.handle(
            CreateQuote(currency="EUR", lines=(QuoteLine("shoe", 1),), coupon_codes=("TEN",)),
            ANNA,
            idempotency_key=order_id,
        )
        await bus.handle(RedeemQuote(quote_id=q.quote_id, order_id=order_id), ORDER)
    # An order placed without coupon codes has no uses to confirm: nothing is read or written.
    assert await bus.handle(ConfirmRedemptions(order_id="placed"), bus.system) == 0
    assert CONFIRMED not in {r.state for r in uow.state.redemptions}
    confirm = ConfirmRedemptions(order_id="placed", coupon_codes=("TEN",))
    assert await bus.handle(confirm, bus.system) == 1
    clock.now += timedelta(seconds=bus.deps.settings.redemption_confirm_window_seconds + 1)
    assert await bus.handle(SweepUnconfirmedRedemptions(), bus.system) == 1
    assert await bus.handle(SweepUnconfirmedRedemptions(), bus.system) == 0
    states = {r.order_id: r.state for r in uow.state.redemptions}
    assert states == {"placed": CONFIRMED, "lost": RELEASED}
    assert uow.state.promotions[promotion_id].used == 1


# --- signals ----------------------------------------------------------------------------------


async def test_competitor_prices_and_suggestions(bus, clock) -> None:  # type: ignore[no-untyped-def]
    await bus.handle(SetPrice(sku="shoe", currency="EUR", terms=terms(10000, 3000)), OPS)
    with pytest.raises(Unprocessable) as unknown:
        await bus.handle(
            SetCompetitorPrice(
                sku="hat",
                competitor="rival",
                currency="EUR",
                price_minor=9000,
                observed_at=clock.now,
            ),
            OPS,
        )
    assert unknown.value.code == "unknown-sku"
    seen = await bus.handle(
        SetCompetitorPrice(
            sku="shoe",
            competitor=" rival ",
            currency="EUR",
            price_minor=9000,
            observed_at=clock.now,
        ),
        Caller("feed", Role.PARTNER),
    )
    assert (seen.competitor, seen.recorded_by) == ("rival", "feed")
    await bus.handle(
        RecordStock(sku="shoe", available=7, on_hand=7, reserved=0, at=clock.now), bus.system
    )
    page = await bus.handle(ListSuggestions(limit=10), OPS)
    [item] = page.items
    assert (item.sku, item.stock_available, item.competitor_min_price_minor) == ("shoe", 7, 9000)
    assert item.suggested_price_minor >= item.floor_price_minor


async def test_grpc_creates_keep_their_own_key_namespace_and_may_go_without_a_key(
    bus,
    uow,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    await priced_with_coupon(bus, clock)
    fields = {"currency": "EUR", "lines": (QuoteLine("shoe", 1),)}
    rest = await bus.execute(CreateQuote(**fields), ORDER, idempotency_key="same")  # type: ignore[arg-type]
    rpc = await bus.execute(CreateQuoteByRpc(**fields), ORDER, idempotency_key="same")  # type: ignore[arg-type]
    again = await bus.execute(CreateQuoteByRpc(**fields), ORDER, idempotency_key="same")  # type: ignore[arg-type]
    assert not rest.replayed and not rpc.replayed and again.replayed
    assert rest.result.quote_id != rpc.result.quote_id == again.result.quote_id
    unkeyed = [await bus.handle(CreateQuoteUnkeyed(**fields), ORDER) for _ in range(2)]  # type: ignore[arg-type]
    assert unkeyed[0].quote_id != unkeyed[1].quote_id
    assert len(uow.state.quotes) == 4
