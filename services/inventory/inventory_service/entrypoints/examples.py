"""Examples of the inventory service's main request and response bodies, by operation id,
shown in its OpenAPI document (the platform reads ``EXAMPLES`` from this module;
tests/deploy checks that each one is valid against its schema)."""

from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "create_reservation": {
        "request": {
            "reservation_id": "ord-7f3c2a",
            "lines": [{"sku": "TSHIRT-BLUE-M", "quantity": 2}],
            "ttl_seconds": 900,
            "region": "eu",
        },
        "response": {
            "reservation_id": "ord-7f3c2a",
            "status": "held",
            "expires_at": "2026-12-01T10:31:30+00:00",
            "allocations": [{"sku": "TSHIRT-BLUE-M", "warehouse": "WH-LYON", "quantity": 2}],
            "lines": [{"sku": "TSHIRT-BLUE-M", "quantity": 2}],
            "region": "eu",
            "created_at": "2026-12-01T10:16:30+00:00",
            "closed_at": None,
            "release_reason": None,
        },
    },
    "create_adjustment": {
        "request": {
            "sku": "TSHIRT-BLUE-M",
            "warehouse": "WH-LYON",
            "delta": 120,
            "reason": "receipt",
            "reference": "PO-2026-0117",
        },
        "response": {
            "entry_id": "led-91a0c3",
            "sku": "TSHIRT-BLUE-M",
            "warehouse": "WH-LYON",
            "delta": 120,
            "reason": "receipt",
            "reference": "PO-2026-0117",
            "on_hand_after": 137,
            "occurred_at": "2026-12-01T08:02:11+00:00",
        },
    },
}
