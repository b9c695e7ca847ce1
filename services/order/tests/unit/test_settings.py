"""Holds outlive the payment window (payment never due after the reservation expires)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from order_service.settings import OrderSettings


@given(
    timeout=st.floats(1, 7200),
    margin=st.floats(0, 600),
    review=st.floats(1, 172_800),
)
def test_reservation_ttls_cover_the_payment_window(
    timeout: float, margin: float, review: float
) -> None:
    s = OrderSettings(
        database_url="postgresql+asyncpg://x/y",
        payment_timeout=timeout,
        reservation_margin=margin,
        review_hold=review,
    )
    assert s.reservation_ttl_seconds > timeout
    assert s.review_reservation_ttl_seconds > review + timeout
