"""Prometheus metrics shared by every service (names documented in docs/deploy.md).

Every exported name starts with ``ecomops_`` (so that no exporter's ``kafka_consumer_lag`` or
``http_requests_total`` collides with ours); the Python identifiers keep the short names. The
chart's alert rules and dashboard (k8s/ecomops/files/) name these metrics, and
tests/deploy/test_observability.py checks that every name they use is exported here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_requests_total = Counter(
    "ecomops_http_requests_total", "REST requests handled", ["service", "method", "route", "status"]
)
http_request_duration_seconds = Histogram(
    "ecomops_http_request_duration_seconds",
    "REST request latency",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
grpc_server_handled_total = Counter(
    "ecomops_grpc_server_handled_total",
    "gRPC calls handled",
    ["service", "grpc_method", "grpc_code"],
)
grpc_server_handling_seconds = Histogram(
    "ecomops_grpc_server_handling_seconds",
    "gRPC call latency",
    ["service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
poisoned_connections_discarded = Counter(
    "ecomops_db_poisoned_connections_discarded_total",
    "Pooled database connections found inside a transaction when given back or checked out,"
    " and closed",
    ["service"],
)
outbox_backlog = Gauge("ecomops_outbox_backlog", "Outbox rows not yet published", ["service"])
outbox_published_total = Counter(
    "ecomops_outbox_published_total", "Events published from the outbox", ["service", "topic"]
)
outbox_publish_failures_total = Counter(
    "ecomops_outbox_publish_failures_total", "Failed outbox publish attempts", ["service"]
)
events_consumed_total = Counter(
    "ecomops_events_consumed_total", "Events handled by consumers", ["service", "topic", "outcome"]
)
events_dead_lettered_total = Counter(
    "ecomops_events_dead_lettered_total", "Events sent to a dead-letter topic", ["service", "topic"]
)
kafka_consumer_lag = Gauge(
    "ecomops_kafka_consumer_lag",
    "Messages behind the end of the partition",
    ["service", "topic", "partition"],
)
event_handling_delay_seconds = Histogram(
    "ecomops_event_handling_delay_seconds",
    "Time from an event's creation (ce_time) to its handling by a consumer",
    ["service", "topic"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
dependency_up = Gauge(
    "ecomops_dependency_up",
    "1 when a dependency answered its last check",
    ["service", "dependency"],
)
kafka_producer_resets_total = Counter(
    "ecomops_kafka_producer_resets_total",
    "Kafka producers replaced because they could no longer deliver",
    ["service"],
)
outbox_oldest_unpublished_age_seconds = Gauge(
    "ecomops_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none waits)",
    ["service"],
)
consumer_restarts_total = Counter(
    "ecomops_kafka_consumer_restarts_total",
    "Kafka consumers replaced after an error or a stall",
    ["service", "consumer"],
)
consumer_batch_fallbacks_total = Counter(
    "ecomops_consumer_batch_fallbacks_total",
    "Chunks of events rolled back and re-applied one event at a time",
    ["service", "topic"],
)
consumer_chunk_events = Histogram(
    "ecomops_consumer_chunk_events",
    "Events applied together in one consumer transaction (chunks that committed)",
    ["service"],
    buckets=(1, 2, 3, 5, 10, 25, 50, 100, 200),
)
dlq_messages_total = Counter(
    "ecomops_dlq_messages_total", "Messages written to a dead-letter topic", ["service", "topic"]
)
dlq_replayed_total = Counter(
    "ecomops_dlq_replayed_total", "Dead letters re-published to their original topic", ["topic"]
)
retention_purged_rows_total = Counter(
    "ecomops_retention_purged_rows_total",
    "Rows deleted by the retention job",
    ["service", "table"],
)
