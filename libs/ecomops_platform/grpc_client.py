"""gRPC clients of other services: bearer token and trace context on every call, and the
structured problem a server attached to its error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from . import tracing
from .grpc_server import PROBLEM_METADATA_KEY
from .settings import CommonSettings


class _OutgoingMetadata(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        metadata = list(client_call_details.metadata or ())
        metadata.append(("authorization", f"Bearer {self._token()}"))
        metadata.extend(tracing.inject_headers().items())
        details = client_call_details._replace(metadata=metadata)
        return await continuation(details, request)


def make_channel(
    target: str,
    token: Callable[[], str],
    *,
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
    settings: CommonSettings | None = None,
) -> grpc.aio.Channel:
    """A channel to another ecomops service.

    TLS is used when a CA is given, or when ``settings`` name one
    (``ECOMOPS_GRPC_CLIENT_CA_FILE``); a client certificate is presented for mTLS when
    ``ECOMOPS_GRPC_CLIENT_CERT_FILE`` and ``ECOMOPS_GRPC_CLIENT_KEY_FILE`` are set.
    """
    if settings is not None and root_certificates is None and settings.grpc_client_ca_file:
        root_certificates = Path(settings.grpc_client_ca_file).read_bytes()
        if settings.grpc_client_cert_file and settings.grpc_client_key_file:
            certificate_chain = Path(settings.grpc_client_cert_file).read_bytes()
            private_key = Path(settings.grpc_client_key_file).read_bytes()
    interceptors = [_OutgoingMetadata(token)]
    options = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0),
    ]
    if root_certificates is not None:
        creds = grpc.ssl_channel_credentials(
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def problem_of(error: grpc.aio.AioRpcError) -> dict[str, Any] | None:
    """The problem document a ecomops server attached to an error, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == PROBLEM_METADATA_KEY:
            try:
                doc = json.loads(value)
            except (TypeError, ValueError):
                return None
            return doc if isinstance(doc, dict) else None
    return None
