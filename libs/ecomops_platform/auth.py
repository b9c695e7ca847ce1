"""JWT bearer authentication shared by REST and gRPC.

Tokens carry ``sub`` (for customers: the customer id), ``role`` (customer, ops, partner or
service), ``iss``, ``aud``, ``iat`` and ``exp``. A customer token may also carry
``account_created_at`` (a NumericDate, seconds since the epoch like ``iat``): when the identity
provider created the customer's account (a risk signal; a value that is not a number, or lies in
the future, is ignored). Algorithms are pinned: HS256 when a shared
secret is configured (local stack, tests), RS256 through a JWKS URL in production. ``alg: none``
and any algorithm other than the pinned one are refused.

Lifetime (RFC 8725 §3.10): each role has a maximum token lifetime
(``ECOMOPS_JWT_MAX_AGE_SECONDS``; customer 24 h, ops 12 h, partner and service 1 h): a token
whose ``exp - iat`` exceeds it is refused (401) — and since ``exp`` is checked, so is one
older than that, so a stolen
long-lived token is worth little. ``iat`` is required.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt

from .errors import DependencyUnavailable, Forbidden, Unauthenticated
from .settings import CommonSettings

log = logging.getLogger("ecomops.auth")


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
    #: The token's ``account_created_at`` claim, when it has a valid one.
    account_created_at: datetime | None = None

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
# A token verified once is taken as verified for this long (never past its exp): a request is
# checked by the rate limiter and again by the route, and a client sends the same token many
# times. The cost: a signing key removed from the JWKS is still honoured this long for tokens
# already seen. Failures are never remembered.
VERIFIED_TOKEN_SECONDS = 30.0
_VERIFIED_TOKENS_MAX = 10_000

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "current_caller", default=None
)


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


class JwksCache:
    """RS256 verification keys from a JWKS URL, fetched with ``httpx.AsyncClient`` (never a
    blocking call on the event loop) and cached.

    - Keys are trusted for the response's ``Cache-Control: max-age`` (floored at
      ``MIN_TTL_SECONDS``, so ``max-age=0`` cannot make every request fetch), else for
      ``ECOMOPS_JWT_JWKS_CACHE_SECONDS``; after that the next request refetches.
    - An unknown ``kid`` refetches at most once per ``UNKNOWN_KID_INTERVAL_SECONDS``; in between
      such tokens get 401 without a fetch (an unauthenticated caller cannot make the service
      fetch keys on every request).
    - Concurrent requests share one fetch. A failed fetch keeps the keys already known (and is
      retried after ``RETRY_AFTER_FAILURE_SECONDS``); with no key to verify a token while the
      endpoint fails, the caller gets 503, not 401.
    """

    MIN_TTL_SECONDS = 10.0
    UNKNOWN_KID_INTERVAL_SECONDS = 60.0
    RETRY_AFTER_FAILURE_SECONDS = 10.0

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, Any] = {}
        self._expires = 0.0
        self._last_attempt: float | None = None
        self._failed = False
        self._generation = 0
        self._lock = asyncio.Lock()

    def cached(self, kid: str | None) -> Any | None:
        """The key already known for ``kid`` (no fetch); a token without ``kid`` matches only a
        set holding a single key."""
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def key(self, kid: str | None) -> Any | None:
        """The key for ``kid``, fetching the set when it is stale or (rate-limited) when the kid
        is unknown; None when the set has no such key."""
        generation = self._generation
        found = self.cached(kid)
        fresh = self.clock() < self._expires
        if not fresh or (found is None and self._may_refetch()):
            async with self._lock:
                if self._generation == generation and (
                    self.clock() >= self._expires
                    or (self.cached(kid) is None and self._may_refetch())
                ):
                    await self._fetch()
                found = self.cached(kid)
        if found is None and self._failed:
            raise DependencyUnavailable("the token signing keys (JWKS) cannot be fetched")
        return found

    def _may_refetch(self) -> bool:
        last = self._last_attempt
        return last is None or self.clock() - last >= self.UNKNOWN_KID_INTERVAL_SECONDS

    async def _fetch(self) -> None:
        self._last_attempt = self.clock()
        self._generation += 1
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.url, exc)
            self._failed = True
            self._expires = self.clock() + self.RETRY_AFTER_FAILURE_SECONDS
            return
        keys: dict[str, Any] = {}
        for jwk in keyset.keys:
            if jwk.public_key_use in (None, "sig"):
                keys[jwk.key_id or ""] = jwk.key
        self._keys = keys
        self._failed = False
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        ttl = float(match.group(1)) if match else float(self.ttl_seconds)
        self._expires = self.clock() + max(ttl, self.MIN_TTL_SECONDS)


def _kid(token_or_authorization: str) -> str | None:
    """The ``kid`` of a bearer token or ``Bearer <token>`` header (unverified: it only picks
    the key the signature is then checked with); None when absent or malformed."""
    value = token_or_authorization.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    try:
        header = jwt.get_unverified_header(value)
    except jwt.PyJWTError:
        return None
    if header.get("alg") != "RS256":
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else ""


def _bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; None for anything else."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class TokenVerifier:
    def __init__(self, settings: CommonSettings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._secret = settings.jwt_secret
        self._max_age = {Role(r): sec for r, sec in settings.jwt_max_age_seconds.items()}
        self._jwks: JwksCache | None = None
        self._verified: dict[str, tuple[Caller, float]] = {}
        if settings.jwt_jwks_url:
            self._jwks = JwksCache(
                settings.jwt_jwks_url, ttl_seconds=settings.jwt_jwks_cache_seconds
            )

    async def _rs256_key(self, token_or_authorization: str | None) -> Any | None:
        """The JWKS key an RS256 token needs, fetched without blocking the loop; None for other
        tokens (the sync checks then report what is wrong with them)."""
        if self._jwks is None or not token_or_authorization:
            return None
        kid = _kid(token_or_authorization)
        if kid is None:
            return None
        return await self._jwks.key(kid or None)

    async def verify_async(self, token: str) -> Caller:
        """``verify``, with the RS256 key fetched from the JWKS without blocking the loop."""
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        return self.verify(token, await self._rs256_key(token))

    async def verify_header_async(self, authorization: str | None) -> Caller:
        """``verify_header``, with the RS256 key fetched from the JWKS without blocking."""
        token = _bearer_token(authorization) if authorization else None
        if token is not None:
            remembered = self._remembered(token)
            if remembered is not None:
                return remembered
        return self.verify_header(authorization, await self._rs256_key(authorization))

    def _remembered(self, token: str) -> Caller | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        if entry[1] <= time.time():
            self._verified.pop(token, None)
            return None
        return entry[0]

    def verify(self, token: str, rs256_key: Any | None = None) -> Caller:
        """Verify a token. RS256 keys come from ``rs256_key`` or the JWKS keys already cached:
        this never fetches; the async variants fetch first."""
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed bearer token: {exc}") from None
        alg = header.get("alg")
        try:
            if self._jwks is not None and alg == "RS256":
                key = rs256_key if rs256_key is not None else self._jwks.cached(_kid(token) or None)
                if key is None:
                    raise Unauthenticated("token signing key (kid) is not known")
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
        caller = Caller(subject=subject, role=role, account_created_at=_account_created_at(claims))
        self._remember(token, caller, claims)
        return caller

    def _remember(self, token: str, caller: Caller, claims: dict[str, object]) -> None:
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            return
        if len(self._verified) >= _VERIFIED_TOKENS_MAX:
            self._verified.clear()
        self._verified[token] = (caller, min(float(expires), time.time() + VERIFIED_TOKEN_SECONDS))

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

    def verify_header(self, authorization: str | None, rs256_key: Any | None = None) -> Caller:
        if not authorization:
            raise Unauthenticated("missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "authorization must be 'Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
            )
        return self.verify(token.strip(), rs256_key)


#: The claim naming when the customer's account was created (NumericDate).
ACCOUNT_CREATED_CLAIM = "account_created_at"


def _account_created_at(claims: dict[str, object]) -> datetime | None:
    """The account's creation time from its claim; None when absent, not a number, not
    representable or in the future (beyond the clock leeway)."""
    value = claims.get(ACCOUNT_CREATED_CLAIM)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(value) or value > time.time() + _LEEWAY_SECONDS:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def mint_token(
    secret: str,
    subject: str,
    role: Role | str,
    *,
    ttl_seconds: int = 3600,
    issuer: str = "ecomops",
    audience: str = "ecomops",
    extra_claims: dict[str, Any] | None = None,
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
        **(extra_claims or {}),
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
