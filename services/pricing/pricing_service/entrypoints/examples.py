"""Examples of the pricing service's main request and response bodies, by operation id, shown
in its OpenAPI document (the platform reads ``EXAMPLES`` from this module; tests/deploy checks
that each one is valid against its schema)."""

from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "create_quote": {
        "request": {
            "customer_id": "cust-42",
            "currency": "EUR",
            "lines": [{"sku": "TSHIRT-BLUE-M", "quantity": 2}],
            "coupon_codes": [],
        },
        "response": {
            "quote_id": "q-19e0b4",
            "customer_id": "cust-42",
            "currency": "EUR",
            "lines": [
                {
                    "sku": "TSHIRT-BLUE-M",
                    "quantity": 2,
                    "unit_price_minor": 1999,
                    "discount_minor": 0,
                    "total_minor": 3998,
                    "promotions": [],
                }
            ],
            "subtotal_minor": 3998,
            "discount_total_minor": 0,
            "total_minor": 3998,
            "coupon_codes": [],
            "created_at": "2026-12-01T10:16:31+00:00",
            "expires_at": "2026-12-01T10:31:31+00:00",
        },
    },
    "set_price": {
        "request": {
            "currency": "EUR",
            "list_price_minor": 1999,
            "unit_cost_minor": 740,
            "commission_rate": "0.10",
            "marketing_cost_rate": "0.05",
            "reason": "winter catalogue",
        }
    },
}
