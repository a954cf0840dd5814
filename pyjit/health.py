"""Readiness: each dependency's status and latency, for `/ready` of every role.

A probe is an async function returning at least `{"ok": bool}`; the server-side probes add
`latency_ms` and, on failure, `error`. Roles register what they depend on: the gateway its
journal database, Redis and RabbitMQ when configured, and its recovery; an edge that decides
through gRPC adds the owning decider. Probes run concurrently, each under a timeout, so one
hung dependency makes `/ready` say so instead of hanging it.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from pyjit import logs
from pyjit.clock import Clock
from pyjit.metrics import Metrics, mount

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 1.0

Probe = Callable[[], Awaitable[dict[str, object]]]
Closer = Callable[[], Awaitable[None]]


class Readiness:
    """The named probes of one process and the connections they keep open."""

    def __init__(self, clock: Clock, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._probes: dict[str, Probe] = {}
        self._closers: list[Closer] = []

    def add(self, name: str, probe: Probe, closer: Closer | None = None) -> None:
        assert name not in self._probes, f"readiness probe {name!r} registered twice"
        self._probes[name] = probe
        if closer is not None:
            self._closers.append(closer)

    def add_round_trip(
        self, name: str, round_trip: Callable[[], Awaitable[object]], closer: Closer | None = None
    ) -> None:
        """A probe that times one round trip to a server: ok, latency_ms or the error."""
        self.add(name, lambda: self._timed(round_trip), closer)

    async def check(self) -> tuple[bool, dict[str, dict[str, object]]]:
        """Whether every probe is ok, and each probe's answer."""
        names = list(self._probes)
        answers = await asyncio.gather(*(self._guarded(self._probes[name]) for name in names))
        checks = dict(zip(names, answers, strict=True))
        return all(answer.get("ok") is True for answer in answers), checks

    async def close(self) -> None:
        for closer in self._closers:
            with contextlib.suppress(Exception):
                await closer()
        self._closers.clear()

    async def _guarded(self, probe: Probe) -> dict[str, object]:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await probe()
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self._timeout_s} s"}
        except Exception as error:
            return {"ok": False, "error": repr(error)}

    async def _timed(self, round_trip: Callable[[], Awaitable[object]]) -> dict[str, object]:
        started_ns = self._clock.monotonic_ns()
        try:
            async with asyncio.timeout(self._timeout_s):
                await round_trip()
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self._timeout_s} s"}
        except Exception as error:
            return {"ok": False, "error": repr(error)}
        latency_ms = (self._clock.monotonic_ns() - started_ns) / 1e6
        return {"ok": True, "latency_ms": round(latency_ms, 3)}


def add_postgres(readiness: Readiness, name: str, pool: asyncpg.Pool) -> None:
    async def select_one() -> None:
        async with pool.acquire(timeout=PROBE_TIMEOUT_S) as connection:
            await connection.fetchval("SELECT 1", timeout=PROBE_TIMEOUT_S)

    readiness.add_round_trip(name, select_one)


def add_redis(readiness: Readiness, url: str) -> None:
    """PING over one connection kept for the probes."""
    import redis.asyncio as redis

    client: Any = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_S)

    async def ping() -> None:
        await client.ping()

    readiness.add_round_trip("redis", ping, client.aclose)


def add_rabbitmq(readiness: Readiness, url: str) -> None:
    """Opens and closes a channel on one connection kept for the probes (reconnecting when it
    has dropped): a round trip through the broker, not only a TCP connect."""
    import aio_pika

    held: list[Any] = []

    async def open_channel() -> None:
        if not held or held[0].is_closed:
            held[:] = [await aio_pika.connect(url, timeout=PROBE_TIMEOUT_S)]
        channel = await held[0].channel()
        await channel.close()

    async def close() -> None:
        if held:
            await held[0].close()

    readiness.add_round_trip("rabbitmq", open_channel, close)


async def serve_ops(address: str, metrics: Metrics, readiness: Readiness) -> web.AppRunner:
    """Listen on `address` (HOST:PORT) with /health, /ready and /metrics alone: the HTTP face
    of a process that serves nothing else over HTTP (a webhook worker). Returns the runner
    to clean up."""

    async def alive(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(request: web.Request) -> web.Response:
        ok, checks = await readiness.check()
        metrics.ready.set(1 if ok else 0)
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    app = web.Application(middlewares=[logs.request_ids])
    app.router.add_get("/health", alive)
    app.router.add_get("/ready", ready)
    mount(app, metrics)
    app.on_cleanup.append(lambda _app: readiness.close())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = address.rpartition(":")
    await web.TCPSite(runner, host.strip("[]"), int(port)).start()
    return runner
