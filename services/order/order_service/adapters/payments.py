"""The built-in sandbox payment provider.

Tokens starting with ``tok_ok`` are charged; ``tok_declined`` tokens are declined (402, the order
stays payable); anything else is not a token this provider knows (422). Only the provider's
payment id, the last four digits and a fingerprint of the method come back — never card data.
"""

from __future__ import annotations

import hashlib
import uuid

from ecomops_platform.errors import PaymentRequired, Unprocessable

from ..service_layer.ports import Charge


class SandboxPaymentProvider:
    def __init__(self) -> None:
        self.refunds: list[tuple[str, int]] = []

    async def charge(
        self, *, token: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> Charge:
        if token.startswith("tok_declined"):
            raise PaymentRequired(
                "the payment method was declined; use another one", code="payment-declined"
            )
        if not token.startswith("tok_ok"):
            raise Unprocessable(
                "unknown payment token; send a token from the payment provider",
                code="invalid-payment-token",
            )
        digest = hashlib.sha256(token.encode()).hexdigest()
        payment_id = "pay_" + uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:24]
        return Charge(payment_id=payment_id, last4="4242", fingerprint="fp_" + digest[:24])

    async def refund(
        self, *, payment_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        self.refunds.append((payment_id, amount_minor))
        return "re_" + uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:24]
