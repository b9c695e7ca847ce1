"""The console's settings (``CONSOLE_*``); the token issuer is the platform's
(``ECOMOPS_JWT_*``)."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Where ``services/console/build.sh`` writes the single-page app in a source tree.
SOURCE_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
#: Where a wheel or image carries it (``console_service/web``), when it was built into it.
PACKAGED_DIST = Path(__file__).resolve().parent / "web"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    env: str = Field(default="local", validation_alias="ECOMOPS_ENV")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    # The services' REST base URLs (no /v1): the local ports of `make run` by default.
    order_url: str = "http://127.0.0.1:8001"
    inventory_url: str = "http://127.0.0.1:8002"
    pricing_url: str = "http://127.0.0.1:8003"
    recommendation_url: str = "http://127.0.0.1:8004"
    risk_url: str = "http://127.0.0.1:8005"
    support_url: str = "http://127.0.0.1:8006"
    # One call to a service; a service slower than this makes its KPIs null with a reason.
    upstream_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Calls the overview makes at once (its time series is one call per bucket and service).
    upstream_concurrency: int = Field(default=8, ge=1, le=64)
    # Key of the CSRF tokens (HMAC of the session); several replicas must share it. Unset
    # outside production: a random key per process (a restart signs everybody out).
    session_secret: str = ""
    # Send the cookies with Secure (HTTPS only): on in production, where TLS terminates in front.
    cookie_secure: bool | None = None
    # The built single-page app; default: the packaged copy, else the source tree's web/dist.
    static_dir: str | None = None
    # OpenID Connect sign-in (production): the issuer whose discovery document names the
    # authorization and token endpoints; its access tokens must be tokens the services accept
    # (ECOMOPS_JWT_JWKS_URL, ECOMOPS_JWT_ISSUER and ECOMOPS_JWT_AUDIENCE set to that provider).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_url: str | None = None
    oidc_scopes: str = "openid profile"

    @model_validator(mode="after")
    def _complete(self) -> ConsoleSettings:
        if not self.session_secret:
            if self.env == "production":
                raise ValueError("set CONSOLE_SESSION_SECRET (32+ characters) in production")
            self.session_secret = secrets.token_urlsafe(32)
        elif self.env == "production" and len(self.session_secret) < 32:
            raise ValueError("CONSOLE_SESSION_SECRET must be at least 32 characters")
        if self.cookie_secure is None:
            self.cookie_secure = self.env == "production"
        oidc = (self.oidc_issuer, self.oidc_client_id, self.oidc_redirect_url)
        if any(oidc) and not all(oidc):
            raise ValueError(
                "OIDC sign-in needs CONSOLE_OIDC_ISSUER, CONSOLE_OIDC_CLIENT_ID and "
                "CONSOLE_OIDC_REDIRECT_URL together"
            )
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    def service_urls(self) -> dict[str, str]:
        return {
            "order": self.order_url.rstrip("/"),
            "inventory": self.inventory_url.rstrip("/"),
            "pricing": self.pricing_url.rstrip("/"),
            "recommendation": self.recommendation_url.rstrip("/"),
            "risk": self.risk_url.rstrip("/"),
            "support": self.support_url.rstrip("/"),
        }

    def dist_dir(self) -> Path:
        if self.static_dir:
            return Path(self.static_dir)
        if (PACKAGED_DIST / "index.html").is_file():
            return PACKAGED_DIST
        return SOURCE_DIST
