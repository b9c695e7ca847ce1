"""Topic names, derived from the contracts: a service's events travel on the topic named after
the protobuf package of its ``events.proto`` (``ecomops.order.v1``), so a topic is never typed by
hand and a new major version of the contract gets a new topic."""

from __future__ import annotations

from types import ModuleType


def topic_of(events_module: ModuleType) -> str:
    """The topic of a generated ``events_pb2`` module: ``topic_of(order_events)`` is
    ``"ecomops.order.v1"``."""
    package: str = events_module.DESCRIPTOR.package
    return package


def service_topic(service: str) -> str:
    """The topic a service publishes on (its outbox's default)."""
    return f"ecomops.{service}.v1"


#: Storefront behaviour (views, carts, searches): kept apart from the services' domain events.
BEHAVIOR_TOPIC = "ecomops.behavior.v1"


def dlq_topic(topic: str) -> str:
    """Where a consumer parks what it could not apply (``<topic>.dlq``)."""
    return f"{topic}.dlq"
