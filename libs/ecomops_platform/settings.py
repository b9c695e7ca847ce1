"""Typed settings: ``ECOMOPS_*`` for what every service shares, ``<SERVICE>_*`` per service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RoleName = Literal["customer", "ops", "partner", "service"]
# RFC 8725 §3.10: short-lived tokens. Customers stay signed in for a day, ops staff for a
# working shift; partner systems and services refresh their tokens hourly.
DEFAULT_JWT_MAX_AGE_SECONDS: dict[RoleName, int] = {
    "customer": 86_400,
    "ops": 43_200,
    "partner": 3_600,
    "service": 3_600,
}
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret", "test"})


class CommonSettings(BaseSettings):
    """What every service reads from ``ECOMOPS_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="ECOMOPS_", extra="ignore")

    env: Literal["local", "test", "production"] = "local"
    kafka_bootstrap: str = "127.0.0.1:59092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_topic_replication: int = Field(default=1, ge=1)
    jwt_secret: str | None = None
    jwt_jwks_url: str | None = None
    # How long fetched JWKS keys are trusted when the response has no Cache-Control max-age.
    jwt_jwks_cache_seconds: int = Field(default=300, ge=10, le=86400)
    jwt_issuer: str = "ecomops"
    jwt_audience: str = "ecomops"
    # Maximum token lifetime (exp - iat) and age (now - iat) per role, in seconds (RFC 8725
    # §3.10: short-lived tokens). A JSON object in ECOMOPS_JWT_MAX_AGE_SECONDS overrides roles
    # one by one, e.g. {"ops": 3600}; 0 turns the limit off for that role.
    jwt_max_age_seconds: dict[RoleName, int] = Field(
        default_factory=lambda: dict(DEFAULT_JWT_MAX_AGE_SECONDS)
    )
    service_token_file: str | None = None
    grpc_client_ca_file: str | None = None
    grpc_client_cert_file: str | None = None
    grpc_client_key_file: str | None = None
    log_level: str = "INFO"
    # One JSON access line per REST request and gRPC call (probes excluded): access_log.py.
    access_log: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Browser origins allowed to call the REST API (CORS), comma-separated, e.g.
    # "https://shop.example.com,https://admin.example.com"; "*" any; empty (default): none.
    cors_allowed_origins: str = ""
    # The outbox relay is woken by commits (in-process signal, LISTEN/NOTIFY); this is only its
    # safety-net poll, the longest a missed notification delays an event.
    outbox_poll_interval: float = Field(default=5.0, gt=0)
    # A relay woken by a commit while events keep coming (it published within the last second)
    # waits this long before it reads the outbox (0: never), so that the commits of those
    # milliseconds share one round: what an event's publication may be delayed by, for fewer
    # relay transactions under a steady stream.
    outbox_linger_ms: int = Field(default=25, ge=0, le=1000)
    # NOTIFY the relays of other replicas in the writing transaction (see db.write_outbox).
    # Off by default: PostgreSQL serialises the commits of notifying transactions cluster-wide
    # (437/341 vs 513/522 commits/s with one outbox row each, bench.platform_micro notify), and
    # the writing replica's own relay is already woken in-process; events written by a process
    # without a relay (a CLI command) wait for the safety net.
    outbox_notify: bool = False
    consumer_max_attempts: int = Field(default=5, ge=1)
    # Events of one fetched partition batch applied in one transaction (one inbox insert, the
    # handlers in order, one commit); 1 applies every event in its own transaction. A chunk
    # that fails is rolled back and applied again one event at a time (ecomops_platform.consumer).
    consumer_batch_size: int = Field(default=25, ge=1, le=200)
    # lock_timeout of a chunk's transaction (0: none). A chunk that waits longer for a row
    # lock gives up and is applied one event at a time, so it never deadlocks with requests.
    consumer_batch_lock_timeout_ms: int = Field(default=200, ge=0, le=60_000)
    # Test stacks sharing one Kafka give each process its own groups; empty in production.
    consumer_group_prefix: str = ""
    # Where a brand-new consumer group starts: "earliest" never misses an event.
    consumer_offset_reset: Literal["earliest", "latest"] = "earliest"
    # A consumer behind the end of its partitions that handles nothing for this long is
    # replaced by a new one (it rejoins its group from the committed offsets).
    consumer_stall_seconds: float = Field(default=20.0, gt=0)
    # Handled offsets are committed at most this often (one request for every partition), and
    # always when partitions are revoked or the consumer stops. A crash redelivers at most this
    # window, which the inbox drops as duplicates; 0 commits after every fetched batch.
    consumer_commit_interval_ms: int = Field(default=1000, ge=0, le=60_000)
    # Failed deliveries in a row after which the producer is replaced (a broken idempotence
    # state, OutOfOrderSequenceNumber and the like, replaces it at once).
    kafka_producer_reset_after_failures: int = Field(default=3, ge=1)
    # Retention of the platform tables (seconds): published outbox rows, inbox rows (longer
    # than any redelivery window) and idempotency keys (the replay window of a client).
    retention_outbox_seconds: float = Field(default=7 * 86400, gt=0)
    retention_inbox_seconds: float = Field(default=14 * 86400, gt=0)
    retention_idempotency_seconds: float = Field(default=86400, gt=0)
    retention_interval_seconds: float = Field(default=600, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _token_ages_are_complete(self) -> CommonSettings:
        for role, seconds in self.jwt_max_age_seconds.items():
            if seconds < 0:
                raise ValueError(f"ECOMOPS_JWT_MAX_AGE_SECONDS[{role}] must be >= 0")
        self.jwt_max_age_seconds = {**DEFAULT_JWT_MAX_AGE_SECONDS, **self.jwt_max_age_seconds}
        return self

    @model_validator(mode="after")
    def _secrets_are_real(self) -> CommonSettings:
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            raise ValueError(
                "set ECOMOPS_JWT_SECRET (HS256) or ECOMOPS_JWT_JWKS_URL (RS256): "
                "tokens cannot be verified without one"
            )
        if (
            self.env == "production"
            and self.jwt_secret is not None
            and (self.jwt_secret.lower() in PLACEHOLDER_SECRETS or len(self.jwt_secret) < 32)
        ):
            raise ValueError(
                "ECOMOPS_JWT_SECRET is a placeholder or shorter than 32 characters; "
                "refusing to start in production"
            )
        return self


class ServiceSettings(BaseSettings):
    """Base of each service's settings class; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=0, ge=0, le=65535)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535)
    grpc_tls_cert_file: str | None = None
    grpc_tls_key_file: str | None = None
    grpc_tls_client_ca_file: str | None = None
    # Kept connections: at least the concurrency a replica serves (16 in the benches), since an
    # overflow connection is closed after each use and the next one pays connect, type
    # introspection and statement preparation again. Same ceiling as before (30).
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
