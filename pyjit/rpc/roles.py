"""`pyjit serve --role edge`: the stateless HTTP edge in front of decider shards.

It opens its database (only for recorded stand-ins), applies migrations, connects one pooled
channel per shard of `PYJIT_SHARDS`, serves the processor's /jit until stopped, and
reconciles its stand-in answers with their deciders in the background.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from pyjit.clock import Clock
from pyjit.config import Config, ConfigError
from pyjit.database import migrated_pool
from pyjit.routing import Router, ShardListError, parse_shards
from pyjit.rpc.forwarding import EdgeState, build_edge_app, deliver_standin
from pyjit.standin import Reconciler, StandInPolicy

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0

OnListening = Callable[[str], Awaitable[None] | None] | None


def edge_settings(config: Config) -> tuple[Router, StandInPolicy]:
    """The shard router and stand-in policy, or every problem with their settings."""
    problems = []
    shards = []
    policy = StandInPolicy()
    if not config.shards:
        problems.append("PYJIT_SHARDS is required for --role edge (the deciders' addresses)")
    else:
        try:
            shards = parse_shards(config.shards)
        except ShardListError as error:
            problems.append(str(error))
    try:
        policy = StandInPolicy.parse(
            config.standin_approve_up_to, config.standin_currency, config.standin_mccs
        )
    except ValueError as error:
        problems.append(f"PYJIT_STANDIN_*: {error}")
    if problems:
        raise ConfigError(problems)
    return Router(shards, config.grpc_token), policy


async def serve_edge(
    config: Config, clock: Clock, stop: asyncio.Event, on_listening: OnListening
) -> None:
    router, policy = edge_settings(config)
    try:
        async with migrated_pool(config.database_url, config.home) as (_url, pool):
            await _run(EdgeState(config, clock, pool, router, policy), stop, on_listening)
    finally:
        await router.close()


async def _run(state: EdgeState, stop: asyncio.Event, on_listening: OnListening) -> None:
    config = state.config
    runner = web.AppRunner(build_edge_app(state), access_log=None, shutdown_timeout=DRAIN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, config.http_addr.host, config.http_addr.port, backlog=1024)
    await site.start()
    url = f"http://{config.http_addr}"
    for address in runner.addresses:
        if isinstance(address, tuple):
            url = f"http://{address[0]}:{address[1]}"
    log.info("edge listening on %s for %d shards", url, len(state.router.shards))
    if on_listening is not None:
        waited = on_listening(url)
        if waited is not None:
            await waited

    async def deliver(holder: str, message: bytes, approved: bool) -> str:
        return await deliver_standin(state.router, holder, message, approved)

    reconciler = asyncio.create_task(Reconciler(state.pool, deliver).run(), name="stand-ins")
    await stop.wait()
    log.info("edge stopping: draining in-flight requests")
    await runner.cleanup()
    reconciler.cancel()
    await asyncio.gather(reconciler, return_exceptions=True)
