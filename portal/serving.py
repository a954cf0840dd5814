"""Serving the portal: inside `pyjit serve` (one process with the gateway, loading program
documents through its decider) or alone with `pyjit serve --role portal` (loading them
over HTTP from the gateway at PYJIT_GATEWAY_URL with the admin credentials)."""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from portal.app import build_app, install, make_portal
from portal.gateway import HttpLoader, InProcessLoader
from portal.sessions import RedisHandle
from portal.settings import settings_from_env
from pyjit.clock import Clock, SystemIds
from pyjit.config import Config
from pyjit.database import migrated_pool
from pyjit.edge import ServerState
from pyjit.metrics import Metrics, mount

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0


def attach(app: web.Application, state: ServerState) -> None:
    """Serve the portal from the gateway's application; its Redis closes with the app."""
    settings = settings_from_env(SystemIds())
    redis = RedisHandle(settings.redis_url)
    portal = make_portal(
        state.pool,
        redis,
        InProcessLoader(state),
        settings,
        state.clock,
        SystemIds(),
        state.metrics,
    )
    install(app, portal)
    app.on_cleanup.append(lambda _app: redis.close())


async def serve_portal(
    config: Config,
    clock: Clock,
    stop: asyncio.Event,
    on_listening: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Run the portal alone until `stop` is set (`pyjit serve --role portal` sets it on
    SIGTERM or SIGINT)."""
    async with migrated_pool(config.database_url, config.home) as (_, pool):
        await _run(config, clock, pool, stop, on_listening)


async def _run(
    config: Config,
    clock: Clock,
    pool: Any,
    stop: asyncio.Event,
    on_listening: Callable[[str], Awaitable[None] | None] | None,
) -> None:
    settings = settings_from_env(SystemIds())
    redis = RedisHandle(settings.redis_url)
    gateway_url = os.environ.get("PYJIT_GATEWAY_URL", config.base_url)
    loader = HttpLoader(
        gateway_url, (config.gateway_username, config.gateway_password), config.admin_credentials
    )
    metrics = Metrics()
    portal = make_portal(pool, redis, loader, settings, clock, SystemIds(), metrics)
    portal.gateway_url = gateway_url
    app = build_app(portal)
    mount(app, metrics)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=DRAIN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, config.http_addr.host, config.http_addr.port)
    await site.start()
    url = next(
        (f"http://{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple)), config.base_url
    )
    log.info("portal listening on %s, gateway at %s", url, gateway_url)
    if on_listening is not None:
        waited = on_listening(url)
        if waited is not None:
            await waited
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await redis.close()
