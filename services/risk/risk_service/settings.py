"""Settings of the risk service (``RISK_*`` variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecomops_platform.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore")

    http_port: int = Field(default=8005, ge=0, le=65535)
    grpc_port: int = Field(default=9005, ge=0, le=65535)
    # Directory of versioned model artifacts (<dir>/<version>/{model.joblib,manifest.json}).
    model_dir: str = ".local/models/risk"
    # How often each replica checks which model version is active (seconds).
    model_refresh_seconds: float = Field(default=10.0, gt=0)
    # Velocity events older than this are pruned (seconds); must cover the longest rule window.
    velocity_retention_seconds: int = Field(default=30 * 86400, ge=3600)
    # How often the pruning job runs (seconds).
    prune_interval_seconds: float = Field(default=600.0, gt=0)
