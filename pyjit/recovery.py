"""Recovery: rebuild the engine from the latest snapshot and the journal after it."""

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from pyjit.database import Connection

from pyjit import snapshots
from pyjit._engine import Engine
from pyjit.clock import Clock

log = logging.getLogger(__name__)

CHUNK_ENTRIES = 20_000


@dataclass(frozen=True)
class RecoveryReport:
    snapshot_seq: int
    entries_applied: int
    last_seq: int
    seconds: float

    @property
    def entries_per_second(self) -> float:
        return self.entries_applied / self.seconds if self.seconds > 0 else 0.0


async def recover(pool: asyncpg.Pool, clock: Clock) -> tuple[Engine, RecoveryReport]:
    """The engine as the journal says it was, and how long it took to get there.

    Entries are streamed with a server-side cursor and applied in chunks on a worker thread
    (the engine releases the GIL), while the next chunk is already being fetched.
    """
    started_ns = clock.monotonic_ns()
    async with pool.acquire() as connection:
        snapshot = await snapshots.latest(connection)
        engine = Engine.restore(snapshot.data) if snapshot is not None else Engine()
        snapshot_seq = engine.last_seq
        applied = await _replay_journal(connection, engine)

    seconds = (clock.monotonic_ns() - started_ns) / 1e9
    report = RecoveryReport(snapshot_seq, applied, engine.last_seq, seconds)
    log.info(
        "recovered to seq %d from snapshot at seq %d plus %d journal entries in %.3f s "
        "(%.0f entries/s)",
        report.last_seq,
        report.snapshot_seq,
        report.entries_applied,
        report.seconds,
        report.entries_per_second,
    )
    return engine, report


async def _replay_journal(connection: "Connection", engine: Engine) -> int:
    applied = 0
    applying: asyncio.Future[int] | None = None
    async with connection.transaction(readonly=True):
        cursor = await connection.cursor(
            "SELECT data FROM journal WHERE seq > $1 ORDER BY seq", engine.last_seq
        )
        while True:
            rows = await cursor.fetch(CHUNK_ENTRIES)
            if applying is not None:
                applied += await applying
                applying = None
            if not rows:
                break
            chunk = [row[0] for row in rows]
            applying = asyncio.ensure_future(asyncio.to_thread(engine.apply_many, chunk))
    return applied
