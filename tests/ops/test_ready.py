"""Proves readiness: /ready names each dependency with its status and latency (the journal
database, Redis and RabbitMQ when configured, recovery, the writer and the projector), says
503 with the failing dependency's error when one is down, and takes probes other roles add;
/health answers liveness without touching any dependency."""

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from pyjit import health
from pyjit.clock import SystemClock
from pyjit.config import Address
from tests.gateway.conftest import Gateway, gateway_config, start_gateway, stop_gateway
from tests.grpc.cluster import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@contextlib.asynccontextmanager
async def running(
    database_url: str, session: aiohttp.ClientSession, **settings: str
) -> AsyncIterator[Gateway]:
    # Any free gRPC port: another gateway on this machine may hold the default one.
    config = gateway_config(database_url, grpc_addr=Address("127.0.0.1", 0), **settings)
    gateway = await start_gateway(config, session)
    try:
        yield gateway
    finally:
        await stop_gateway(gateway)


async def ready(gateway: Gateway) -> tuple[int, dict[str, object]]:
    async with gateway.session.get(f"{gateway.url}/ready") as response:
        return response.status, orjson.loads(await response.read())


async def test_ready_reports_every_configured_dependency(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with running(database_url, session, redis_url=REDIS_URL) as gateway:
        status, body = await ready(gateway)
    assert status == 200, body
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert set(checks) == {"journal", "recovery", "writer", "projector", "redis"}
    for name in ("journal", "redis"):
        assert checks[name]["ok"] is True, checks[name]
        assert 0 <= checks[name]["latency_ms"] < 1000


async def test_the_rabbitmq_probe_opens_a_channel_through_the_broker() -> None:
    # Probed directly: a gateway given RABBITMQ_URL also starts publishing to it.
    readiness = health.Readiness(SystemClock())
    health.add_rabbitmq(readiness, RABBITMQ_URL)
    try:
        ok, checks = await readiness.check()
        again, _ = await readiness.check()
    finally:
        await readiness.close()
    assert ok and again, checks
    assert 0 <= checks["rabbitmq"]["latency_ms"] < 1000

    down = health.Readiness(SystemClock())
    health.add_rabbitmq(down, f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    try:
        ok, checks = await down.check()
    finally:
        await down.close()
    assert not ok and checks["rabbitmq"]["error"]


async def test_a_dependency_down_makes_it_unready(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    async with running(database_url, session, redis_url=down) as gateway:
        status, body = await ready(gateway)
        async with gateway.session.get(f"{gateway.url}/health") as response:
            assert response.status == 200
    assert status == 503 and body["ready"] is False
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["redis"]["ok"] is False and checks["redis"]["error"]
    assert checks["journal"]["ok"] is True


async def test_without_redis_or_rabbitmq_configured_they_are_not_probed(
    gateway: Gateway,
) -> None:
    status, body = await ready(gateway)
    assert status == 200
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert "redis" not in checks and "rabbitmq" not in checks


async def test_probes_run_under_a_timeout_and_report_errors() -> None:
    readiness = health.Readiness(SystemClock(), timeout_s=0.05)

    async def hangs() -> dict[str, object]:
        import asyncio

        await asyncio.sleep(10)
        return {"ok": True}

    async def fails() -> None:
        raise ConnectionRefusedError("no decider")

    async def answers() -> None:
        return None

    readiness.add("decider", hangs)
    readiness.add_round_trip("queue", fails)
    readiness.add_round_trip("cache", answers)
    ok, checks = await readiness.check()
    assert ok is False
    assert checks["decider"] == {"ok": False, "error": "no answer within 0.05 s"}
    assert checks["queue"]["ok"] is False and "no decider" in str(checks["queue"]["error"])
    assert checks["cache"]["ok"] is True
    with pytest.raises(AssertionError):
        readiness.add("cache", hangs)
