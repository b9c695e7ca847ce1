"""Examples of the recommendation service's main request and response bodies, by operation id,
shown in its OpenAPI document (the platform reads ``EXAMPLES`` from this module; tests/deploy
checks that each one is valid against its schema)."""

from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "record_behavior_events": {
        "request": {
            "events": [
                {
                    "type": "view",
                    "sku": "TSHIRT-BLUE-M",
                    "customer_id": "cust-42",
                    "occurred_at": "2026-12-01T10:14:02+00:00",
                },
                {
                    "type": "add_to_cart",
                    "sku": "TSHIRT-BLUE-M",
                    "customer_id": "cust-42",
                    "occurred_at": "2026-12-01T10:16:29+00:00",
                },
            ]
        },
        "response": {"accepted": 2},
    },
}
