"""The journal writer: a single task that makes engine entries durable by group commit.

Everything submitted while one commit is in flight goes into the next commit, so the number
of commits per second stays near the database's round-trip rate while the number of entries
per commit grows with load. Batches are committed strictly in `seq` order: a failed batch is
retried (with the entries queued meanwhile appended) before anything after it, so the
journal never has a gap that a later entry depends on.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

if TYPE_CHECKING:
    from pyjit._engine import Entry

log = logging.getLogger(__name__)

APPEND = "SELECT journal_append($1::bigint[], $2::bytea[])"


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
        self._last_submitted_seq = 0
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
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            seqs: list[int] = []
            datas: list[bytes] = []
            self._take(seqs, datas)
            if not seqs:
                continue
            await self._commit_with_retry(seqs, datas)

    def _take(self, seqs: list[int], datas: list[bytes]) -> None:
        """Move queued entries (up to the batch size) into the batch being committed."""
        room = self._batch_max_entries - len(seqs)
        while self._queue and room > 0:
            seq, data = self._queue.popleft()
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
                if attempt.retry_state.attempt_number > 1:
                    self._take(seqs, datas)
                try:
                    await self._commit(seqs, datas)
                except Exception as error:
                    self._note_failure(error, len(seqs))
                    raise
        self._note_success(seqs)

    async def _commit(self, seqs: list[int], datas: list[bytes]) -> None:
        async with self._pool.acquire(timeout=self._attempt_timeout_s) as connection:
            await connection.fetchval(APPEND, seqs, datas, timeout=self._attempt_timeout_s)

    def _note_failure(self, error: Exception, size: int) -> None:
        self.stats.failed_attempts += 1
        if self.healthy:
            log.error("journal commit of %d entries failed, retrying: %r", size, error)
        self.healthy = False

    def _note_success(self, seqs: list[int]) -> None:
        if not self.healthy:
            log.info("journal commits succeed again")
        self.healthy = True
        self.committed_seq = seqs[-1]
        self.stats.batches += 1
        self.stats.entries += len(seqs)
        self.stats.largest_batch = max(self.stats.largest_batch, len(seqs))
        self._in_flight_entries = 0
        for future in self._in_flight:
            if not future.done():
                future.set_result(None)
        self._in_flight.clear()
