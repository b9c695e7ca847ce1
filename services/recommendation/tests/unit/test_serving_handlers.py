"""Serving on fakes: what comes back, in which order, with which reason, for whom."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecomops_platform.auth import Caller, Role
from ecomops_platform.errors import Forbidden, NotFound
from recommendation_service.domain.models import BehaviorEvent, BehaviorType, ModelParams
from recommendation_service.domain.personal import Mode, PersonalParams
from recommendation_service.service_layer import evaluation
from recommendation_service.service_layer.learning import (
    LearnFromBehavior,
    LearnFromPaidOrder,
    OrderLine,
    UpdateCatalogItem,
    UpdateStockLevel,
)
from recommendation_service.service_layer.serving import (
    GetBoughtTogether,
    GetCustomerRecommendations,
    GetSimilarItems,
    GetTrending,
)
from recommendation_service.service_layer.views import RecommendedItem

from .fakes import NOW, Bus, FakeRecommendationUnitOfWork, make_bus

OPS = Caller("ops-1", Role.OPS)
PARTNER = Caller("p-1", Role.PARTNER)


@pytest.fixture
def uow() -> FakeRecommendationUnitOfWork:
    return FakeRecommendationUnitOfWork()


@pytest.fixture
def bus(uow: FakeRecommendationUnitOfWork) -> Bus:
    return make_bus(uow)


async def item(
    bus: Bus, sku: str, category: str = "kitchen", *, available: int = 5, status: str = "active"
) -> None:
    await bus.handle(
        UpdateCatalogItem(
            sku=sku,
            title=f"Item {sku}",
            category=category,
            brand="",
            status=status,
            updated_at=NOW - timedelta(days=10),
        ),
        bus.system,
    )
    await bus.handle(
        UpdateStockLevel(sku=sku, available=available, occurred_at=NOW - timedelta(days=10)),
        bus.system,
    )


async def pay(bus: Bus, order_id: str, customer: str, *skus: str, days_ago: float = 1) -> None:
    await bus.handle(
        LearnFromPaidOrder(
            event_id=f"ev-{order_id}",
            order_id=order_id,
            customer_id=customer,
            currency="EUR",
            total_minor=1000,
            paid_at=NOW - timedelta(days=days_ago),
            lines=tuple(OrderLine(s, 1) for s in skus),
            sent_at=NOW,
        ),
        bus.system,
    )


async def view(
    bus: Bus,
    n: int,
    sku: str,
    *,
    customer: str | None = None,
    session: str | None = None,
    minutes_ago: float = 1,
    kind: BehaviorType = BehaviorType.VIEW,
) -> None:
    await bus.handle(
        LearnFromBehavior(
            event_id=f"v-{n}",
            event=BehaviorEvent(
                type=kind,
                sku=sku,
                customer_id=customer,
                session_id=session,
                occurred_at=NOW - timedelta(minutes=minutes_ago),
            ),
            sent_at=NOW,
        ),
        bus.system,
    )


def skus(items: tuple[RecommendedItem, ...]) -> list[str]:
    return [i.sku for i in items]


async def test_bought_together_ranks_by_jaccard_and_skips_what_cannot_be_sold(bus: Bus) -> None:
    for sku in ("a", "b", "c"):
        await item(bus, sku)
    await item(bus, "empty", available=0)
    await item(bus, "gone", status="discontinued")
    await pay(bus, "o-1", "c1", "a", "b", "empty", "gone", "unknown")
    await pay(bus, "o-2", "c2", "a", "b")
    await pay(bus, "o-3", "c3", "a", "c")
    result = await bus.handle(GetBoughtTogether(sku="a", limit=10), PARTNER)
    assert skus(result.items) == ["b", "c"]
    assert result.items[0].reason == "often bought with Item a"
    assert result.items[0].score > result.items[1].score > 0
    assert skus((await bus.handle(GetBoughtTogether(sku="a", limit=1), OPS)).items) == ["b"]
    assert (await bus.handle(GetBoughtTogether(sku="nobody-bought", limit=5), OPS)).items == ()


async def test_similar_items_then_popular_in_the_same_category(bus: Bus) -> None:
    for sku in ("a", "b", "c"):
        await item(bus, sku)
    await item(bus, "other", category="garden")
    await view(bus, 1, "a", session="s-1", minutes_ago=3)
    await view(bus, 2, "b", session="s-1", minutes_ago=2)
    await view(bus, 3, "c", session="s-2")  # popular in kitchen, never with a
    await view(bus, 4, "other", session="s-3")
    result = await bus.handle(GetSimilarItems(sku="a", limit=3), PARTNER)
    assert skus(result.items) == ["b", "c"]
    similar, fallback = result.items
    assert similar.reason == "often viewed with Item a"
    assert fallback.reason == "popular in kitchen, like Item a"
    assert fallback.score == round(similar.score * 0.9, 9)


async def test_trending_overall_or_in_a_category_with_decayed_scores(bus: Bus) -> None:
    await item(bus, "hot")
    await item(bus, "warm")
    await item(bus, "out", available=0)
    await item(bus, "elsewhere", category="garden")
    for n in range(3):
        await view(bus, n, "hot", session=f"s-{n}")
    await view(
        bus, 10, "warm", session="s-9", kind=BehaviorType.ADD_TO_CART, minutes_ago=60 * 24 * 4
    )
    for n in range(5):
        await view(bus, 20 + n, "out", session=f"t-{n}")
    await view(bus, 30, "elsewhere", session="g")
    kitchen = await bus.handle(GetTrending(category="kitchen", limit=10), PARTNER)
    assert skus(kitchen.items) == ["hot", "warm"]
    hot, warm = kitchen.items
    assert hot.reason == "trending in kitchen"
    # three views a minute ago weigh ~3; a cart four days ago (half-life 2 days) 3/4
    assert hot.score == pytest.approx(3.0, rel=1e-3)
    assert warm.score == pytest.approx(0.75, rel=1e-3)
    overall = await bus.handle(GetTrending(limit=10), PARTNER)
    assert skus(overall.items) == ["hot", "elsewhere", "warm"]


async def test_a_customer_gets_personalised_items_then_trending(bus: Bus) -> None:
    for sku in ("a", "b", "c", "d"):
        await item(bus, sku)
    await item(bus, "z", category="garden")
    await pay(bus, "o-1", "other", "a", "b")  # someone else bought a with b
    await view(bus, 1, "c", session="s-x")  # c and z are popular
    await view(bus, 2, "z", session="s-y")
    await view(bus, 3, "z", session="s-z")
    await view(bus, 4, "a", customer="alice")  # alice viewed a
    alice = Caller("alice", Role.CUSTOMER)
    result = await bus.handle(GetCustomerRecommendations(customer_id="alice", limit=4), alice)
    assert skus(result.items) == ["b", "a", "c", "z"]
    assert result.items[0].reason == "similar to Item a, which you viewed"
    # then trending in alice's categories (a, viewed but not bought, may come back), then overall
    assert [i.reason for i in result.items[1:]] == [
        "trending in kitchen",
        "trending in kitchen",
        "trending in garden",
    ]
    scores = [i.score for i in result.items]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


async def test_customers_buy_again_with_a_reason_and_discover_the_rest(bus: Bus) -> None:
    for sku in ("a", "b", "c", "d"):
        await item(bus, sku)
    await item(bus, "gone", available=0)
    await pay(bus, "o-1", "other", "a", "b")
    await pay(bus, "o-2", "other", "a", "c")
    await pay(bus, "o-3", "alice", "a", "b", "gone", days_ago=29)
    await pay(bus, "o-4", "alice", "a", days_ago=15)
    await pay(bus, "o-5", "alice", "a", days_ago=1)
    result = await bus.handle(GetCustomerRecommendations(customer_id="alice", limit=5), OPS)
    # buy again first (a every 2 weeks, b once), out-of-stock "gone" never; then c, bought
    # with a; then trending
    assert skus(result.items)[:3] == ["a", "b", "c"]
    assert "gone" not in skus(result.items)
    assert [i.reason for i in result.items[:3]] == [
        "you buy this about every 2 weeks",
        "you bought this before",
        "goes well with Item a, which you buy",
    ]
    new = await bus.handle(
        GetCustomerRecommendations(customer_id="alice", limit=5, mode=Mode.DISCOVER), OPS
    )
    assert skus(new.items)[0] == "c"
    assert {"a", "b", "gone"}.isdisjoint(skus(new.items))


async def test_the_handler_answers_what_the_offline_evaluation_writes(bus: Bus) -> None:
    """The API and ``ecomops recommendation evaluate --output`` run the same code."""
    baskets = {
        "o-1": ("other", "a b c", 40),
        "o-2": ("other", "a c d", 30),
        "o-3": ("bob", "b d", 25),
        "o-4": ("alice", "a b", 20),
        "o-5": ("alice", "a e", 10),
        "o-6": ("alice", "a b", 3),
    }
    for sku in "abcde":
        await bus.handle(
            UpdateCatalogItem(
                sku=sku,
                title=sku,
                category="",
                brand="",
                status="active",
                updated_at=NOW - timedelta(days=50),
            ),
            bus.system,
        )
        await bus.handle(
            UpdateStockLevel(sku=sku, available=5, occurred_at=NOW - timedelta(days=50)),
            bus.system,
        )
    orders = []
    for order_id, (customer, line, days) in baskets.items():
        await pay(bus, order_id, customer, *line.split(), days_ago=days)
        orders.append(
            evaluation.Order(customer, order_id, NOW - timedelta(days=days), tuple(line.split()))
        )
    model = evaluation.train(orders, ModelParams())
    past = [o for o in orders if o.customer_id == "alice"]
    for mode in Mode:
        api = await bus.handle(
            GetCustomerRecommendations(customer_id="alice", limit=4, mode=mode), OPS
        )
        offline = evaluation.served(
            model,
            "alice",
            past,
            NOW,
            mode=mode,
            limit=4,
            params=PersonalParams(),
            popular=model.top_popular(10),
        )
        assert [(i.sku, i.reason) for i in api.items] == [(i.sku, i.reason) for i in offline]
        assert [i.score for i in api.items] == pytest.approx([i.score for i in offline])


async def test_customers_see_only_their_own_recommendations(bus: Bus) -> None:
    alice = Caller("alice", Role.CUSTOMER)
    with pytest.raises(NotFound, match="customer bob not found"):
        await bus.handle(GetCustomerRecommendations(customer_id="bob"), alice)
    with pytest.raises(Forbidden):
        await bus.handle(GetCustomerRecommendations(customer_id="bob"), PARTNER)
    assert (await bus.handle(GetCustomerRecommendations(customer_id="alice"), alice)).items == ()
