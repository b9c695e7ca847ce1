"""Partner quickstart: stock availability over gRPC with the ecomops-contracts package.

    pip install ecomops-contracts
    ECOMOPS_GRPC=grpc.shop.example.com:443 ECOMOPS_TOKEN=<token> python partner_client.py SKU-1
"""

import os
import sys

import grpc

from ecomops.inventory.v1 import inventory_service_pb2 as pb
from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc


def main(skus: list[str]) -> int:
    target = os.environ.get("ECOMOPS_GRPC", "localhost:50052")
    if os.environ.get("ECOMOPS_GRPC_PLAINTEXT") == "1":  # a local stack has no TLS
        channel = grpc.insecure_channel(target)
    else:
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
    auth = [("authorization", f"Bearer {os.environ['ECOMOPS_TOKEN']}")]
    with channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        try:
            request = pb.GetAvailabilityRequest(skus=skus)
            answer: pb.GetAvailabilityResponse = stub.GetAvailability(
                request, metadata=auth, timeout=5
            )
        except grpc.RpcError as error:
            print(f"refused: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    for item in answer.items:
        print(f"{item.sku}: {item.available} available ({pb.SkuStatus.Name(item.status)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
