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
    "list_assessments": {
        "response": {
            "items": [
                {
                    "assessment_id": "6f0c1d2e-4b7a-4f55-9d8e-2a1b3c4d5e6f",
                    "order_id": "ord-9a4e1b",
                    "customer_id": "cust-77",
                    "score": "0.4800",
                    "decision": "review",
                    "reasons": [
                        {
                            "code": "new_account_large_basket",
                            "detail": "account age unknown (treated as new) with an order of "
                            "50000000 (>= 50000) EUR",
                            "weight": "0.35",
                            "shadow": False,
                        },
                        {
                            "code": "country_mismatch",
                            "detail": "billing country US != shipping country NG",
                            "weight": "0.2",
                            "shadow": False,
                        },
                    ],
                    "rules_version": 1,
                    "model_version": "",
                    "amount_minor": 50000000,
                    "currency": "EUR",
                    "review_id": "0b9d8c7e-6f5a-4e3d-8c2b-1a0f9e8d7c6b",
                    "assessed_at": "2026-12-01T10:20:00+00:00",
                }
            ]
        }
    },
}
