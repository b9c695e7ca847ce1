"""Typed settings of the inventory service (``INVENTORY_*`` variables)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ecomops_platform.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVENTORY_", extra="ignore")

    http_port: int = Field(default=8002, ge=0, le=65535)
    grpc_port: int = Field(default=9002, ge=0, le=65535)

    # Reservations
    reservation_default_ttl_seconds: int = Field(default=900, ge=1)
    reservation_max_ttl_seconds: int = Field(default=3600, ge=1)
    reservation_max_lines: int = Field(default=100, ge=1)
    reservation_sku_concurrency: int = Field(default=8, ge=0)
    expiry_sweep_interval_seconds: float = Field(default=5.0, gt=0)
    expiry_sweep_batch: int = Field(default=200, ge=1)

    # Kafka consumer: group "ecomops-inventory" for "main", "ecomops-inventory-<name>" otherwise
    # (an isolated environment sharing a broker, e.g. a test run with its own database).
    consumer_name: str = Field(default="main", pattern=r"^[a-z0-9-]{1,40}$")

    # Returns
    default_return_warehouse: str | None = None

    # Planning
    planning_interval_seconds: float = Field(default=3600.0, gt=0)
    snapshot_interval_seconds: float = Field(default=900.0, gt=0)
    forecast_horizon_days: int = Field(default=90, ge=1)
    forecast_history_days: int = Field(default=365, ge=14)
    forecast_season_length: int = Field(default=7, ge=1)
    forecast_workers: int = Field(default=0, ge=0, le=64)
    service_level: Decimal = Field(default=Decimal("0.95"), gt=0, lt=1)
    default_lead_time_days: int = Field(default=7, ge=0)
    jit_cover_days: int = Field(default=7, ge=1)
    batch_cover_days: int = Field(default=60, ge=1)
    standard_cover_days: int = Field(default=30, ge=1)
    ordering_cost_minor: int | None = Field(default=None, ge=0)
    holding_cost_minor_per_unit_year: int | None = Field(default=None, gt=0)
    default_reorder_point: int = Field(default=0, ge=0)

    # ABC
    abc_a_threshold: Decimal = Field(default=Decimal("0.80"), gt=0, lt=1)
    abc_b_threshold: Decimal = Field(default=Decimal("0.95"), gt=0, le=1)
    abc_window_days: int = Field(default=90, ge=1)
    abc_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _consistent(self) -> InventorySettings:
        if self.reservation_default_ttl_seconds > self.reservation_max_ttl_seconds:
            raise ValueError("INVENTORY_RESERVATION_DEFAULT_TTL_SECONDS exceeds the maximum TTL")
        if self.abc_a_threshold >= self.abc_b_threshold:
            raise ValueError("INVENTORY_ABC_A_THRESHOLD must be below INVENTORY_ABC_B_THRESHOLD")
        return self
