"""Problem documents and readiness reports are rendered by orjson: the same bytes as the
standard library's rendering (starlette's ``JSONResponse``) for every JSON value they carry,
and what orjson refuses (an integer beyond 64 bits) is still rendered, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from ecomops_platform.problems import FastJSONResponse, problem_response

DOCUMENTS: list[Any] = [
    {"type": "https://ecomops.dev/problems/x", "title": "T", "status": 422, "detail": "d"},
    {"unicode": "ü 中文 ✓", "none": None, "bool": True, "float": 1.5, "list": [1, "2", 3.25]},
    {"decimal_as_string": "12.50", "nested": {"errors": [{"location": ["body", "sku"]}]}},
    {"ready": False, "degraded": ["kafka"], "outbox_oldest_unpublished_age_seconds": 0.125},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_same_bytes_as_the_standard_rendering(document: Any) -> None:
    assert FastJSONResponse(document).body == JSONResponse(document).body


def test_an_integer_beyond_64_bits_is_still_rendered() -> None:
    body = FastJSONResponse({"quantity": 10**30}).body
    assert body == b'{"quantity":1000000000000000000000000000000}'


def test_problem_response_media_type_and_body() -> None:
    response = problem_response(409, "conflict", "Conflict", None, instance="/v1/x", lines=["a"])
    assert response.media_type == "application/problem+json"
    assert response.body == (
        b'{"type":"https://ecomops.dev/problems/conflict","title":"Conflict","status":409,'
        b'"instance":"/v1/x","lines":["a"]}'
    )
