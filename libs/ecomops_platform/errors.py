"""Errors a service raises to its callers, transport-neutral.

An error names its kind with an HTTP-style ``status`` (the vocabulary every reader knows) and a
stable ``code``; it imports no transport. The two mappings live once each in the platform: REST
(`ecomops_platform.rest`) turns an error into an RFC 9457 problem document, gRPC
(:func:`~ecomops_platform.grpc_server.grpc_code_of`, :func:`~.grpc_server.rich_status`)
into a status code with the standard rich status (``grpc-status-details-bin``: ErrorInfo whose
metadata carries the document's members, BadRequest field violations for the fields an error
names in ``field`` or ``errors``), so that clients can read structured details such as
``shortages``. The same document as JSON in the ``ecomops-problem`` trailer is deprecated.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://ecomops.dev/problems/"


class ServiceError(Exception):
    """Base of every error that is the caller's to handle (never a 500)."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.headers = headers or {}
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


class BadRequest(ServiceError):
    status = 400
    code = "bad-request"
    title = "Bad request"


class Unauthenticated(ServiceError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class PaymentRequired(ServiceError):
    status = 402
    code = "payment-declined"
    title = "Payment declined"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class AlreadyInProgress(Conflict):
    code = "request-in-progress"
    title = "A request with this Idempotency-Key is in progress"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class Unprocessable(ServiceError):
    status = 422
    code = "validation-error"
    title = "Unprocessable request"


class RateLimited(ServiceError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class DependencyUnavailable(ServiceError):
    """A dependency (database, another service) cannot answer now; the caller may retry."""

    status = 503
    code = "dependency-unavailable"
    title = "Service temporarily unavailable"

    def __init__(self, detail: str, *, retry_after: int = 2, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)
        self.retry_after = retry_after


_TRANSIENT_NAMES = frozenset(
    {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "InterfaceError",
        "OperationalError",
        "AdminShutdownError",
        "TooManyConnectionsError",
        # sqlalchemy.exc.TimeoutError: the connection pool is exhausted.
        "TimeoutError",
    }
)


def is_transient(exc: BaseException) -> bool:
    """A failure to reach a dependency (database down, pool exhausted), not a bad request."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError | OSError):
            return True
        if type(current).__name__ in _TRANSIENT_NAMES:
            return True
        if getattr(current, "connection_invalidated", False):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_bad_input(exc: BaseException) -> bool:
    """The database refused a value the request carried (SQLSTATE class 22, "data exception":
    too long for its column, out of an integer's range, …; or the driver could not encode it).

    The request models bound every field; this is the net under them, so that a value that
    slipped through is the caller's 422 / INVALID_ARGUMENT, never a 500 — and, since the
    exception ends the unit of work, nothing of the request is written."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        if type(current).__name__ == "DataError":  # asyncpg: a parameter it cannot encode
            return True
        current = current.__cause__ or current.__context__
    return False


BAD_INPUT_DETAIL = "a value is too long or out of range for its field"


def problem_json(error: ServiceError) -> str:
    import json

    return json.dumps(error.problem(), separators=(",", ":"), default=str)
