"""gRPC client channels honour ECOMOPS_GRPC_CLIENT_CA_FILE / _CERT_FILE / _KEY_FILE: TLS against
a real server with a throwaway CA, and mTLS where the server requires a client certificate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecomops_platform.auth import TokenVerifier
from ecomops_platform.grpc_client import client_tls, make_channel
from ecomops_platform.grpc_server import GrpcServer
from ecomops_platform.settings import CommonSettings
from ecomops_testing import TlsFiles

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles(tmp_path_factory.mktemp("tls"))


def settings(**files: Path) -> CommonSettings:
    return CommonSettings(
        jwt_secret=SECRET, env="test", **{f"grpc_client_{k}_file": str(v) for k, v in files.items()}
    )


@pytest.fixture
async def serve(certs: TlsFiles) -> AsyncIterator[Callable[..., Any]]:
    servers: list[GrpcServer] = []

    async def start(*, require_client_cert: bool) -> str:
        server = GrpcServer(
            service="tls-test",
            verifier=TokenVerifier(settings()),
            registrars=[],
            service_names=[],
            host="127.0.0.1",
            port=0,
            tls_cert_file=str(certs.server_cert),
            tls_key_file=str(certs.server_key),
            tls_client_ca_file=str(certs.ca) if require_client_cert else None,
        )
        await server.start()
        servers.append(server)
        return f"localhost:{server.port}"

    yield start
    for server in servers:
        await server.stop(0)


async def _check(channel: grpc.aio.Channel) -> bool:
    """True when an RPC went through (the TLS handshake succeeded)."""
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        return True
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return False
    finally:
        await channel.close()


def token() -> str:
    return "unused"


async def test_tls_with_the_configured_ca(serve: Any, certs: TlsFiles) -> None:
    target = await serve(require_client_cert=False)
    assert await _check(make_channel(target, token, settings=settings(ca=certs.ca)))
    # Without the settings the channel is plaintext: the TLS server refuses it.
    assert not await _check(make_channel(target, token, settings=settings()))
    # A CA that did not sign the server's certificate: the client refuses the server.
    rogue_ca = certs.rogue_cert.parent / "rogue-as-ca.crt"
    rogue_ca.write_bytes(certs.rogue_cert.read_bytes())
    assert not await _check(make_channel(target, token, settings=settings(ca=rogue_ca)))


async def test_mtls_needs_a_client_certificate_from_the_trusted_ca(
    serve: Any, certs: TlsFiles
) -> None:
    target = await serve(require_client_cert=True)
    without_cert = settings(ca=certs.ca)
    assert not await _check(make_channel(target, token, settings=without_cert))
    rogue = settings(ca=certs.ca, cert=certs.rogue_cert, key=certs.rogue_key)
    assert not await _check(make_channel(target, token, settings=rogue))
    good = settings(ca=certs.ca, cert=certs.client_cert, key=certs.client_key)
    assert await _check(make_channel(target, token, settings=good))


def test_a_certificate_without_its_key_is_refused(certs: TlsFiles) -> None:
    with pytest.raises(ValueError, match="go together"):
        client_tls(settings(ca=certs.ca, cert=certs.client_cert))
    with pytest.raises(ValueError, match="go together"):
        client_tls(settings(key=certs.client_key))
    assert client_tls(settings()) is None
