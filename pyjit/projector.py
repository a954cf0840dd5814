"""The projector: brings the read models up to date from the journal, right behind the writer.

The journal writer's commit is what an answer waits for, so it carries only the journal
rows. The projector applies the same entries to `transactions`, `holds` and `accounts` in
its own transactions, with `projection_state.projected_seq` moved in each, so the read
models always equal the journal up to that seq. Whoever needs them to equal the whole
journal (reconciliation) waits for the watermark with `wait_for`.

A projection transaction commits with `synchronous_commit = off`: the read models are
derived, and a projection lost in a database crash is lost with its watermark, so the
projector redoes it from the journal at the next start. The journal's own commits stay
synchronous.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from pyjit.database import HeldConnection
from pyjit.projections import PROJECT, PROJECTED_SEQ, UNPROJECTED, projection_arguments

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

# Entries per projection transaction: small enough that folding them (about 10 µs each, on
# the event loop) never stalls the answers waiting behind it for long.
CHUNK_ENTRIES = 256
# A projection statement costs ~100 µs of the event loop whatever its size: at low rates
# the projector waits this long after a chunk that was not full, so it runs ~100 times a
# second instead of once per commit. Reconciliation waits at most this much longer.
PACE_S = 0.01
RETRY_WAIT_MAX_S = 1.0


class Projector:
    """Applies committed journal entries to the read models, in seq order, exactly once."""

    def __init__(self, pool: asyncpg.Pool, attempt_timeout_s: float = 5.0) -> None:
        self._pool = pool
        self._attempt_timeout_s = attempt_timeout_s
        self._queue: deque[tuple[int, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._connection = HeldConnection(pool, attempt_timeout_s)
        self.projected_seq = 0
        self.healthy = True

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def catch_up(self) -> None:
        """Queue what the journal has beyond the watermark (entries committed before a crash
        whose projection was not); call before the writer commits anything new."""
        async with self._pool.acquire(timeout=self._attempt_timeout_s) as connection:
            self.projected_seq = await connection.fetchval(PROJECTED_SEQ)
            rows = await connection.fetch(UNPROJECTED, self.projected_seq)
        self.enqueue([row[0] for row in rows], [row[1] for row in rows])
        if rows:
            log.info("projecting %d journal entries behind the read models", len(rows))

    def enqueue(self, seqs: Sequence[int], datas: Sequence[bytes]) -> None:
        """Entries the journal has committed, in seq order."""
        self._queue.extend(zip(seqs, datas, strict=True))
        if self._queue:
            self._wakeup.set()

    async def wait_for(self, seq: int) -> None:
        """Return once the read models include every entry up to `seq`."""
        if self.projected_seq >= seq:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        await asyncio.shield(future)

    async def run(self) -> None:
        """The projector loop; runs until cancelled."""
        failures = 0
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                try:
                    full = await self._project_chunk()
                except Exception as error:
                    failures += 1
                    await self._recover_from(error, failures)
                else:
                    failures = 0
                    if not full:
                        await asyncio.sleep(PACE_S)
        finally:
            await self._connection.release()

    async def _project_chunk(self) -> bool:
        """Project the oldest queued entries; True when the chunk was full."""
        chunk = [self._queue[index] for index in range(min(CHUNK_ENTRIES, len(self._queue)))]
        arguments = projection_arguments([seq for seq, _ in chunk], [data for _, data in chunk])
        # One statement is one transaction: the rows and the watermark move together.
        await self._connection.execute(PROJECT, *arguments)
        for _ in chunk:
            self._queue.popleft()
        self._advance(chunk[-1][0])
        return len(chunk) == CHUNK_ENTRIES

    def _advance(self, seq: int) -> None:
        if not self.healthy:
            log.info("projections succeed again")
        self.healthy = True
        self.projected_seq = seq
        waiting = []
        for wanted, future in self._waiters:
            if wanted <= seq:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((wanted, future))
        self._waiters = waiting

    async def _recover_from(self, error: Exception, failures: int) -> None:
        """After a failed projection: wait, then drop what an ambiguous commit did apply
        (the watermark says how far it got) so nothing is applied twice."""
        if self.healthy:
            log.error("projection failed, retrying: %r", error)
        self.healthy = False
        await asyncio.sleep(min(0.02 * 2**failures, RETRY_WAIT_MAX_S))
        with contextlib.suppress(Exception):
            async with self._pool.acquire(timeout=self._attempt_timeout_s) as connection:
                projected_seq = await connection.fetchval(PROJECTED_SEQ)
            while self._queue and self._queue[0][0] <= projected_seq:
                self._queue.popleft()
            if projected_seq > self.projected_seq:
                self._advance(projected_seq)
