"""gRPC clients of other services: bearer token and trace context (the OpenTelemetry client
interceptors, a client span per call, when spans are exported) on every call, and the
structured problem a server attached to its error (read from the standard rich status,
``grpc-status-details-bin``; from the deprecated ``ecomops-problem`` trailer of older servers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from . import tracing
from .grpc_server import ERROR_DOMAIN, PROBLEM_METADATA_KEY, STATUS_DETAILS_METADATA_KEY
from .settings import CommonSettings


class _OutgoingMetadata(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: Callable[[], str], *, trace_context: bool) -> None:
        self._token = token
        self._trace_context = trace_context

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        metadata = list(client_call_details.metadata or ())
        metadata.append(("authorization", f"Bearer {self._token()}"))
        if self._trace_context:
            metadata.extend(tracing.inject_headers().items())
        details = client_call_details._replace(metadata=metadata)
        return await continuation(details, request)


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a TLS channel presents and trusts (PEM bytes); ``None`` roots: the system's."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None


def client_tls(settings: CommonSettings) -> ClientTls | None:
    """The TLS material ``ECOMOPS_GRPC_CLIENT_*`` name, read now; None: plaintext channels.

    ``ECOMOPS_GRPC_CLIENT_CA_FILE`` alone: TLS, the server verified against that CA.
    ``_CERT_FILE`` + ``_KEY_FILE``: mTLS, the client presents that certificate (the server is
    verified against the CA file when set, else the system roots). A certificate without its
    key (or the reverse) is a configuration error, refused at start-up rather than falling back
    to plaintext; so is an unreadable file.
    """
    ca, cert, key = (
        settings.grpc_client_ca_file,
        settings.grpc_client_cert_file,
        settings.grpc_client_key_file,
    )
    if bool(cert) != bool(key):
        raise ValueError(
            "ECOMOPS_GRPC_CLIENT_CERT_FILE and ECOMOPS_GRPC_CLIENT_KEY_FILE go together "
            "(mTLS needs both)"
        )
    if not (ca or cert):
        return None
    return ClientTls(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )


def make_channel(
    target: str,
    token: Callable[[], str],
    *,
    settings: CommonSettings | None = None,
    tls: ClientTls | None = None,
) -> grpc.aio.Channel:
    """A channel to another ecomops service.

    TLS is used when ``tls`` is given, else when ``settings`` name client TLS material (see
    ``client_tls``); otherwise the channel is plaintext (local stack, tests). Every service
    building a client channel passes its ``CommonSettings``.
    """
    if tls is None and settings is not None:
        tls = client_tls(settings)
    # Exporting spans (decided when the channel is made: after configure_tracing, as the
    # runtime's start hooks are): the OpenTelemetry client interceptors, a client span per
    # call and its context sent along. Otherwise only the current context is sent along (the
    # instrumentation costs more per call than that, for spans nobody sees).
    if tracing.exporting():
        interceptors = [_OutgoingMetadata(token, trace_context=False)]
        interceptors.extend(tracing.grpc_client_interceptors())
    else:
        interceptors = [_OutgoingMetadata(token, trace_context=True)]
    options = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0),
    ]
    if tls is not None:
        creds = grpc.ssl_channel_credentials(
            root_certificates=tls.root_certificates,
            private_key=tls.private_key,
            certificate_chain=tls.certificate_chain,
        )
        return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


@dataclass(frozen=True, slots=True)
class RichStatus:
    """What the standard ``grpc-status-details-bin`` trailer of an error carries."""

    code: int
    message: str
    error_info: error_details_pb2.ErrorInfo | None
    field_violations: list[tuple[str, str]]
    retry_delay_seconds: float | None


def rich_status_of(error: grpc.aio.AioRpcError) -> RichStatus | None:
    """The ``google.rpc.Status`` a server attached to an error, decoded; None without one (or
    when it does not match the call's status code, or cannot be decoded)."""
    raw = next(
        (v for k, v in error.trailing_metadata() or () if k == STATUS_DETAILS_METADATA_KEY), None
    )
    if not isinstance(raw, bytes):
        return None
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return None
    if status.code != error.code().value[0]:
        return None
    info: error_details_pb2.ErrorInfo | None = None
    violations: list[tuple[str, str]] = []
    delay: float | None = None
    for detail in status.details:
        # Any.Unpack answers False (and leaves the message empty) for another type.
        candidate = error_details_pb2.ErrorInfo()
        if detail.Unpack(candidate):
            info = info or candidate
            continue
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations.extend((v.field, v.description) for v in bad.field_violations)
            continue
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            delay = retry.retry_delay.ToTimedelta().total_seconds()
    return RichStatus(status.code, status.message, info, violations, delay)


def _metadata_value(value: str) -> Any:
    # The inverse of grpc_server.metadata_value: JSON where it reads as JSON, else the text.
    try:
        return json.loads(value)
    except ValueError:
        return value


def _problem_from_status(rich: RichStatus) -> dict[str, Any] | None:
    info = rich.error_info
    if info is None or info.domain != ERROR_DOMAIN or "type" not in info.metadata:
        return None
    meta = dict(info.metadata)
    doc: dict[str, Any] = {"type": meta.pop("type"), "title": meta.pop("title", "")}
    try:
        doc["status"] = int(meta.pop("status", "0"))
    except ValueError:
        doc["status"] = 0
    doc["detail"] = rich.message
    meta.pop("service", None)
    doc.update({k: _metadata_value(v) for k, v in meta.items()})
    return doc


def _problem_from_trailer(error: grpc.aio.AioRpcError) -> dict[str, Any] | None:
    for key, value in error.trailing_metadata() or ():
        if key == PROBLEM_METADATA_KEY:
            try:
                doc = json.loads(value)
            except (TypeError, ValueError):
                return None
            return doc if isinstance(doc, dict) else None
    return None


def problem_of(error: grpc.aio.AioRpcError) -> dict[str, Any] | None:
    """The problem document a ecomops server attached to an error, if any: rebuilt from the
    standard rich status (ErrorInfo metadata: type, title, status, extra members; the message
    as ``detail``), else read from the deprecated ``ecomops-problem`` trailer."""
    rich = rich_status_of(error)
    doc = _problem_from_status(rich) if rich is not None else None
    return doc if doc is not None else _problem_from_trailer(error)
