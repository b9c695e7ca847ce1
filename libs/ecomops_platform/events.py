"""Domain events on Kafka: CloudEvents binary-mode headers around protobuf payloads."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import symbol_database
from google.protobuf.message import DecodeError, Message

from .settings import CommonSettings
from .topics import dlq_topic

__all__ = ["dlq_topic"]


def cloudevent_headers(
    *,
    event_id: str,
    event_type: str,
    source: str,
    time: datetime,
    traceparent: str | None,
    tracestate: str | None = None,
) -> dict[str, str]:
    """The CloudEvents binary-mode headers of an event, with the W3C trace context of the
    transaction that recorded it (``traceparent``, ``tracestate``: the distributed-tracing
    extension), which the relay publishes the event in."""
    headers = {
        "ce_specversion": "1.0",
        "ce_id": event_id,
        "ce_type": event_type,
        "ce_source": source,
        "ce_time": time.astimezone(UTC).isoformat(),
        "content-type": "application/protobuf",
    }
    if traceparent:
        headers["traceparent"] = traceparent
        if tracestate:
            headers["tracestate"] = tracestate
    return headers


class PoisonMessage(Exception):
    """A message that can never be handled (undecodable, missing headers): straight to the DLQ."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A received event: its CloudEvents attributes, key and decoded payload."""

    event_id: str
    event_type: str
    source: str
    time: datetime
    key: str | None
    headers: dict[str, str]
    message: Message
    topic: str
    partition: int
    offset: int


def decode_headers(raw: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw or ():
        try:
            out[name] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            raise PoisonMessage(f"header {name!r} is not UTF-8") from None
    return out


def message_class(event_type: str) -> type[Message]:
    try:
        return symbol_database.Default().GetSymbol(event_type)
    except KeyError:
        raise PoisonMessage(f"unknown event type {event_type!r}") from None


def decode_event(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    raw_headers: Any,
) -> Envelope:
    headers = decode_headers(raw_headers)
    for required in ("ce_id", "ce_type", "ce_source", "ce_time"):
        if not headers.get(required):
            raise PoisonMessage(f"missing CloudEvents header {required}")
    cls = message_class(headers["ce_type"])
    message = cls()
    try:
        message.ParseFromString(value or b"")
    except DecodeError as exc:
        raise PoisonMessage(f"payload is not a valid {headers['ce_type']}: {exc}") from None
    try:
        when = datetime.fromisoformat(headers["ce_time"])
    except ValueError:
        raise PoisonMessage(f"ce_time {headers['ce_time']!r} is not RFC 3339") from None
    if when.tzinfo is None:
        raise PoisonMessage("ce_time has no time zone")
    return Envelope(
        event_id=headers["ce_id"],
        event_type=headers["ce_type"],
        source=headers["ce_source"],
        time=when,
        key=key.decode("utf-8", "replace") if key is not None else None,
        headers=headers,
        message=message,
        topic=topic,
        partition=partition,
        offset=offset,
    )


def kafka_client_options(settings: CommonSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context()
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def make_producer(settings: CommonSettings, client_id: str) -> Any:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=10_000,
        linger_ms=2,
        **kafka_client_options(settings),
    )
    pace_failed_metadata_updates(producer.client)
    return producer


def pace_failed_metadata_updates(client: Any) -> None:
    """Make a failed metadata update of this aiokafka client wait ``retry_backoff_ms`` before
    it reports the failure.

    With the broker down, aiokafka's sender and fetcher loops ask for a metadata update, get
    the failure at once (a refused connection takes microseconds) and ask again
    (aio-libs/aiokafka#496): measured here, each service process logged about 3,400 failed
    connections a second and burned a core while Kafka was stopped, starving the requests the
    outbox is meant to keep serving. Every such loop waits on the one metadata update in
    flight, so pacing the update paces them all; a successful update is not delayed."""
    update = client._metadata_update
    backoff = float(client._retry_backoff)

    async def paced_update(cluster_metadata: Any, topics: Any) -> bool:
        updated = bool(await update(cluster_metadata, topics))
        if not updated:
            await asyncio.sleep(backoff)
        return updated

    client._metadata_update = paced_update


async def create_topics(settings: CommonSettings, topics: list[str] | None = None) -> list[str]:
    """Create the ecomops topics that do not exist yet; returns the ones created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from .registry import all_topics

    wanted = topics or all_topics()
    admin = AIOKafkaAdminClient(request_timeout_ms=15_000, **kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=t,
                        num_partitions=settings.kafka_topic_partitions,
                        replication_factor=settings.kafka_topic_replication,
                    )
                    for t in missing
                ]
            )
        return missing
    finally:
        await admin.close()
