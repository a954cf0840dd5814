"""The journal's single-writer lease.

The engine's memory is the only place where a check and its hold are one step, so exactly one
decider may write a journal. The lease is a PostgreSQL session advisory lock held on a
connection of its own for the life of the process: a second `pyjit serve` on the same
database refuses to start instead of deciding against a state it cannot see.
"""

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger(__name__)

# An arbitrary constant that names "the pyjit journal writer" among advisory locks; it must
# differ from the migrations' key, which a starting writer takes while it holds this one.
JOURNAL_WRITER_LOCK = 0x7079_6A69_74_77


class LeaseTaken(RuntimeError):
    """Another decider holds this journal's writer lease."""


class JournalLease:
    """Holds the writer lease until `release`."""

    def __init__(self, url: str, connection: asyncpg.Connection) -> None:
        self._url = url
        self._connection = connection

    @classmethod
    async def acquire(cls, url: str) -> "JournalLease":
        return cls(url, await _locked_connection(url))

    async def keep(self, lost: asyncio.Event, interval_s: float = 1.0) -> None:
        """Check the lease every `interval_s`; when its connection dies (the database
        restarted), take it again. Sets `lost` and returns if another process took it first.

        While the database is away nothing can be committed anyway. Should another process
        start in the moment before the lease is retaken, the first of the two to find the
        other's entries at its seqs stops (`JournalFenced` in the writer)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self._connection.fetchval("SELECT 1", timeout=interval_s)
                continue
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await self.release()
            try:
                self._connection = await _locked_connection(self._url)
                log.warning("journal writer lease taken again after its connection dropped")
            except LeaseTaken as error:
                log.critical("journal writer lease lost: %s", error)
                lost.set()
                return
            except (OSError, asyncpg.PostgresError, TimeoutError):
                continue

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._connection.close(), 1.0)


async def _locked_connection(url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(url, timeout=5)
    taken = await connection.fetchval("SELECT pg_try_advisory_lock($1)", JOURNAL_WRITER_LOCK)
    if not taken:
        await connection.close()
        raise LeaseTaken(
            "another pyjit decider is already writing this journal; stop it first "
            "(one writer per database)"
        )
    return connection
