"""Engine snapshots in PostgreSQL: the starting point of recovery."""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from pyjit.database import Connection

log = logging.getLogger(__name__)

# Older snapshots are only a fallback; a few are enough.
SNAPSHOTS_KEPT = 3


@dataclass(frozen=True)
class Snapshot:
    seq: int
    digest: str
    data: bytes


async def latest(connection: "Connection") -> Snapshot | None:
    row = await connection.fetchrow(
        "SELECT seq, digest, data FROM snapshots ORDER BY seq DESC LIMIT 1"
    )
    if row is None:
        return None
    return Snapshot(row["seq"], row["digest"], row["data"])


async def store(pool: asyncpg.Pool, snapshot: Snapshot) -> None:
    """Save `snapshot`, whose every entry is already committed, and prune old ones."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO snapshots (seq, digest, data) VALUES ($1, $2, $3) "
            "ON CONFLICT (seq) DO NOTHING",
            snapshot.seq,
            snapshot.digest,
            snapshot.data,
        )
        await connection.execute(
            "DELETE FROM snapshots WHERE seq < ("
            "  SELECT min(seq) FROM (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT $1) AS kept"
            ")",
            SNAPSHOTS_KEPT,
        )
    log.info("snapshot at seq %d stored (%d bytes)", snapshot.seq, len(snapshot.data))
