"""JWT bearer authentication shared by REST and gRPC.

Tokens carry ``sub`` (for customers: the customer id), ``role`` (customer, ops, partner or
service), ``iss``, ``aud``, ``iat`` and ``exp``. Algorithms are pinned: HS256 when a shared
secret is configured (local stack, tests), RS256 through a JWKS URL in production. ``alg: none``
and any algorithm other than the pinned one are refused.

Lifetime (RFC 8725 §3.10): each role has a maximum token lifetime
(``ECOMOPS_JWT_MAX_AGE_SECONDS``; customer 24 h, ops 12 h, partner and service 1 h): a token
whose ``exp - iat`` exceeds it is refused (401) — and since ``exp`` is checked, so is one
older than that, so a stolen
long-lived token is worth little. ``iat`` is required.
"""

from __future__ import annotations

import contextvars
import enum
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from .errors import Forbidden, Unauthenticated
from .settings import CommonSettings


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    OPS = "ops"
    PARTNER = "partner"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the verified subject of the bearer token and its role."""

    subject: str
    role: Role

    @property
    def is_customer(self) -> bool:
        return self.role is Role.CUSTOMER

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.OPS, Role.SERVICE)

    def require(self, *roles: Role | str) -> Caller:
        allowed = {Role(r) for r in roles}
        if self.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"role '{self.role.value}' may not do this; needs one of: {names}")
        return self

    def may_see(self, owner_id: str | None) -> bool:
        """Customers see only what they own; every other role sees everything."""
        return not self.is_customer or owner_id == self.subject


_LEEWAY_SECONDS = 5

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "current_caller", default=None
)


class TokenVerifier:
    def __init__(self, settings: CommonSettings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._secret = settings.jwt_secret
        self._max_age = {Role(r): sec for r, sec in settings.jwt_max_age_seconds.items()}
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, timeout=5)

    def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed bearer token: {exc}") from None
        alg = header.get("alg")
        try:
            if self._jwks is not None and alg == "RS256":
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = self._decode(token, key, "RS256")
            elif self._secret is not None and alg == "HS256":
                claims = self._decode(token, self._secret, "HS256")
            else:
                raise Unauthenticated(f"token algorithm '{alg}' is not accepted")
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer is not accepted") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        role_claim = claims.get("role")
        try:
            role = Role(str(role_claim))
        except ValueError:
            raise Forbidden(f"token has no known role (got {role_claim!r})") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("token has no subject")
        self._check_lifetime(claims, role)
        return Caller(subject=subject, role=role)

    def _check_lifetime(self, claims: dict[str, object], role: Role) -> None:
        """RFC 8725 §3.10: a token may not live longer than its role allows. (Its age, now - iat,
        is then bounded too: exp is checked, and exp - iat <= limit.)"""
        limit = self._max_age.get(role, 0)
        if not limit:
            return
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise Unauthenticated("token has no valid 'iat' (issued-at) claim")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise Unauthenticated("token has no valid 'exp' claim")
        if expires - issued > limit + _LEEWAY_SECONDS:
            raise Unauthenticated(
                f"token lifetime exceeds the maximum for role '{role.value}' ({limit} s)"
            )

    def _decode(self, token: str, key: object, alg: str) -> dict[str, object]:
        return jwt.decode(
            token,
            key,  # type: ignore[arg-type]
            algorithms=[alg],
            audience=self._audience,
            issuer=self._issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            leeway=_LEEWAY_SECONDS,
        )

    def verify_header(self, authorization: str | None) -> Caller:
        if not authorization:
            raise Unauthenticated("missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "authorization must be 'Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
            )
        return self.verify(token.strip())


def mint_token(
    secret: str,
    subject: str,
    role: Role | str,
    *,
    ttl_seconds: int = 3600,
    issuer: str = "ecomops",
    audience: str = "ecomops",
) -> str:
    """Sign an HS256 token (local stack, tests, service-to-service calls with a shared secret)."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": Role(role).value,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class ServiceTokenSource:
    """The bearer token a service presents to the services it calls."""

    def __init__(self, settings: CommonSettings, service: str) -> None:
        self._settings = settings
        self._service = service
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        if self._settings.service_token_file:
            return Path(self._settings.service_token_file).read_text().strip()
        if self._settings.jwt_secret is None:
            raise RuntimeError("no ECOMOPS_SERVICE_TOKEN_FILE and no HS256 secret to mint one")
        now = time.time()
        if self._token is None or now > self._expires - 60:
            self._token = mint_token(
                self._settings.jwt_secret,
                f"service:{self._service}",
                Role.SERVICE,
                ttl_seconds=900,
                issuer=self._settings.jwt_issuer,
                audience=self._settings.jwt_audience,
            )
            self._expires = now + 900
        return self._token
