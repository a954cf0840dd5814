"""Declines given while the journal was unreachable, kept on local disk until it returns.

A decision whose entry misses the commit budget is voided and answered 402. The void entry
waits in the writer's queue like any other, but if the process stops before PostgreSQL comes
back, the queue is gone and the processor's "declined" would be forgotten: a re-sent token
could then be decided afresh. So the void is appended to a file under `PYJIT_HOME` and
fsynced before the 402 leaves, and the next start adopts every spilled void the journal does
not hold (`Engine.adopt_void`) before it serves.

The file is local to the host: a standby on another machine cannot see it.
"""

import asyncio
import hashlib
import logging
import os
from pathlib import Path

import asyncpg

from pyjit._engine import Engine, JournalError
from pyjit.projections import JOURNAL_APPEND, journal_arguments, journal_row

log = logging.getLogger(__name__)


class VoidSpill:
    """An append-only file of void entries, one JSON entry per line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, home: Path, database_url: str) -> "VoidSpill":
        """The spill of one journal: named by its database, so gateways that share a home
        (tests, a laptop) never adopt each other's declines."""
        name = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        return cls(home / "spill" / f"voids-{name}.jsonl")

    async def keep(self, data: bytes) -> None:
        """Append one void entry and make it durable on disk."""
        await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        assert b"\n" not in data, "a journal entry is one line of JSON"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as spill:
            spill.write(data + b"\n")
            spill.flush()
            os.fsync(spill.fileno())

    def read(self) -> list[bytes]:
        """The spilled entries; a line torn by a crash mid-write was never answered."""
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        return [line for line in lines if line.endswith(b"}")]

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


async def adopt(pool: asyncpg.Pool, engine: Engine, spill: VoidSpill) -> int:
    """Journal every spilled void the journal lacks, then empty the spill; returns how many
    entries were added. Runs after recovery and before the decider takes traffic."""
    rows = []
    for data in spill.read():
        try:
            entry = engine.adopt_void(data)
        except JournalError as error:
            # Not an entry this engine wrote: nothing can be restored from it.
            log.error("spilled line in %s is not a void entry: %s", spill.path, error)
            continue
        if entry is not None:
            rows.append(journal_row(entry.seq, entry.data))
    if rows:
        async with pool.acquire() as connection:
            await connection.execute(JOURNAL_APPEND, *journal_arguments(rows))
        log.warning("adopted %d declines answered while the journal was down", len(rows))
    spill.clear()
    return len(rows)
