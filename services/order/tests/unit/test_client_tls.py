"""The order service's channels to inventory, pricing and risk use the ECOMOPS_GRPC_CLIENT_*
TLS settings: against a real mTLS server (throwaway CA), they connect with the configured client
certificate and fail without it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecomops_platform.auth import TokenVerifier
from ecomops_platform.grpc_server import GrpcServer
from ecomops_platform.settings import CommonSettings
from ecomops_testing import TlsFiles
from order_service.adapters.clients import Channels

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


async def _reachable(channel: grpc.aio.Channel) -> bool:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=3
        )
        return True
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return False


async def test_order_channels_use_the_client_tls_settings(tmp_path: Path) -> None:
    certs = TlsFiles(tmp_path)
    common = CommonSettings(jwt_secret=SECRET, env="test")
    server = GrpcServer(
        service="inventory",
        verifier=TokenVerifier(common),
        registrars=[],
        service_names=[],
        host="127.0.0.1",
        port=0,
        tls_cert_file=str(certs.server_cert),
        tls_key_file=str(certs.server_key),
        tls_client_ca_file=str(certs.ca),
    )
    await server.start()
    target = f"localhost:{server.port}"
    mtls = common.model_copy(
        update={
            "grpc_client_ca_file": str(certs.ca),
            "grpc_client_cert_file": str(certs.client_cert),
            "grpc_client_key_file": str(certs.client_key),
        }
    )
    no_cert = common.model_copy(update={"grpc_client_ca_file": str(certs.ca)})
    try:
        for settings, expected in ((mtls, True), (no_cert, False), (common, False)):
            channels = Channels(
                inventory=target, pricing=target, risk=target, token=lambda: "t", settings=settings
            )
            try:
                for channel in (channels.inventory, channels.pricing, channels.risk):
                    assert await _reachable(channel) is expected
            finally:
                await channels.close()
    finally:
        await server.stop(0)


def test_half_configured_mtls_is_refused_at_start_up(tmp_path: Path) -> None:
    certs = TlsFiles(tmp_path)
    half = CommonSettings(
        jwt_secret=SECRET, env="test", grpc_client_cert_file=str(certs.client_cert)
    )
    with pytest.raises(ValueError, match="go together"):
        Channels(inventory="x:1", pricing="x:1", risk="x:1", token=lambda: "t", settings=half)
