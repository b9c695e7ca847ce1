from __future__ import annotations

import pytest
from starlette.requests import Request

from ecomops_platform.errors import ServiceError
from order_service.entrypoints.rest import refuse_card_numbers


def _request(path: str) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": []}
    return Request(scope, receive)


async def test_our_own_ids_are_not_taken_for_card_numbers() -> None:
    # This UUID hex holds a Luhn-valid 16-digit run: it is an order id, not a card number.
    await refuse_card_numbers(_request("/v1/orders/015505bc53065827920520589b8bbdb2/payments"))


async def test_a_card_number_in_the_path_is_still_refused() -> None:
    with pytest.raises(ServiceError) as err:
        await refuse_card_numbers(_request("/v1/orders/4111111111111111/payments"))
    assert err.value.status == 422
