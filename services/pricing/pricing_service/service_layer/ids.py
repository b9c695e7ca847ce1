"""Identifiers of what pricing creates: a prefix and a random UUID (``q_…``, ``promo_…``)."""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"
