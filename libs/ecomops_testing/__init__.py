"""Test support shared by every suite: the test stack's settings, tokens, one Kafka reader,
``eventually``, and (``ecomops_testing.fakes``) the in-memory unit of work for handler tests.

A test-only package: it is not in the wheel or the image. Its pytest fixtures are in
``ecomops_testing.plugin`` (loaded by the root conftest). Integration tests run against the real
PostgreSQL and Kafka of the test stack that ``make test`` starts (``.local/test/env``); they fail
loudly, never skip, when it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ecomops_platform.auth import Role, mint_token
from ecomops_platform.events import Envelope, decode_event, kafka_client_options
from ecomops_platform.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
TEST_ENV_FILE = ROOT / ".local" / "test" / "env"


def load_test_env() -> None:
    """Make the test stack's settings visible (``make test`` exports them already)."""
    if os.environ.get("ECOMOPS_KAFKA_BOOTSTRAP") and os.environ.get("ECOMOPS_JWT_SECRET"):
        return
    if not TEST_ENV_FILE.exists():
        raise RuntimeError(
            "integration tests need the test stack: run 'make test', or "
            "'bash deploy/local/stack.sh up test' and export .local/test/env"
        )
    for line in TEST_ENV_FILE.read_text().splitlines():
        line = line.strip().removeprefix("export ")
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            os.environ[name.strip()] = value.strip().strip("'\"")
    os.environ.setdefault("ECOMOPS_ENV", "test")


def unique(prefix: str) -> str:
    """An id no other test uses: tests own their data."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(subject: str, role: Role | str, *, ttl: int = 600, **overrides: Any) -> str:
    secret = overrides.pop("secret", None) or os.environ["ECOMOPS_JWT_SECRET"]
    return mint_token(secret, subject, role, ttl_seconds=ttl, **overrides)


def bearer(subject: str, role: Role | str) -> dict[str, str]:
    """The Authorization header of a fresh token (the one token helper of every suite)."""
    return {"Authorization": f"Bearer {token(subject, role)}"}


class FreshHeaders(Mapping[str, str]):
    """Headers minted when they are read, not when they are defined: a module-level
    ``OPS = FreshHeaders(ops)`` neither needs the stack's secret at import (``make unit``
    collects integration modules too) nor holds a token that expires during a long run."""

    def __init__(self, make: Callable[[], dict[str, str]]) -> None:
        self._make = make

    def __getitem__(self, name: str) -> str:
        return self._make()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._make())

    def __len__(self) -> int:
        return len(self._make())

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**self._make(), **other}

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**other, **self._make()}


def ops(subject: str = "ops-1") -> dict[str, str]:
    return bearer(subject, Role.OPS)


def customer(subject: str) -> dict[str, str]:
    return bearer(subject, Role.CUSTOMER)


def service_caller(subject: str = "ecomops-test") -> dict[str, str]:
    return bearer(subject, Role.SERVICE)


def idempotency_key() -> dict[str, str]:
    """A fresh ``Idempotency-Key`` header."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def _decode(msg: Any) -> Envelope | None:
    try:
        return decode_event(
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            raw_headers=msg.headers,
        )
    except Exception:  # undecodable records are not what tests assert on
        return None


def _is(event: Envelope, event_type: str) -> bool:
    """``event_type`` is a full protobuf name or its short name (``OrderPaid``)."""
    return event.event_type == event_type or event.event_type.endswith("." + event_type)


