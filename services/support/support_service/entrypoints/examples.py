"""Examples of the support service's main request and response bodies, by operation id, shown
in its OpenAPI document (the platform reads ``EXAMPLES`` from this module; tests/deploy checks
that each one is valid against its schema)."""

from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "open_ticket": {
        "request": {
            "order_id": "ord-7f3c2a",
            "category": "delivery",
            "subject": "My parcel has not arrived",
            "message": "It was due on Monday and tracking has not moved for four days.",
            "language": "en",
        },
        "response": {
            "ticket_id": "0c3f7a52-9d1e-5b0a-8e44-6d2b1f0a9c31",
            "customer_id": "cust-42",
            "order_id": "ord-7f3c2a",
            "category": "delivery",
            "subject": "My parcel has not arrived",
            "language": "en",
            "status": "open",
            "tier": 1,
            "priority": "high",
            "sla_due_at": "2026-12-02T12:00:00Z",
            "suggested_articles": [
                {"article_id": "late-delivery-en", "title": "My order is late", "score": 0.62},
                {"article_id": "order-tracking-en", "title": "Tracking your parcel", "score": 0.31},
            ],
            "auto_answer_article_id": None,
            "order_context_missing": False,
            "created_at": "2026-12-02T10:00:00Z",
            "updated_at": "2026-12-02T10:00:00Z",
            "first_response_at": None,
            "resolved_at": None,
            "closed_at": None,
            "sla_breaches": 0,
            "reopened": 0,
            "messages": [
                {
                    "message_id": "5b8e1f0c-2a44-4c1d-9e3b-7f6a5d4c3b2a",
                    "author_role": "customer",
                    "author": "cust-42",
                    "body": "It was due on Monday and tracking has not moved for four days.",
                    "created_at": "2026-12-02T10:00:00Z",
                }
            ],
            "timeline": [
                {
                    "kind": "opened",
                    "status": "open",
                    "tier": 1,
                    "by": "cust-42",
                    "note": "",
                    "at": "2026-12-02T10:00:00Z",
                }
            ],
            "order": None,
            "compensation": None,
            "rating": None,
        },
    },
    "rate": {"request": {"csat": 5, "nps": 9, "comment": "Quick and friendly."}},
    "put_article": {
        "request": {
            "title": "How long does a refund take?",
            "body": "Refunds reach your account 3-5 working days after we receive the return.",
            "category": "return",
            "language": "en",
            "keywords": ["refund", "money back", "how long"],
        }
    },
}
