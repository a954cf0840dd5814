"""The journal writer: a single task that makes engine entries durable by group commit.

Everything submitted while one commit is in flight goes into the next commit, so the number
of commits per second stays near the database's round-trip rate while the number of entries
per commit grows with load. Batches are committed strictly in `seq` order: a failed batch is
retried (with the entries queued meanwhile appended) before anything after it, so the
journal never has a gap that a later entry depends on.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from pyjit.projections import ALREADY_COMMITTED, APPEND, batch_arguments

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from pyjit._engine import Entry

log = logging.getLogger(__name__)


@dataclass
class WriterStats:
    batches: int = 0
    entries: int = 0
    largest_batch: int = 0
    failed_attempts: int = 0


class JournalWriter:
    """Owns the order and durability of journal entries."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        batch_max_entries: int = 4096,
        attempt_timeout_s: float = 5.0,
        retry_wait_max_s: float = 1.0,
    ) -> None:
        self._pool = pool
        self._batch_max_entries = batch_max_entries
        self._attempt_timeout_s = attempt_timeout_s
        self._retry_wait_max_s = retry_wait_max_s
        self._queue: deque[tuple[int, bytes]] = deque()
        # Entries queued together share one future: the commit that carries them.
        self._queued_future: asyncio.Future[None] | None = None
        self._in_flight: list[asyncio.Future[None]] = []
        self._wakeup = asyncio.Event()
        self._held: PoolConnectionProxy[asyncpg.Record] | None = None
        self._last_submitted_seq = 0
        self._last_taken_seq = 0
        self.committed_seq = 0
        self.healthy = True
        self.stats = WriterStats()

    @property
    def backlog(self) -> int:
        """Entries submitted and not yet committed (queued or in the commit in flight)."""
        return len(self._queue) + self._in_flight_entries

    _in_flight_entries = 0

    def submit(self, entry: "Entry") -> asyncio.Future[None]:
        """Queue one entry; the future resolves when the commit that carries it succeeds."""
        return self.submit_raw(entry.seq, entry.data)

    def submit_raw(self, seq: int, data: bytes) -> asyncio.Future[None]:
        assert seq > self._last_submitted_seq, "journal entries must be submitted in seq order"
        self._last_submitted_seq = seq
        self._queue.append((seq, data))
        if self._queued_future is None:
            self._queued_future = asyncio.get_running_loop().create_future()
            self._wakeup.set()
        return self._queued_future

    def submit_many(self, entries: Sequence["Entry"]) -> asyncio.Future[None] | None:
        """Queue entries in order; the future of the last one, or None when empty."""
        future = None
        for entry in entries:
            future = self.submit(entry)
        return future

    async def flush(self) -> None:
        """Wait until every entry submitted so far is committed."""
        pending = [*self._in_flight]
        if self._queued_future is not None:
            pending.append(self._queued_future)
        if pending:
            await asyncio.gather(*(asyncio.shield(future) for future in pending))

    async def run(self) -> None:
        """The writer loop; runs until cancelled."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                seqs: list[int] = []
                datas: list[bytes] = []
                self._take(seqs, datas)
                if not seqs:
                    continue
                await self._commit_with_retry(seqs, datas)
        finally:
            await self._let_go()

    def _take(self, seqs: list[int], datas: list[bytes]) -> None:
        """Move queued entries (up to the batch size) into the batch being committed."""
        room = self._batch_max_entries - len(seqs)
        while self._queue and room > 0:
            seq, data = self._queue.popleft()
            self._last_taken_seq = seq
            seqs.append(seq)
            datas.append(data)
            room -= 1
        self._in_flight_entries = len(seqs)
        if self._queued_future is not None:
            self._in_flight.append(self._queued_future)
            self._queued_future = None
        if self._queue:
            # What did not fit waits for the next commit under a fresh future.
            self._queued_future = asyncio.get_running_loop().create_future()
            self._wakeup.set()

    async def _commit_with_retry(self, seqs: list[int], datas: list[bytes]) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.02, max=self._retry_wait_max_s),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    if attempt.retry_state.attempt_number > 1:
                        await self._drop_committed(seqs, datas)
                        self._take(seqs, datas)
                    await self._commit(seqs, datas)
                except Exception as error:
                    self._note_failure(error, len(seqs))
                    raise
        self._note_success(seqs)

    async def _commit(self, seqs: list[int], datas: list[bytes]) -> None:
        if not seqs:
            return
        arguments = batch_arguments(seqs, datas)
        connection = await self._connection()
        try:
            await connection.execute(APPEND, *arguments, timeout=self._attempt_timeout_s)
        except BaseException:
            await self._let_go()
            raise

    async def _connection(self) -> "PoolConnectionProxy[asyncpg.Record]":
        """The writer's own connection, kept between commits: returning it to the pool
        after each batch would cost a reset round trip per commit."""
        if self._held is None:
            self._held = await self._pool.acquire(timeout=self._attempt_timeout_s)
        return self._held

    async def _let_go(self) -> None:
        """Give the connection back (the pool replaces it if it broke)."""
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.release(held), self._attempt_timeout_s)

    async def _drop_committed(self, seqs: list[int], datas: list[bytes]) -> None:
        """Remove from the batch what an earlier, ambiguous attempt did commit."""
        async with self._pool.acquire(timeout=self._attempt_timeout_s) as connection:
            rows = await connection.fetch(ALREADY_COMMITTED, seqs, timeout=self._attempt_timeout_s)
        committed = {row[0] for row in rows}
        if committed:
            kept = [
                (seq, data) for seq, data in zip(seqs, datas, strict=True) if seq not in committed
            ]
            seqs[:] = [seq for seq, _ in kept]
            datas[:] = [data for _, data in kept]

    def _note_failure(self, error: Exception, size: int) -> None:
        self.stats.failed_attempts += 1
        if self.healthy:
            log.error("journal commit of %d entries failed, retrying: %r", size, error)
        self.healthy = False

    def _note_success(self, seqs: list[int]) -> None:
        if not self.healthy:
            log.info("journal commits succeed again")
        self.healthy = True
        self.committed_seq = self._last_taken_seq
        self.stats.batches += 1
        self.stats.entries += len(seqs)
        self.stats.largest_batch = max(self.stats.largest_batch, len(seqs))
        self._in_flight_entries = 0
        for future in self._in_flight:
            if not future.done():
                future.set_result(None)
        self._in_flight.clear()