async def ensure_topics(topics: list[str]) -> None:
    """Create these topics unless they exist (one partition, one replica: the test stacks'
    single broker, whose own default for auto-created topics is the same)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**kafka_client_options(CommonSettings()))
    await admin.start()
    try:
        for topic in topics:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


class KafkaProbe:
    """The one Kafka reader of the tests: collects the events published on ``topics`` after
    :meth:`start` (its start position is pinned at the topics' end before the test acts)."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self.events: list[Envelope] = []
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> KafkaProbe:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self._consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, **kafka_client_options(CommonSettings())
        )
        await self._consumer.start()
        meta = await self._consumer._client.fetch_all_metadata()
        missing = [t for t in self.topics if not meta.partitions_for_topic(t)]
        if missing:
            # A topic the broker would only create on the first send: create it now, or the
            # probe (pinned at the end of what exists) would never see its first events.
            await ensure_topics(missing)
            deadline = asyncio.get_running_loop().time() + 15
            while any(not meta.partitions_for_topic(t) for t in missing):
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"topics {missing} did not appear within 15 s")
                await asyncio.sleep(0.2)
                meta = await self._consumer._client.fetch_all_metadata()
        parts = [
            TopicPartition(t, p) for t in self.topics for p in meta.partitions_for_topic(t) or ()
        ]
        self._consumer.assign(parts)
        ends = await self._consumer.end_offsets(parts)
        for tp in parts:
            self._consumer.seek(tp, ends[tp])
        self._task = asyncio.create_task(self._collect())
        return self

    def partitions(self, topic: str) -> set[int]:
        """The partitions of ``topic`` the probe reads (all of them)."""
        return {tp.partition for tp in self._consumer.assignment() if tp.topic == topic}

    async def _collect(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=300, max_records=5000)
            for messages in batch.values():
                for msg in messages:
                    event = _decode(msg)
                    if event is not None:
                        self.events.append(event)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def matching(
        self, event_type: str, predicate: Callable[[Envelope], bool] = lambda e: True
    ) -> list[Envelope]:
        return [e for e in self.events if _is(e, event_type) and predicate(e)]

    async def wait_for(
        self,
        event_type: str,
        predicate: Callable[[Envelope], bool] = lambda e: True,
        *,
        count: int = 1,
        timeout: float = 30.0,
    ) -> list[Envelope]:
        """At least ``count`` events of ``event_type`` matching ``predicate``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.matching(event_type, predicate)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                seen = sorted({e.event_type for e in self.events})
                raise AssertionError(
                    f"expected {count} x {event_type} within {timeout}s, got {len(found)}; "
                    f"seen types: {seen}"
                )
            await asyncio.sleep(0.05)


async def read_topic(
    topic: str, *, keys: set[str] | None = None, timeout: float = 30.0
) -> list[Envelope]:
    """Every decodable event on ``topic`` from the beginning to its current end (optionally
    only the given keys)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_options(CommonSettings()),
    )
    await consumer.start()
    out: list[Envelope] = []
    try:
        partitions = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in partitions.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        deadline = asyncio.get_running_loop().time() + timeout
        while remaining:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout}s")
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                for msg in messages:
                    if msg.offset >= ends[tp] - 1:
                        remaining.discard(tp)
                    key = msg.key.decode() if msg.key else None
                    if keys is not None and key not in keys:
                        continue
                    event = _decode(msg)
                    if event is not None:
                        out.append(event)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


async def eventually(
    check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1
) -> Any:
    """Retry an (async) assertion until it passes or the timeout expires."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(interval)


async def ensure_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (tests and benchmarks that keep
    their own copy of a service's database beside the main one)."""
    import contextlib

    import asyncpg  # type: ignore[import-untyped]

    base, name = url.rsplit("/", 1)
    admin = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def skip_to_end(group_id: str, topics: list[str]) -> None:
    """Commit a consumer group's offsets at the end of its topics: it starts from now, never
    from the history other suites left on a shared Kafka."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        group_id=group_id, enable_auto_commit=False, **kafka_client_options(CommonSettings())
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if ends:
            await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


class TlsFiles:
    """A throwaway CA and the server and client certificates it signed, as PEM files.

    The server certificate is valid for ``localhost`` and ``127.0.0.1``; ``rogue_*`` is a
    client certificate of another CA (an mTLS server must refuse it).
    """

    def __init__(self, directory: Path) -> None:
        from datetime import UTC, datetime, timedelta
        from ipaddress import ip_address

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.now(UTC)

        def name(cn: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def write(stem: str, key: Any, cert: x509.Certificate) -> tuple[Path, Path]:
            key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.crt"
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            return cert_path, key_path

        def authority(cn: str) -> tuple[Any, x509.Certificate]:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                x509.CertificateBuilder()
                .subject_name(name(cn))
                .issuer_name(name(cn))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .sign(key, hashes.SHA256())
            )
            return key, cert

        def leaf(
            ca_key: Any, ca_cert: x509.Certificate, cn: str, server: bool
        ) -> tuple[Any, x509.Certificate]:
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (
                x509.CertificateBuilder()
                .subject_name(name(cn))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [
                            ExtendedKeyUsageOID.SERVER_AUTH
                            if server
                            else ExtendedKeyUsageOID.CLIENT_AUTH
                        ]
                    ),
                    critical=False,
                )
            )
            if server:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName(
                        [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
                    ),
                    critical=False,
                )
            return key, builder.sign(ca_key, hashes.SHA256())

        ca_key, ca_cert = authority("ecomops test CA")
        self.ca = directory / "ca.crt"
        self.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = write(
            "server", *leaf(ca_key, ca_cert, "localhost", server=True)
        )
        self.client_cert, self.client_key = write(
            "client", *leaf(ca_key, ca_cert, "service:order", server=False)
        )
        rogue_key, rogue_ca = authority("rogue CA")
        self.rogue_cert, self.rogue_key = write(
            "rogue", *leaf(rogue_key, rogue_ca, "service:order", server=False)
        )
