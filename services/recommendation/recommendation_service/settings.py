"""The recommendation service's settings (``RECOMMENDATION_*`` variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecomops_platform.settings import ServiceSettings

from .domain.models import ModelParams


class RecommendationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECOMMENDATION_", extra="ignore")

    http_port: int = Field(default=8004, ge=0, le=65535)
    grpc_port: int = Field(default=9004, ge=0, le=65535)

    #: Most events in one POST /v1/behavior-events batch.
    max_batch: int = Field(default=100, ge=1, le=10_000)
    #: Ingestion requests per minute per client address for callers without a token.
    anonymous_rate_per_minute: int = Field(default=120, ge=1)
    #: How far in the future (clock skew) and how old an event's occurred_at may be.
    max_clock_skew_seconds: int = Field(default=300, ge=0)
    max_event_age_days: int = Field(default=30, ge=1)

    #: Co-occurrence half-life (days), trending half-life (hours), session window (hours).
    half_life_days: float = Field(default=30.0, gt=0)
    trending_half_life_hours: float = Field(default=48.0, gt=0)
    session_window_hours: float = Field(default=24.0, gt=0)
    #: Per-process cache of serving answers: how long an answer is reused (0: off) and how many
    #: answers are kept (service_layer/read_cache.py says what the staleness means).
    read_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    read_cache_entries: int = Field(default=10_000, ge=1)
    #: How often segments are recomputed as recency ages (seconds), and how many per batch.
    segment_refresh_seconds: float = Field(default=3600.0, gt=0)
    segment_refresh_batch: int = Field(default=500, ge=1)

    def model_params(self) -> ModelParams:
        return ModelParams(
            half_life=timedelta(days=self.half_life_days),
            trending_half_life=timedelta(hours=self.trending_half_life_hours),
            session_window=timedelta(hours=self.session_window_hours),
        )
