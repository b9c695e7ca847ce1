# `helm test` check of one ecomops service (run by templates/tests/service-test.yaml with the
# service's own image): GET /readyz answers 200 and gRPC health answers SERVING, retried until
# ECOMOPS_TEST_TIMEOUT seconds have passed. Exit 0 when both hold, 1 otherwise.
import json
import os
import sys
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

http_url = os.environ["ECOMOPS_TEST_HTTP"].rstrip("/") + "/readyz"
grpc_target = os.environ.get("ECOMOPS_TEST_GRPC", "")
deadline = time.monotonic() + float(os.environ.get("ECOMOPS_TEST_TIMEOUT", "60"))


def readyz():
    try:
        with urllib.request.urlopen(http_url, timeout=5) as answer:  # noqa: S310 - in-cluster URL
            return answer.status == 200, json.loads(answer.read() or b"{}")
    except Exception as exc:  # noqa: BLE001 - reported and retried
        return False, repr(exc)


def grpc_health():
    if not grpc_target:
        return True, "skipped (gRPC over TLS: checked by /readyz and the startup probe)"
    try:
        with grpc.insecure_channel(grpc_target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            return answer.status == health_pb2.HealthCheckResponse.SERVING, name
    except grpc.RpcError as exc:
        return False, f"{exc.code().name}: {exc.details()}"


while True:
    http_ok, http_detail = readyz()
    grpc_ok, grpc_detail = grpc_health()
    if http_ok and grpc_ok:
        print(f"ok: {http_url} 200 {http_detail}; gRPC health {grpc_target}: {grpc_detail}")
        sys.exit(0)
    if time.monotonic() > deadline:
        print(f"FAILED: {http_url}: {http_detail}; gRPC health {grpc_target}: {grpc_detail}")
        sys.exit(1)
    time.sleep(3)
