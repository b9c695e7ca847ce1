"""Settings of the pricing service (``PRICING_*`` variables)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecomops_platform.settings import ServiceSettings


class PricingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRICING_", extra="ignore")

    http_port: int = Field(default=8003, ge=0, le=65535)
    grpc_port: int = Field(default=9003, ge=0, le=65535)
    # Lowest gross margin a price or promotion may produce without an explicit override.
    margin_floor: Decimal = Field(default=Decimal("0.30"), ge=0, lt=1)
    # How long this process may quote from the SKUs, prices and automatic promotions it read
    # (adapters/read_cache.py): a change through another replica is in force within this bound,
    # one through this process at once. 0 reads them from the database for every quote.
    read_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # How long a quote is trusted.
    quote_ttl_seconds: int = Field(default=900, ge=10)
    # Largest quantity of one line in a quote (the API documents 1,000: it may only be lowered).
    max_line_quantity: int = Field(default=1000, ge=1, le=1000)
    # Largest number of lines in a quote (the API documents 100: it may only be lowered).
    max_quote_lines: int = Field(default=100, ge=1, le=100)
    # A redemption not confirmed by OrderPlaced within this window is given back.
    redemption_confirm_window_seconds: int = Field(default=900, ge=1)
    # How often the unconfirmed-redemption job runs.
    redemption_sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # Days of sales behind the velocity used by suggestions.
    velocity_window_days: int = Field(default=28, ge=1)
    # Consumer group suffix: "main" joins group ecomops-pricing; another name joins
    # ecomops-pricing-<name> (an isolated copy, e.g. for tests sharing a Kafka with a deployment).
    consumer_name: str = Field(default="main", pattern=r"^[a-z0-9-]{1,40}$")
    # Competitor observations older than this are ignored by suggestions.
    competitor_max_age_days: int = Field(default=14, ge=1)
