"""The baselines of ``make bench``, each run as its own process (``python -m bench.baselines``):

- ``http PORT``: a bare FastAPI app (``bench.common.bare_app``) under uvicorn with the services'
  defaults, for vegeta;
- ``grpc PORT``: a bare grpc.aio unary server that echoes its request
  (``ecomops.bench.v1.BareService/Echo``, ``bench/bare.proto``), for ghz;
- ``kafka TOPIC COUNT``: raw aiokafka produce of COUNT events with the outbox relay's producer
  (``ecomops_platform.events.make_producer``: idempotent, acks=all, linger 2 ms), sent the way the
  relay sends one batch (every send, then wait for all); prints one JSON line with the timing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvicorn

BATCH = 1000  # the outbox relay's batch size (ecomops_platform.outbox.OutboxRelay)


def serve_http(port: int) -> None:
    from bench.common import bare_app

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def serve_grpc(port: int) -> None:
    import grpc

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "ecomops.bench.v1.BareService",
        {"Echo": grpc.unary_unary_rpc_method_handler(echo)},  # bytes in, bytes out
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def produce(topic: str, count: int) -> dict[str, float]:
    from ecomops_platform.events import make_producer
    from ecomops_platform.settings import CommonSettings

    producer = make_producer(CommonSettings(), "bench-raw-produce")
    await producer.start()
    try:
        payload = b"\x0a\x24" + b"o" * 36 + b"\x12\x40" + b"x" * 64
        headers = [("ce_id", b"x" * 36), ("ce_type", b"ecomops.bench.v1.Raw")]
        # Warm the connection and metadata.
        await producer.send_and_wait(topic, value=payload, key=b"warm", headers=headers)
        started = time.perf_counter()
        for lo in range(0, count, BATCH):
            futures = [
                await producer.send(
                    topic, value=payload, key=f"o{i % 500}".encode(), headers=headers
                )
                for i in range(lo, min(count, lo + BATCH))
            ]
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"count": count, "elapsed": elapsed, "rate": count / elapsed}


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "http":
        serve_http(int(argv[1]))
    elif kind == "grpc":
        asyncio.run(serve_grpc(int(argv[1])))
    elif kind == "kafka":
        print(json.dumps(asyncio.run(produce(argv[1], int(argv[2])))), flush=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
