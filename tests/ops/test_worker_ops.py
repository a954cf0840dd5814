"""Proves a webhook worker, which serves nothing else over HTTP, answers its probes and
scrapes on PYJIT_OPS_ADDR: /health at once, /ready with its database's status and latency,
/metrics with the webhook series."""

import asyncio
import contextlib

import aiohttp
import orjson

from pyjit.clock import SystemClock
from pyjit.config import Config
from pyjit.server import run_migrations
from pyjit.webhooks_runtime import serve_worker
from tests.grpc.cluster import free_port


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    for _ in range(200):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with session.get(url) as response:
                return response.status, await response.read()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_a_worker_answers_probes_on_its_ops_address(database_url: str) -> None:
    await run_migrations(database_url)
    port = free_port()
    config = Config(database_url=database_url, ops_addr=f"127.0.0.1:{port}")
    stop = asyncio.Event()
    worker = asyncio.create_task(serve_worker(config, SystemClock(), stop))
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            assert (await get(session, f"{base}/health"))[0] == 200
            status, body = await get(session, f"{base}/ready")
            ready = orjson.loads(body)
            status_metrics, text = await get(session, f"{base}/metrics")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
    assert status == 200 and ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["database"]["latency_ms"] >= 0
    assert status_metrics == 200 and b"pyjit_webhook_dead_letters_total" in text
