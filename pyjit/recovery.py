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
    # Of `seconds`, the part spent reading and restoring the snapshot.
    snapshot_seconds: float = 0.0

    @property
    def entries_per_second(self) -> float:
        """The journal's replay rate, without the snapshot's restore."""
        journal_seconds = self.seconds - self.snapshot_seconds
        return self.entries_applied / journal_seconds if journal_seconds > 0 else 0.0


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
        restored_ns = clock.monotonic_ns()
        applied = await _replay_journal(connection, engine)

    finished_ns = clock.monotonic_ns()
    report = RecoveryReport(
        snapshot_seq,
        applied,
        engine.last_seq,
        seconds=(finished_ns - started_ns) / 1e9,
        snapshot_seconds=(restored_ns - started_ns) / 1e9,
    )
    log.info(
        "recovered to seq %d in %.3f s: snapshot at seq %d in %.3f s, then %d journal "
        "entries at %.0f entries/s",
        report.last_seq,
        report.seconds,
        report.snapshot_seq,
        report.snapshot_seconds,
        report.entries_applied,
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
