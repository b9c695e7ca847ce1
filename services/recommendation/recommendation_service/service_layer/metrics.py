"""The service's own metrics: how fresh the model is, how much the segment refresh does."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge, Histogram

model_lag_seconds = Gauge(
    "recommendation_model_lag_seconds",
    "Time from an event's occurrence (ce_time) to its effect on the model, last event applied",
    ["source"],
)
model_update_seconds = Histogram(
    "recommendation_model_update_lag_seconds",
    "Time from an event's creation (ce_time) to the commit-ready model update",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
segment_refresh_last_batch = Gauge(
    "recommendation_segment_refresh_last_batch", "Customers re-scored in the last refresh batch"
)


def observe_lag(source: str, event_time: datetime, now: datetime) -> None:
    lag = max(0.0, (now - event_time).total_seconds())
    model_lag_seconds.labels(source).set(lag)
    model_update_seconds.labels(source).observe(lag)
