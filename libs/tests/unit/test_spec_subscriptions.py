"""A ServiceSpec's subscriptions: the consumer-group name, fixed or read from the settings."""

from __future__ import annotations

from typing import Any

from pydantic_settings import SettingsConfigDict

from ecomops_platform.bus import MessageBus
from ecomops_platform.settings import CommonSettings, ServiceSettings
from ecomops_platform.spec import ServiceSpec, Subscription


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_SPEC_", extra="ignore")

    consumer_name: str = "main"


def _spec(*subscriptions: Subscription) -> ServiceSpec[DemoSettings, None]:
    return ServiceSpec(
        name="demo",
        title="demo",
        description="demo",
        settings=DemoSettings,
        unit_of_work=lambda db, service: None,  # type: ignore[arg-type,return-value]
        dependencies=lambda service, settings: None,
        handlers=[],
        subscriptions=subscriptions,
    )


def _names(spec: ServiceSpec[DemoSettings, None], **settings: Any) -> list[str]:
    service = spec.create(
        DemoSettings(database_url="postgresql+asyncpg://u:p@localhost/demo", **settings),
        CommonSettings(jwt_secret="x" * 32),
    )
    return [sub.name for sub in service._subscriptions]


def _none(bus: MessageBus[Any, Any]) -> dict[str, Any]:
    return {}


def test_a_subscription_name_is_fixed_or_read_from_the_settings() -> None:
    spec = _spec(
        Subscription(["t.v1"], _none),
        Subscription(["u.v1"], _none, name="audit"),
        Subscription(["v.v1"], _none, name=lambda s: s.consumer_name),
    )
    assert _names(spec) == ["main", "audit", "main"]
    assert _names(spec, consumer_name="itest") == ["main", "audit", "itest"]
