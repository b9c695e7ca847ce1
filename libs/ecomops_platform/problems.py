"""RFC 9457 problem documents: the one shape every REST error takes."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from .errors import PROBLEM_BASE

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FastJSONResponse(JSONResponse):
    """A JSON response rendered by orjson (compact UTF-8, like starlette's, several times
    faster). For documents the platform builds itself (problems, readiness); routes with a
    response model are serialised by Pydantic already."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # What orjson refuses and the standard library writes (an integer beyond 64 bits
            # echoed in a problem's extra members): rendered as before, never a 500.
            return super().render(content)


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "model": Problem,
        "description": desc,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for code, desc in (
        (400, "Bad request"),
        (401, "Missing or invalid bearer token"),
        (403, "Role not allowed"),
        (404, "Not found"),
        (409, "Conflict with the current state"),
        (410, "Gone (expired)"),
        (413, "Body too large"),
        (422, "Invalid request"),
        (429, "Rate limited"),
        (503, "A dependency is unavailable"),
    )
}


#: A realistic problem document per status, for the OpenAPI document's examples.
_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Bad request", "authorization must be 'Bearer <token>'"),
    401: ("unauthenticated", "Authentication required", "missing bearer token"),
    402: ("payment-declined", "Payment declined", "the card was declined"),
    403: ("forbidden", "Forbidden", "role customer may not call this operation"),
    404: ("not-found", "Not found", "no such resource: ord-7f3c2a"),
    409: ("conflict", "Conflict", "the resource changed state: ord-7f3c2a is already shipped"),
    410: ("gone", "Gone", "quote q-19e0 expired at 2026-11-30T12:00:00Z"),
    413: ("payload-too-large", "Payload too large", "the body exceeds 1048576 bytes"),
    422: ("validation-error", "Unprocessable request", "body.lines.0.quantity: must be > 0"),
    429: ("rate-limited", "Too many requests", "rate limit of 600 requests per minute exceeded"),
    500: ("internal-error", "Internal error", "the service failed unexpectedly; it was logged"),
    503: (
        "dependency-unavailable",
        "Service temporarily unavailable",
        "a dependency of this service is unavailable; retry later",
    ),
}


def problem_example(status: int, path: str, *, idempotent: bool = False) -> dict[str, Any]:
    """An example problem document for ``status`` answered on ``path`` (a template; its
    parameters get example values), for the OpenAPI document's examples."""
    code, title, detail = _EXAMPLES.get(status, ("http-error", "Error", "the request failed"))
    if idempotent and status == 400:
        code, detail = "idempotency-key-missing", "this operation requires an Idempotency-Key"
    if idempotent and status == 409:
        code, title = "request-in-progress", "A request with this Idempotency-Key is in progress"
        detail = "the first request with this key has not finished; retry later"
    example: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": re.sub(r"\{([^}]+)\}", lambda m: m.group(1).replace("_", "-") + "-1", path),
    }
    if status == 422:
        example["errors"] = [
            {
                "location": ["body", "lines", "0", "quantity"],
                "message": "Input should be greater than 0",
                "type": "greater_than",
            }
        ]
    return example


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> FastJSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return FastJSONResponse(
        body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )
