"""Settings of the order service (``ORDER_*`` variables)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ecomops_platform.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDER_", extra="ignore")

    http_port: int = Field(default=8001, ge=0, le=65535)
    grpc_port: int = Field(default=9001, ge=0, le=65535)

    inventory_target: str = "127.0.0.1:9002"
    pricing_target: str = "127.0.0.1:9003"
    risk_target: str = "127.0.0.1:9005"
    #: Deadline of every gRPC call to a dependency, in seconds.
    dependency_timeout: float = Field(default=2.0, gt=0, le=30)

    #: Time to pay an order before it is cancelled (seconds; default 15 min).
    payment_timeout: float = Field(default=900.0, gt=0)
    #: The reservation outlives the payment deadline by this margin (seconds).
    reservation_margin: float = Field(default=300.0, ge=0)
    #: Seconds a SKU that inventory refused for lack of stock is remembered by this process:
    #: checkouts for it ask inventory's availability first and get their 409 without a quote
    #: or an assessment while it is still short (0: never remembered).
    sold_out_memory_seconds: float = Field(default=10.0, ge=0, le=300)
    #: How long an order may wait in risk review, stock held, before it is cancelled
    #: (seconds; 30 min). The hold's TTL is this plus the payment window: keep it within
    #: inventory's INVENTORY_RESERVATION_MAX_TTL_SECONDS (default 3600).
    review_hold: float = Field(default=1800.0, gt=0)
    #: A cart idle this long raises CartAbandoned once per idle period (seconds; 30 min).
    cart_abandon_after: float = Field(default=1800.0, gt=0)
    #: Days after delivery during which a return may be requested.
    return_window_days: int = Field(default=30, ge=0)
    #: How often the payment-timeout and cart-abandonment jobs run (seconds).
    job_interval: float = Field(default=5.0, gt=0)
    #: Rows handled per job batch.
    job_batch_size: int = Field(default=100, ge=1)
    #: Default currency of new carts.
    default_currency: str = "EUR"

    @model_validator(mode="after")
    def _hold_outlives_payment(self) -> OrderSettings:
        if self.reservation_margin < 0:
            raise ValueError("ORDER_RESERVATION_MARGIN must not be negative")
        return self

    @property
    def claim_lease_seconds(self) -> float:
        """Lease of a checkout's Idempotency-Key claim: twice the longest a checkout may take
        (four calls to dependencies, each within its deadline, plus the store), so that the
        bus, which stops a checkout at half the lease, never lets a retry take over a live
        one. A claim left by a crash answers 409 for this long, then a retry takes it over."""
        return 2.0 * (4 * self.dependency_timeout + 5.0)

    @property
    def reservation_ttl_seconds(self) -> int:
        """TTL of the hold of an approved order: the payment window plus the margin."""
        return int(self.payment_timeout + self.reservation_margin) + 1

    @property
    def review_reservation_ttl_seconds(self) -> int:
        """TTL of the hold of an order in review: review hold, then the payment window."""
        return int(self.review_hold + self.payment_timeout + self.reservation_margin) + 1
