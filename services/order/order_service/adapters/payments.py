"""The built-in sandbox payment provider.

Tokens starting with ``tok_ok`` are charged; ``tok_declined`` tokens are declined (402, the order
stays payable); anything else is not a token this provider knows (422). ``fingerprint`` tells
the method's fingerprint of a known token without charging (checkout sends it to risk). Only
the provider's payment id, the last four digits and a fingerprint of the method come back —
never card data.
"""

from __future__ import annotations

import hashlib
import uuid

from ecomops_platform.errors import PaymentRequired, Unprocessable

from ..service_layer.ports import Charge


def _fingerprint(token: str) -> str:
    """The sandbox's fingerprint of the method behind a token (a real provider returns its
    own, e.g. a card fingerprint that is the same for every token of one card)."""
    return "fp_" + hashlib.sha256(token.encode()).hexdigest()[:24]


def _known(token: str) -> None:
    if not token.startswith(("tok_ok", "tok_declined")):
        raise Unprocessable(
            "unknown payment token; send a token from the payment provider",
            code="invalid-payment-token",
        )


class SandboxPaymentProvider:
    def __init__(self) -> None:
        self.refunds: list[tuple[str, int]] = []

    async def fingerprint(self, *, token: str) -> str:
        _known(token)
        return _fingerprint(token)

    async def charge(
        self, *, token: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> Charge:
        if token.startswith("tok_declined"):
            raise PaymentRequired(
                "the payment method was declined; use another one", code="payment-declined"
            )
        _known(token)
        payment_id = "pay_" + uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:24]
        return Charge(payment_id=payment_id, last4="4242", fingerprint=_fingerprint(token))

    async def refund(
        self, *, payment_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        self.refunds.append((payment_id, amount_minor))
        return "re_" + uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:24]
