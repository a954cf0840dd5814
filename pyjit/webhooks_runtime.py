"""Wiring of the webhook intake, its consumers and the decision relay into the processes.

`install` puts `POST /webhooks/marqeta` on the edge's application and connects its queue
when the application starts. `start_background` runs the consumers (and, with RabbitMQ, the
relay of decisions to the `transactions` exchange) next to the decider in `pyjit serve`.
`serve_worker` is `pyjit serve --role worker`: consumers only, reaching the decider over
HTTP, as an edge or a decider in another process serves it.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aio_pika
import aiohttp
import asyncpg
from aiohttp import web

from pyjit import health
from pyjit.clock import Clock
from pyjit.config import Config
from pyjit.consumers import EventRejected, LedgerAnswer, Reconciler
from pyjit.database import create_pool, open_database, wait_for_database
from pyjit.edge import basic_header
from pyjit.metrics import METRICS
from pyjit.outbox import PostgresQueue, RabbitQueue
from pyjit.publication import Publisher
from pyjit.webhooks import ROUTE, Event, EventQueue, IntakeSettings, intake_handler

if TYPE_CHECKING:
    from pyjit.edge import ServerState
    from pyjit.metrics import Metrics

log = logging.getLogger(__name__)

QUEUE_KEY = "webhook_queue"
POOL_KEY = "webhook_pool"
DEPTH_SAMPLE_S = 1.0
WEBHOOK_POOL_SIZE = 12
PROGRAM_TIMEOUT_S = 30.0
LEDGER_REQUEST_TIMEOUT_S = 10.0

DECISION_OF = "SELECT approved AND voided_by_seq IS NULL FROM transactions WHERE token = $1"


def settings_of(config: Config) -> IntakeSettings:
    expected = None
    if config.webhook_username:
        expected = basic_header(config.webhook_username, config.webhook_password)
    return IntakeSettings(expected, config.webhook_secret, config.webhook_max_age_s)


async def open_queue(config: Config, pool: asyncpg.Pool) -> PostgresQueue | RabbitQueue:
    if config.rabbitmq_url:
        return await RabbitQueue(config.rabbitmq_url, pool).connect()
    return PostgresQueue(pool)


async def _webhook_pool(url: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=WEBHOOK_POOL_SIZE)
    assert pool is not None
    return pool


def install(app: web.Application, state: "ServerState") -> None:
    """Route the intake on the gateway's `app`; the consumers next to the decider find the
    queue and its pool in `state.extra` once the application has started."""
    url = state.extra.get("database_url")
    install_intake(app, state.config, state.clock, state.pool, url, state.extra)


def install_intake(
    app: web.Application,
    config: Config,
    clock: Clock,
    pool: asyncpg.Pool,
    database_url: str | None,
    shared: dict[str, Any],
) -> None:
    """Route `POST /webhooks/marqeta` on `app` (a gateway's or an edge's); its queue
    connects when the application starts and is kept in `shared`."""

    def queue() -> EventQueue | None:
        opened: EventQueue | None = shared.get(QUEUE_KEY)
        return opened

    def observe(status: str, seconds: float) -> None:
        metrics = app.get(METRICS)
        if metrics is not None:
            result = "accepted" if status == "200" else "rejected"
            metrics.webhooks_received.labels("delivery", result).inc()

    async def connect(_: web.Application) -> None:
        # The gateway's own pool is a handful of connections sized for the decision path;
        # the intake and the consumers get theirs, so a burst of deliveries never queues
        # behind the journal.
        own = pool if database_url is None else await _webhook_pool(database_url)
        shared[POOL_KEY] = own
        shared[QUEUE_KEY] = await open_queue(config, own)

    async def close(_: web.Application) -> None:
        opened = shared.pop(QUEUE_KEY, None)
        if isinstance(opened, RabbitQueue):
            await opened.close()
        own = shared.pop(POOL_KEY, None)
        if own is not None and own is not pool:
            await own.close()

    app.router.add_post(ROUTE, intake_handler(settings_of(config), clock, queue, observe))
    app.on_startup.append(connect)
    app.on_cleanup.append(close)


class InProcessLedger:
    """The decider of this process."""

    def __init__(self, state: "ServerState", pool: asyncpg.Pool) -> None:
        self._state = state
        self._pool = pool

    async def _decider(self) -> Any:
        # Consumers start after recovery (see `start_background`), so the decider is live.
        assert self._state.decider is not None, "consumers run only once the decider is live"
        return self._state.decider

    async def decide(self, body: bytes) -> LedgerAnswer:
        from pyjit._engine import MessageError, TokenConflict

        decider = await self._decider()
        try:
            answer = await decider.decide(body, self._state.clock.monotonic_ns())
        except (MessageError, TokenConflict) as error:
            raise EventRejected(f"{error.field}: {error}") from error
        return LedgerAnswer(answer.status, answer.approved, answer.replayed)

    async def load(self, body: bytes) -> list[tuple[str, str]]:
        from pyjit._engine import ProgramError

        decider = await self._decider()
        try:
            await decider.load_program(body, PROGRAM_TIMEOUT_S)
        except ProgramError as error:
            return list(error.problems)
        return []

    async def decision_of(self, jit_token: str) -> bool | None:
        approved: bool | None = await self._pool.fetchval(DECISION_OF, jit_token)
        if approved is not None:
            return approved
        # The read model trails the journal: before calling a token unknown, wait until it
        # holds every decision committed so far.
        decider = await self._decider()
        await decider.writer.projector.wait_for(decider.writer.committed_seq)
        approved = await self._pool.fetchval(DECISION_OF, jit_token)
        return approved


class RemoteLedger:
    """The decider behind another process's HTTP edge (`--role worker`)."""

    def __init__(self, config: Config, session: aiohttp.ClientSession, pool: asyncpg.Pool):
        self._url = config.base_url
        self._jit = {
            "Authorization": basic_header(config.gateway_username, config.gateway_password).decode()
        }
        self._admin = {"Authorization": basic_header(*config.admin_credentials).decode()}
        self._session = session
        self._pool = pool

    async def decide(self, body: bytes) -> LedgerAnswer:
        async with self._session.post(self._url + "/jit", data=body, headers=self._jit) as got:
            await got.read()
            if got.status in (400, 409):
                raise EventRejected(f"the gateway refused the message: HTTP {got.status}")
            if got.status not in (200, 402):
                raise ConnectionError(f"the gateway answered HTTP {got.status}")
            return LedgerAnswer(got.status, got.status == 200, replayed=False)

    async def load(self, body: bytes) -> list[tuple[str, str]]:
        url = self._url + "/admin/program"
        async with self._session.post(url, data=body, headers=self._admin) as got:
            payload = await got.json(content_type=None)
            if got.status == 400:
                return [(p["path"], p["message"]) for p in payload.get("problems", [])]
            if got.status != 200:
                raise ConnectionError(f"the gateway answered HTTP {got.status}")
            return []

    async def decision_of(self, jit_token: str) -> bool | None:
        approved: bool | None = await self._pool.fetchval(DECISION_OF, jit_token)
        return approved


