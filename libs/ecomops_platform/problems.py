"""RFC 9457 problem documents: the one shape every REST error takes."""

from __future__ import annotations

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
