"""Examples of the order service's main request and response bodies, by operation id, shown in
its OpenAPI document (the platform reads ``EXAMPLES`` from this module; tests/deploy checks
that each one is valid against its schema)."""

from typing import Any

_CART: dict[str, Any] = {
    "cart_id": "cart-5b1d7e",
    "customer_id": "cust-42",
    "currency": "EUR",
    "status": "active",
    "lines": [],
    "subtotal_minor": 0,
    "discount_total_minor": 0,
    "total_minor": 0,
    "quote_id": None,
    "created_at": "2026-12-01T10:15:00+00:00",
    "updated_at": "2026-12-01T10:15:00+00:00",
    "order_id": None,
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "create_cart": {"request": {"currency": "EUR"}, "response": _CART},
    "set_cart_item": {
        "request": {"quantity": 2},
        "response": {
            **_CART,
            "lines": [
                {
                    "sku": "TSHIRT-BLUE-M",
                    "quantity": 2,
                    "unit_price_minor": 1999,
                    "discount_minor": 0,
                    "total_minor": 3998,
                    "available": True,
                    "available_quantity": 17,
                    "sellable": True,
                }
            ],
            "subtotal_minor": 3998,
            "total_minor": 3998,
            "updated_at": "2026-12-01T10:16:30+00:00",
        },
    },
    "checkout_cart": {
        "request": {
            "coupon_codes": ["WINTER10"],
            "shipping_address": {
                "name": "Ada Lovelace",
                "line1": "12 Rue de la République",
                "city": "Lyon",
                "postal_code": "69002",
                "country": "FR",
            },
            "client": {"ip": "203.0.113.7", "device_id": "dev-8c2f"},
            "email": "ada@example.com",
            "billing_address": {
                "name": "Ada Lovelace",
                "line1": "12 Rue de la République",
                "city": "Lyon",
                "postal_code": "69002",
                "country": "FR",
            },
            "payment_token": "tok_ok_visa_4f1c",
        }
    },
}
