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
    "place_inbound_order": {
        "request": {
            "sku": "TSHIRT-BLUE-M",
            "warehouse": "WH-LYON",
            "quantity": 240,
            "expected_on": "2026-12-09",
            "reference": "PO-2026-0131",
        },
        "response": {
            "inbound_id": "in-5b0e9f2c7a1d44e08f3b",
            "sku": "TSHIRT-BLUE-M",
            "warehouse": "WH-LYON",
            "quantity": 240,
            "received_quantity": 0,
            "on_order": 240,
            "status": "open",
            "expected_on": "2026-12-09",
            "reference": "PO-2026-0131",
            "created_at": "2026-12-02T08:10:00+00:00",
            "updated_at": "2026-12-02T08:10:00+00:00",
        },
    },
    "receive_inbound_order": {
        "request": {"quantity": 200},
        "response": {
            "inbound_order": {
                "inbound_id": "in-5b0e9f2c7a1d44e08f3b",
                "sku": "TSHIRT-BLUE-M",
                "warehouse": "WH-LYON",
                "quantity": 240,
                "received_quantity": 200,
                "on_order": 40,
                "status": "open",
                "expected_on": "2026-12-09",
                "reference": "PO-2026-0131",
                "created_at": "2026-12-02T08:10:00+00:00",
                "updated_at": "2026-12-09T07:45:12+00:00",
            },
            "entry": {
                "entry_id": "3f6c1f8e-2a57-4a0e-9d0b-5c1e2f7a9b10",
                "sku": "TSHIRT-BLUE-M",
                "warehouse": "WH-LYON",
                "delta": 200,
                "reason": "receipt",
                "reference": "inbound:in-5b0e9f2c7a1d44e08f3b",
                "on_hand_after": 286,
                "occurred_at": "2026-12-09T07:45:12+00:00",
            },
        },
    },
}
