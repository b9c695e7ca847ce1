"""Opaque cursor pagination: the cursor is a URL-safe token of the last item's sort key."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import Unprocessable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Unprocessable(
            "cursor is not valid; use next_cursor from a previous page", code="invalid-cursor"
        ) from None
    if not isinstance(value, dict):
        raise Unprocessable("cursor is not valid", code="invalid-cursor")
    return value


def check_limit(limit: int | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise Unprocessable(f"limit must be between 1 and {maximum}", code="invalid-limit")
    return limit
