"""`pyjit serve`: start the journal, recover, serve, and stop cleanly.

Order at start: database (embedded or configured), migrations, HTTP listener (so /health
answers at once and /ready says "recovering"), recovery, then the decider goes live with its
writer, snapshot and hold-expiry tasks. On SIGTERM: stop accepting, let in-flight requests
finish (their commits included), snapshot at a fully committed moment, exit.

Roles (`--role`, the `ROLES` table): `all` serves HTTP and gRPC from one decider, `decider`
serves only gRPC, `edge` forwards HTTP to decider shards (pyjit/rpc/roles.py). A decider
started with `--standby` follows its shard's journal and takes over when the primary dies
(pyjit/standby.py).
"""

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from portal.serving import attach as attach_portal
from portal.serving import serve_portal
from pyjit import migrations
from pyjit._engine import Engine
from pyjit.clock import Clock
from pyjit.config import Config
from pyjit.database import create_pool, migrated_pool, wait_for_database
from pyjit.decider import Decider
from pyjit.edge import ServerState, build_app, build_ops_app
from pyjit.journal import JournalWriter
from pyjit.lease import JournalLease
from pyjit.projector import Projector
from pyjit.recovery import RecoveryReport, recover
from pyjit.rpc.roles import serve_edge
from pyjit.rpc.server import DeciderServer
from pyjit.snapshots import store as store_snapshot
from pyjit.spill import VoidSpill
from pyjit.spill import adopt as adopt_spilled
from pyjit.standby import follow_and_take_over
from pyjit.webhooks_runtime import install as install_webhooks
from pyjit.webhooks_runtime import serve_worker
from pyjit.webhooks_runtime import start_background as start_webhook_consumers

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
SHUTDOWN_SNAPSHOT_TIMEOUT_S = 10.0
PERIODIC_SNAPSHOT_TIMEOUT_S = 2.0
SNAPSHOT_CHECK_S = 1.0

OnListening = Callable[[str], Awaitable[None] | None] | None


@dataclass(frozen=True)
class Role:
    """What one `pyjit serve --role NAME` process runs."""

    http: bool
    grpc: bool
    # A role without a decider of its own runs this instead of the decider's start-up.
    runner: Callable[[Config, Clock, asyncio.Event, OnListening], Awaitable[None]] | None = None


ROLES = {
    "all": Role(http=True, grpc=True),
    "decider": Role(http=False, grpc=True),
    "edge": Role(http=True, grpc=False, runner=serve_edge),
    "portal": Role(http=True, grpc=False, runner=serve_portal),
    "worker": Role(http=False, grpc=False, runner=serve_worker),
}


async def run_migrations(url: str) -> list[migrations.Migration]:
    await wait_for_database(url, attempts=1)
    pool = await create_pool(url)
    try:
        async with pool.acquire() as connection:
            return await migrations.migrate(connection)
    finally:
        await pool.close()


async def serve(
    config: Config,
    clock: Clock,
    stop: asyncio.Event | None = None,
    on_listening: OnListening = None,
    role: str = "all",
    standby: bool = False,
) -> None:
    """Run the gateway until `stop` is set or SIGTERM/SIGINT arrives."""
    stop = stop or _stop_on_signals()
    chosen = ROLES[role]
    if chosen.runner is not None:
        await chosen.runner(config, clock, stop, on_listening)
        return
    async with migrated_pool(config.database_url, config.home) as (url, pool):
        state = ServerState(config, clock, pool)
        # The webhook intake and consumers open their own pool on it (pyjit/webhooks_runtime.py).
        state.extra["database_url"] = url
        await _lease_and_serve(url, state, chosen, stop, on_listening, standby)


async def _lease_and_serve(
    url: str,
    state: ServerState,
    role: Role,
    stop: asyncio.Event,
    on_listening: OnListening,
    standby: bool,
) -> None:
    prepared: tuple[Engine, RecoveryReport] | None = None
    if standby:
        takeover = await follow_and_take_over(url, state.pool, state.clock, stop)
        if takeover is None:
            return
        lease, prepared = takeover.lease, (takeover.engine, takeover.report)
    else:
        lease = await JournalLease.acquire(url)
    # Losing the lease to another process stops this one: it drains and exits.
    keeper = asyncio.create_task(lease.keep(stop), name="journal-lease")
    try:
        await _serve_with(state, stop, on_listening, role, prepared)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await lease.release()


