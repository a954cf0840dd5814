"""The journal's single-writer lease.

The engine's memory is the only place where a check and its hold are one step, so exactly one
decider may write a journal. The lease is a PostgreSQL session advisory lock held on a
connection of its own for the life of the process: a second `pyjit serve` on the same
database refuses to start instead of deciding against a state it cannot see.
"""

import asyncpg

# An arbitrary constant that names "the pyjit journal writer" among advisory locks; it must
# differ from the migrations' key, which a starting writer takes while it holds this one.
JOURNAL_WRITER_LOCK = 0x7079_6A69_74_77


class LeaseTaken(RuntimeError):
    """Another decider holds this journal's writer lease."""


class JournalLease:
    """Holds the writer lease until `release`."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    @classmethod
    async def acquire(cls, url: str) -> "JournalLease":
        connection = await asyncpg.connect(url)
        taken = await connection.fetchval("SELECT pg_try_advisory_lock($1)", JOURNAL_WRITER_LOCK)
        if not taken:
            await connection.close()
            raise LeaseTaken(
                "another pyjit decider is already writing this journal; stop it first "
                "(one writer per database)"
            )
        return cls(connection)

    @property
    def held(self) -> bool:
        """False once the lease's connection is gone (the database restarted or dropped it)."""
        return not self._connection.is_closed()

    async def release(self) -> None:
        if not self._connection.is_closed():
            await self._connection.close()