def _observer(metrics: "Metrics") -> Any:
    def observe(result: str) -> None:
        if result == "retried":
            metrics.webhook_retries.labels("event").inc()
        elif result == "dead_lettered":
            metrics.webhook_dead_letters.labels("event").inc()

    return observe


def _timed(reconciler: Reconciler, clock: Clock, metrics: "Metrics") -> Any:
    async def handle(event: Event) -> None:
        started_ns = clock.monotonic_ns()
        try:
            await reconciler.handle(event)
        finally:
            elapsed_s = (clock.monotonic_ns() - started_ns) / 1e9
            metrics.webhook_seconds.labels(event.event_type).observe(elapsed_s)

    return handle


def start_background(state: "ServerState") -> list["asyncio.Task[None]"]:
    """The consumers and the decision relay, as tasks next to the decider."""
    queue = state.extra.get(QUEUE_KEY)
    assert queue is not None, "install() connects the queue when the application starts"
    pool = state.extra.get(POOL_KEY, state.pool)
    reconciler = Reconciler(pool, InProcessLedger(state, pool))
    state.extra["reconciler"] = reconciler
    handler = _timed(reconciler, state.clock, state.metrics)
    tasks = [
        asyncio.create_task(queue.consume(handler, _observer(state.metrics)), name="consumers"),
        asyncio.create_task(reconciler.run_parking(), name="parked-events"),
    ]
    depth = state.metrics.webhook_queue_depth.labels(
        "rabbitmq" if isinstance(queue, RabbitQueue) else "postgres"
    )
    tasks.append(asyncio.create_task(_sample_depth(queue, depth), name="queue-depth"))
    if state.config.rabbitmq_url:
        publisher = Publisher(state.config.rabbitmq_url, pool)
        tasks.append(asyncio.create_task(publisher.run(), name="publication"))
    return tasks


async def _sample_depth(queue: PostgresQueue | RabbitQueue, gauge: Any) -> None:
    """Keep the queue-depth gauge within a second of the truth."""
    while True:
        try:
            gauge.set(await queue.depth())
        except (OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPError) as error:
            log.debug("queue depth not sampled: %r", error)
        await asyncio.sleep(DEPTH_SAMPLE_S)


async def serve_worker(
    config: Config,
    clock: Clock,
    stop: asyncio.Event,
    on_listening: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Consume webhook events until `stop` is set; decisions go to the edge over HTTP.

    `on_listening` hears `worker:<edge URL>` once the consumers run."""
    from pyjit.metrics import Metrics

    database = await asyncio.to_thread(open_database, config.database_url, config.home)
    try:
        await wait_for_database(database.url)
        pool = await create_pool(database.url)
        timeout = aiohttp.ClientTimeout(total=LEDGER_REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            queue = await open_queue(config, pool)
            reconciler = Reconciler(pool, RemoteLedger(config, session, pool))
            metrics = Metrics()
            ops = await _serve_worker_ops(config, clock, pool, metrics)
            tasks = [
                asyncio.create_task(
                    queue.consume(_timed(reconciler, clock, metrics), _observer(metrics))
                ),
                asyncio.create_task(reconciler.run_parking()),
            ]
            log.info("worker consuming webhook events; decisions at %s", config.base_url)
            if on_listening is not None:
                waited = on_listening(f"worker:{config.base_url}")
                if waited is not None:
                    await waited
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(queue, RabbitQueue):
                await queue.close()
            if ops is not None:
                await ops.cleanup()
        await pool.close()
    finally:
        with contextlib.suppress(Exception):
            database.release()


async def _serve_worker_ops(
    config: Config, clock: Clock, pool: asyncpg.Pool, metrics: "Metrics"
) -> web.AppRunner | None:
    """The worker's probes and scrapes on PYJIT_OPS_ADDR, when it is set (its HTTP address
    is the edge it sends decisions to)."""
    if not config.ops_addr:
        return None
    readiness = health.Readiness(clock)
    health.add_postgres(readiness, "database", pool)
    if config.rabbitmq_url:
        health.add_rabbitmq(readiness, config.rabbitmq_url)
    return await health.serve_ops(config.ops_addr, metrics, readiness)
