"""Review cases: decided once (open -> resolved, or closed with its order), never back."""

from __future__ import annotations

from ecomops_platform.errors import Conflict

from .models import ReviewStatus


def ensure_open(
    status: ReviewStatus, decision: str | None, review_id: str, close_reason: str | None = None
) -> None:
    """A review case is decided once: open -> resolved (or closed with its order), never back."""
    if status is ReviewStatus.CLOSED:
        raise Conflict(
            f"review {review_id} was closed: its order was cancelled ({close_reason})",
            code="review-closed",
            title="Review closed",
            close_reason=close_reason,
        )
    if status is not ReviewStatus.OPEN:
        raise Conflict(
            f"review {review_id} is already resolved ({decision})",
            code="review-already-resolved",
            title="Review already resolved",
            decision=decision,
        )