async def _serve_with(
    state: ServerState,
    stop: asyncio.Event,
    on_listening: OnListening,
    role: Role = ROLES["all"],
    prepared: tuple[Engine, RecoveryReport] | None = None,
) -> None:
    config = state.config
    # A gRPC-only role still answers its probes and scrapes over HTTP, and nothing else.
    app = build_app(state) if role.http else build_ops_app(state)
    # The webhook queue opens with the application, for the consumers next to the decider.
    install_webhooks(app, state)
    if role.http:
        # The portal's pages share the listener and load program documents through the
        # decider.
        attach_portal(app, state)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=DRAIN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, config.http_addr.host, config.http_addr.port, backlog=1024)
    await site.start()
    url = _listening_url(runner, config)
    if role.grpc and not role.http:
        url = f"grpc://{config.grpc_addr}"
    rpc = None
    if role.grpc:
        latency = state.metrics.grpc_seconds
        rpc = DeciderServer(
            lambda: state.decider, state.pool, state.clock, latency, config.grpc_token
        )
    if rpc is not None:
        await rpc.start(config.grpc_addr)
    log.info("listening on %s", url)
    if on_listening is not None:
        waited = on_listening(url)
        if waited is not None:
            await waited

    engine, report = prepared or await recover(state.pool, state.clock)
    # The embedded database lives in the home, so its spill needs no other name.
    spill = VoidSpill.of(config.home, config.database_url or "embedded")
    await adopt_spilled(state.pool, engine, spill)
    projector = Projector(state.pool)
    await projector.catch_up()
    state.metrics.recovery_seconds.observe(report.seconds)
    state.metrics.recovery_entries.set(report.entries_applied)
    writer = JournalWriter(state.pool, projector, config.batch_max_entries, metrics=state.metrics)
    state.metrics.journal_backlog.set_function(lambda: writer.backlog)
    decider = Decider(engine, writer, state.clock, config.commit_budget_ms, spill)
    decider.metrics = state.metrics.decision_metrics()
    tasks = [
        asyncio.create_task(writer.run(on_fenced=stop.set), name="journal-writer"),
        asyncio.create_task(projector.run(), name="projector"),
        asyncio.create_task(_snapshot_loop(state, decider), name="snapshots"),
        asyncio.create_task(_expiry_loop(config.expiry_interval_s, decider), name="expiry"),
    ]
    state.decider, state.recovery = decider, report
    tasks.extend(start_webhook_consumers(state))
    # What start-up built lives as long as the process; moving it out of the collector's
    # reach keeps full collections (tens of ms on the decision path) short and rare.
    gc.freeze()
    if rpc is not None:
        await rpc.serving()
    log.info("ready: deciding from seq %d", engine.last_seq)

    await stop.wait()
    log.info("stopping: draining in-flight requests")
    stopping = [runner.cleanup()]
    if rpc is not None:
        # New calls get UNAVAILABLE at once; calls in flight finish, commits included.
        stopping.append(rpc.stop(DRAIN_TIMEOUT_S))
    await asyncio.gather(*stopping)
    await _final_snapshot(state, decider)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    log.info("stopped at seq %d", decider.engine.last_seq)


def _listening_url(runner: web.AppRunner, config: Config) -> str:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return f"http://{address[0]}:{address[1]}"
    return config.base_url


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _final_snapshot(state: ServerState, decider: Decider) -> None:
    if decider.snapshot_seq == decider.engine.last_seq:
        return
    try:
        snapshot = await decider.quiesce_and_snapshot(SHUTDOWN_SNAPSHOT_TIMEOUT_S)
        await store_snapshot(state.pool, snapshot)
    except (TimeoutError, OSError) as error:
        # Recovery replays the journal from the previous snapshot; nothing is lost.
        log.error("no snapshot at shutdown, the journal is unreachable: %r", error)


async def _snapshot_loop(state: ServerState, decider: Decider) -> None:
    """Snapshot every interval, or sooner when many entries accumulated, so recovery has
    a short journal tail to replay."""
    config = state.config
    last_seq = decider.engine.last_seq
    last_ns = state.clock.monotonic_ns()
    while True:
        await asyncio.sleep(SNAPSHOT_CHECK_S)
        grown = decider.engine.last_seq - last_seq
        elapsed_s = (state.clock.monotonic_ns() - last_ns) / 1e9
        due = grown >= config.snapshot_every_entries or elapsed_s >= config.snapshot_interval_s
        if not due or grown == 0:
            continue
        try:
            snapshot = await decider.quiesce_and_snapshot(PERIODIC_SNAPSHOT_TIMEOUT_S)
            await store_snapshot(state.pool, snapshot)
        except Exception as error:
            log.warning("periodic snapshot skipped: %r", error)
            continue
        state.snapshots_taken += 1
        last_seq, last_ns = snapshot.seq, state.clock.monotonic_ns()


async def _expiry_loop(interval_s: float, decider: Decider) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            expired = decider.expire_holds()
        except Exception:
            # The engine refused; the next run tries again, and the error is visible.
            log.exception("hold expiry failed")
            continue
        if expired:
            log.info("hold expiry: %d journal entries", expired)
