"""Order's REST screens: card numbers are the platform's screen (ScreenMiddleware, which runs
before every route); order adds only the NUL check on bodies the platform does not make."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from ecomops_platform.errors import ServiceError
from ecomops_platform.middleware import ScreenMiddleware
from order_service.entrypoints.rest import refuse_nul_body


def _scope(path: str) -> dict[str, object]:
    return {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": []}


def _request(body: bytes) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(_scope("/v1/orders"), receive)  # type: ignore[arg-type]


def test_our_own_ids_are_not_taken_for_card_numbers() -> None:
    # This UUID hex holds a Luhn-valid 16-digit run: it is an order id, not a card number.
    scope = _scope("/v1/orders/015505bc53065827920520589b8bbdb2/payments")
    assert ScreenMiddleware._screen_target(scope, []) is None


def test_a_card_number_in_the_path_is_still_refused() -> None:
    scope = _scope("/v1/orders/4111111111111111/payments")
    assert ScreenMiddleware._screen_target(scope, []) == "path"


@pytest.mark.parametrize("body", [b'{"reason": "a\x00b"}', b'{"reason": "a\\u0000b"}'])
async def test_a_nul_character_in_the_body_is_refused(body: bytes) -> None:
    with pytest.raises(ServiceError) as err:
        await refuse_nul_body(_request(body))
    assert (err.value.status, err.value.code) == (422, "nul-character")


async def test_a_body_without_nul_passes() -> None:
    await refuse_nul_body(_request(b'{"reason": "changed my mind"}'))
