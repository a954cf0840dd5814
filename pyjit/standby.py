"""A standby decider: follow a shard's journal, take over when its primary dies.

The standby recovers like any decider, then applies each entry the primary commits (it reads
the journal every `poll_s`), while one connection of its own waits in `pg_advisory_lock` on
the journal writer's key. PostgreSQL grants that lock the moment the primary's session ends
(a crash closes its socket), so the standby needs no timeout guess to know the primary is
gone. The lock is held by the primary's lease connection, not by the one that commits, so a
commit the primary had already sent may still land a moment after the lock is free: the
standby waits until no other session is writing the journal or the read models and the
journal's end stands still (`settle`), and only then applies the journal's last entries.
(Were it to miss one, the new primary's writer would find foreign entries at its seqs and
stop rather than fork the journal.) Every answer the primary gave was
committed first, so the new primary's state includes all of them and refuses nothing the
old one accepted; what the primary decided but never committed was never answered.
"""

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from pyjit._engine import Engine
from pyjit.clock import Clock
from pyjit.lease import JOURNAL_WRITER_LOCK, JournalLease
from pyjit.recovery import RecoveryReport, recover

log = logging.getLogger(__name__)

TAIL_CHUNK = 20_000
SETTLE_CHECK_S = 0.02
SETTLE_MAX_S = 5.0
# Statements of another session still writing this shard's journal or read models.
OTHERS_WRITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND state IN ('active', 'idle in transaction')
  AND query ~* '(insert into journal|projection_state)'
"""


@dataclass(frozen=True)
class Takeover:
    lease: JournalLease
    engine: Engine
    report: RecoveryReport
    catch_up_s: float


async def follow_and_take_over(
    url: str, pool: asyncpg.Pool, clock: Clock, stop: asyncio.Event, poll_s: float = 0.05
) -> Takeover | None:
    """Follow the journal until the writer lease is ours; None if `stop` is set first."""
    engine, report = await recover(pool, clock)
    locker = await asyncpg.connect(url, timeout=5)
    lock = asyncio.create_task(locker.execute("SELECT pg_advisory_lock($1)", JOURNAL_WRITER_LOCK))
    stopping = asyncio.create_task(stop.wait())
    log.info("standby: following the journal from seq %d", engine.last_seq)
    taken = False
    try:
        while not lock.done() and not stopping.done():
            await asyncio.wait([lock, stopping], timeout=poll_s, return_when="FIRST_COMPLETED")
            await tail(pool, engine)
        taken = lock.done() and lock.result() is not None
    finally:
        stopping.cancel()
        if not taken:
            lock.cancel()
            await asyncio.gather(lock, return_exceptions=True)
            await locker.close()
    if not taken:
        return None

    locked_ns = clock.monotonic_ns()
    try:
        await settle(pool)
    except TimeoutError:
        log.warning("standby: the journal is still being written %.0f s on; going on", SETTLE_MAX_S)
    applied = await tail(pool, engine)
    catch_up_s = (clock.monotonic_ns() - locked_ns) / 1e9
    log.warning(
        "standby: took the writer lease; applied the last %d entries in %.3f s, "
        "deciding from seq %d",
        applied,
        catch_up_s,
        engine.last_seq,
    )
    return Takeover(JournalLease(url, locker), engine, report, catch_up_s)


async def tail(pool: asyncpg.Pool, engine: Engine) -> int:
    """Apply every committed entry after the engine's last seq; returns how many."""
    applied = 0
    async with pool.acquire() as connection:
        while True:
            rows = await connection.fetch(
                "SELECT data FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2",
                engine.last_seq,
                TAIL_CHUNK,
            )
            if not rows:
                return applied
            applied += await asyncio.to_thread(engine.apply_many, [row[0] for row in rows])


async def settle(pool: asyncpg.Pool) -> None:
    """Wait until the dead primary's last statements have finished: no other session is
    writing, and the journal's last seq is the same on two checks in a row."""
    async with pool.acquire() as connection, asyncio.timeout(SETTLE_MAX_S):
        last = None
        while True:
            writing = await connection.fetchval(OTHERS_WRITING)
            end = await connection.fetchval("SELECT coalesce(max(seq), 0) FROM journal")
            if writing == 0 and end == last:
                return
            last = end
            await asyncio.sleep(SETTLE_CHECK_S)
