"""The journal writer: a single task that makes engine entries durable by group commit.

Everything submitted while one commit is in flight goes into the next commit, so the number
of commits per second stays near the database's round-trip rate while the number of entries
per commit grows with load. Batches are committed strictly in `seq` order: a failed batch is
retried (with the entries queued meanwhile appended) before anything after it, so the
journal never has a gap that a later entry depends on.

A commit carries only the journal rows, built from the engine's `Entry` attributes without
parsing its JSON; the committed entries are then handed to the projector
(pyjit/projector.py), which brings the read models up to date in its own transactions.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from tenacity import AsyncRetrying, retry_if_not_exception_type, wait_exponential

from pyjit.database import HeldConnection
from pyjit.metrics import Metrics
from pyjit.projections import (
    ALREADY_COMMITTED,
    JOURNAL_APPEND,
    JournalRow,
    journal_arguments,
    journal_row,
)
from pyjit.projector import Projector

if TYPE_CHECKING:
    from pyjit._engine import Entry

log = logging.getLogger(__name__)


class JournalFenced(RuntimeError):
    """Another writer's entries stand at seqs this writer committed to: it must stop."""


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
        projector: Projector,
        batch_max_entries: int = 4096,
        attempt_timeout_s: float = 5.0,
        retry_wait_max_s: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._pool = pool
        self.projector = projector
        self._batch_max_entries = batch_max_entries
        self._attempt_timeout_s = attempt_timeout_s
        self._retry_wait_max_s = retry_wait_max_s
        # Entries queued together share one future, resolved by the commit that carries
        # them. A group is taken whole, so a future resolves only when every entry under it
        # is committed; only `submit_many` makes a group larger than a batch.
        self._groups: deque[tuple[list[JournalRow], asyncio.Future[None]]] = deque()
        self._queued_entries = 0
        self._in_flight: list[asyncio.Future[None]] = []
        self._wakeup = asyncio.Event()
        self._connection = HeldConnection(pool, attempt_timeout_s)
        self._last_submitted_seq = 0
        self._last_taken_seq = 0
        self.committed_seq = 0
        self.healthy = True
        self.stats = WriterStats()
        self._metrics = metrics

    @property
    def backlog(self) -> int:
        """Entries submitted and not yet committed (queued or in the commit in flight)."""
        return self._queued_entries + self._in_flight_entries

    _in_flight_entries = 0

    def submit(self, entry: "Entry") -> asyncio.Future[None]:
        """Queue one entry; the future resolves when the commit that carries it succeeds."""
        return self._submit_rows([_row_of(entry)])

    def submit_raw(self, seq: int, data: bytes) -> asyncio.Future[None]:
        """Queue an entry known only by its JSON (docs/journal.md)."""
        return self._submit_rows([journal_row(seq, data)])

    def submit_many(self, entries: Sequence["Entry"]) -> asyncio.Future[None] | None:
        """Queue entries in order to be committed in one transaction, however many: a
        program file is durable whole or not at all. Their future, or None when empty."""
        if not entries:
            return None
        return self._submit_rows([_row_of(entry) for entry in entries])

    def _submit_rows(self, rows: list[JournalRow]) -> asyncio.Future[None]:
        """Queue rows (in seq order) into one group, so one commit carries them all."""
        assert rows[0][0] > self._last_submitted_seq, "journal entries must be submitted in order"
        self._last_submitted_seq = rows[-1][0]
        groups = self._groups
        if not groups or len(groups[-1][0]) + len(rows) > self._batch_max_entries:
            # Rows that do not fit start a group; one larger than a batch is committed alone
            # (see `_take`).
            groups.append(([], asyncio.get_running_loop().create_future()))
            self._wakeup.set()
        group, future = groups[-1]
        group.extend(rows)
        self._queued_entries += len(rows)
        return future

    async def flush(self) -> None:
        """Wait until every entry submitted so far is committed."""
        pending = [*self._in_flight, *(future for _, future in self._groups)]
        if pending:
            await asyncio.gather(*(asyncio.shield(future) for future in pending))

    async def run(self, on_fenced: Callable[[], None] | None = None) -> None:
        """The writer loop; runs until cancelled, or until another writer is found in the
        journal, when it calls `on_fenced` and stops writing for good."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                batch: list[JournalRow] = []
                self._take(batch)
                if not batch:
                    continue
                await self._commit_with_retry(batch)
        except JournalFenced as error:
            self.healthy = False
            log.critical("journal writer stopped: %s", error)
            if on_fenced is not None:
                on_fenced()
        finally:
            await self._connection.release()

    def _take(self, batch: list[JournalRow]) -> list[JournalRow]:
        """Move whole queued groups, up to the batch size, into the batch being committed;
        returns the entries moved."""
        taken: list[JournalRow] = []
        groups = self._groups
        room = self._batch_max_entries - len(batch)
        # An empty batch always takes the first group, even one larger than a batch.
        while groups and (len(taken) + len(groups[0][0]) <= room or (not batch and not taken)):
            rows, future = groups.popleft()
            taken.extend(rows)
            self._in_flight.append(future)
        if taken:
            self._queued_entries -= len(taken)
            self._last_taken_seq = taken[-1][0]
            batch.extend(taken)
        self._in_flight_entries = len(batch)
        if groups:
            # What did not fit goes into the next commit.
            self._wakeup.set()
        return taken

    async def _commit_with_retry(self, batch: list[JournalRow]) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_not_exception_type(JournalFenced),
            wait=wait_exponential(multiplier=0.02, max=self._retry_wait_max_s),
            reraise=True,
        )
        # Everything taken is committed once this returns, including what an ambiguous
        # attempt committed and the retry left out: all of it goes to the projector.
        committed = list(batch)
        started_s = asyncio.get_running_loop().time()
        async for attempt in retrying:
            with attempt:
                try:
                    if attempt.retry_state.attempt_number > 1:
                        await self._drop_committed(batch)
                        committed.extend(self._take(batch))
                    await self._commit(batch)
                except Exception as error:
                    self._note_failure(error, len(batch))
                    raise
        self._note_success(len(batch))
        if self._metrics is not None:
            # The event loop's monotonic clock, the one asyncio's timeouts use.
            elapsed_s = asyncio.get_running_loop().time() - started_s
            self._metrics.commit_seconds.observe(elapsed_s)
            self._metrics.commit_batch_entries.observe(len(committed))
        self.projector.enqueue([row[0] for row in committed], [row[6] for row in committed])

    async def _commit(self, batch: list[JournalRow]) -> None:
        if not batch:
            return
        arguments = journal_arguments(batch)
        await self._connection.execute(JOURNAL_APPEND, *arguments)

    async def _drop_committed(self, batch: list[JournalRow]) -> None:
        """Remove from the batch what an earlier, ambiguous attempt did commit."""
        seqs = [row[0] for row in batch]
        async with self._pool.acquire(timeout=self._attempt_timeout_s) as connection:
            rows = await connection.fetch(ALREADY_COMMITTED, seqs, timeout=self._attempt_timeout_s)
        ours = {row[0]: row[6] for row in batch}
        foreign = [row["seq"] for row in rows if bytes(row["data"]) != ours[row["seq"]]]
        if foreign:
            # Our seqs hold someone else's entries: another process writes this journal, and
            # nothing this one decides can be made durable without contradicting it.
            raise JournalFenced(f"seqs {foreign[:5]} hold another writer's entries")
        committed = {row["seq"] for row in rows}
        if committed:
            batch[:] = [row for row in batch if row[0] not in committed]

    def _note_failure(self, error: Exception, size: int) -> None:
        self.stats.failed_attempts += 1
        if self._metrics is not None:
            self._metrics.commit_failures.inc()
        if self.healthy:
            log.error("journal commit of %d entries failed, retrying: %r", size, error)
        self.healthy = False

    def _note_success(self, size: int) -> None:
        if not self.healthy:
            log.info("journal commits succeed again")
        self.healthy = True
        self.committed_seq = self._last_taken_seq
        self.stats.batches += 1
        self.stats.entries += size
        self.stats.largest_batch = max(self.stats.largest_batch, size)
        self._in_flight_entries = 0
        for future in self._in_flight:
            if not future.done():
                future.set_result(None)
        self._in_flight.clear()


def _row_of(entry: "Entry") -> JournalRow:
    return (
        entry.seq,
        entry.kind,
        entry.token,
        entry.account_token,
        entry.posted_delta_minor,
        entry.held_delta_minor,
        entry.data,
    )
