"""Examples of the risk service's main request bodies, by operation id, shown in its OpenAPI
document (the platform reads ``EXAMPLES`` from this module; tests/deploy checks that each one
is valid against its schema)."""

from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "create_assessment": {
        "request": {
            "order_id": "ord-7f3c2a",
            "customer_id": "cust-42",
            "amount_minor": 3998,
            "currency": "EUR",
            "lines": [{"sku": "TSHIRT-BLUE-M", "quantity": 2, "unit_price_minor": 1999}],
            "email": "ada@example.com",
            "ip": "203.0.113.7",
            "device_id": "dev-8c2f",
            "billing_country": "FR",
            "shipping_country": "FR",
            "account_created_at": "2024-03-14T09:00:00+00:00",
        }
    },
}
