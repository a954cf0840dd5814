"""The decider: the engine, the journal writer and the rule that binds them.

An answer leaves only after the journal entry of its decision is committed. If the commit
does not finish within the budget, the decision is voided in the engine (so no hold stays
behind) and the answer is the void's decline. A token that arrives again while its first
decision is still committing waits for that first answer and gets the identical body.
"""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from pyjit import logs
from pyjit._engine import Engine, Entry, Outcome
from pyjit.clock import Clock
from pyjit.journal import JournalWriter
from pyjit.metrics import DecisionMetrics
from pyjit.snapshots import Snapshot
from pyjit.spill import VoidSpill

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the processor receives, and what the decision log says about it."""

    status: int
    body: bytes
    token: str
    method: str
    approved: bool
    decline_reason: str | None
    replayed: bool = False
    voided: bool = False
    rule_id: str | None = None
    rule_name: str | None = None

    @classmethod
    def of(cls, outcome: Outcome, *, replayed: bool = False, voided: bool = False) -> "Answer":
        return cls(
            outcome.status,
            outcome.body,
            outcome.token,
            outcome.method,
            outcome.approved,
            outcome.decline_reason,
            replayed or outcome.replayed,
            voided,
            outcome.rule_id,
            outcome.rule_name,
        )


class NotDurable(RuntimeError):
    """Entries that could not be committed in time; the writer keeps trying."""


# A program file is applied whole while decisions wait (about 15 µs of the engine per
# object): 1 MiB, some 12,000 objects, holds them for ~0.2 s, far inside the commit budget.
# `pyjit load` splits a larger file into parts of this size.
PROGRAM_BODY_MAX = 1024 * 1024


class ProgramTooLarge(ValueError):
    """A program file larger than one load may be; it must be sent in parts."""

    def __init__(self, size: int | None = None) -> None:
        has = f", this one has {size}" if size is not None else ""
        super().__init__(
            f"a program file is loaded at most {PROGRAM_BODY_MAX} bytes at a time{has}: "
            "send it in parts (pyjit load does)"
        )


class Decider:
    """The single writer of the engine's state; every engine call goes through it."""

    def __init__(
        self,
        engine: Engine,
        writer: JournalWriter,
        clock: Clock,
        commit_budget_ms: int,
        spill: VoidSpill | None = None,
    ) -> None:
        self.engine = engine
        self.spill = spill
        self.writer = writer
        self.clock = clock
        self._budget_ns = commit_budget_ms * 1_000_000
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._admission = asyncio.Event()
        self._admission.set()
        writer.committed_seq = engine.last_seq
        self.voids = 0
        self.snapshot_seq = -1
        self.metrics: DecisionMetrics | None = None
        # The shard this decider serves, for its decision log lines.
        self.shard = 0

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def decide(self, body: bytes, received_ns: int) -> Answer:
        """Decide one JIT message and make it durable; raises the engine's input errors.

        Whichever door the message came through (HTTP, gRPC unary or stream), its decision
        is counted and logged here, once, with the caller's request id."""
        answer = await self._decide(body, received_ns)
        outcome = "approved" if answer.approved else "declined"
        latency_ns = self.clock.monotonic_ns() - received_ns
        if self.metrics is not None:
            self.metrics.decided(answer.method, outcome, answer.decline_reason, latency_ns)
        logs.log_decision(
            answer.token,
            answer.method,
            outcome,
            answer.decline_reason,
            latency_ns // 1000,
            answer.status,
            self.shard,
        )
        return answer

    async def _decide(self, body: bytes, received_ns: int) -> Answer:
        if not self._admission.is_set():
            await self._admission.wait()
        started_ns = self.clock.monotonic_ns()
        outcome = self.engine.decide(body, self.clock.now_ms())
        if self.metrics is not None:
            self.metrics.engine(self.clock.monotonic_ns() - started_ns)

        if outcome.replayed:
            first = self._pending.get(outcome.token)
            if first is not None:
                return replace(await asyncio.shield(first), replayed=True)
            return Answer.of(outcome)
        entry = outcome.entry
        if entry is None:
            return Answer.of(outcome)

        return await self._commit_or_void(outcome, entry, received_ns)

    async def _commit_or_void(self, outcome: Outcome, entry: Entry, received_ns: int) -> Answer:
        token = outcome.token
        settled: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[token] = settled
        committed = self.writer.submit(entry)
        submitted_ns = self.clock.monotonic_ns()
        remaining_s = (self._budget_ns - (submitted_ns - received_ns)) / 1e9
        try:
            async with asyncio.timeout(max(remaining_s, 0.0)):
                await asyncio.shield(committed)
            answer = Answer.of(outcome)
            if self.metrics is not None:
                self.metrics.commit_waited(self.clock.monotonic_ns() - submitted_ns)
        except TimeoutError:
            answer = await self._void(token)
        finally:
            del self._pending[token]
        settled.set_result(answer)
        return answer

    async def _void(self, token: str) -> Answer:
        """Undo a decision whose entry is not durable in time; journal the void after it,
        and keep it on local disk before the decline leaves (pyjit/spill.py)."""
        outcome = self.engine.void(token, self.clock.now_ms())
        if outcome.entry is not None:
            self.writer.submit(outcome.entry)
            if self.spill is not None:
                try:
                    await self.spill.keep(outcome.entry.data)
                except OSError as error:
                    # The decline still stands; only a restart before the journal returns
                    # would forget it.
                    log.error("void for token %s not spilled: %r", token, error)
        self.voids += 1
        if self.metrics is not None:
            self.metrics.voided()
        log.warning("commit budget exceeded for token %s: decision voided, declined", token)
        return Answer.of(outcome, voided=True)

    async def load_program(self, body: bytes, timeout_s: float) -> int:
        """Upsert a program file and wait until its entries are durable; returns how many.

        Raises `ProgramError` for a bad file and `NotDurable` if the commit takes longer
        than `timeout_s` (the entries stay queued and will be committed), or
        `ProgramTooLarge` for a body over `PROGRAM_BODY_MAX`."""
        if len(body) > PROGRAM_BODY_MAX:
            raise ProgramTooLarge(len(body))
        if not self._admission.is_set():
            await self._admission.wait()
        entries = self.engine.load(body, self.clock.now_ms())
        committed = self.writer.submit_many(entries)
        if committed is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(committed)
            except TimeoutError as error:
                raise NotDurable(f"{len(entries)} program entries not committed yet") from error
        return len(entries)

    def expire_holds(self) -> int:
        """Release the holds due now and queue their entries; returns how many entries."""
        if not self._admission.is_set():
            return 0
        entries = self.engine.expire_holds(self.clock.now_ms())
        self.writer.submit_many(entries)
        return len(entries)

    @contextlib.asynccontextmanager
    async def quiesced(self, timeout_s: float) -> AsyncIterator[None]:
        """Pause admission until every entry the engine made is committed, and keep it
        paused for the body of the `async with`. Raises `TimeoutError` if the journal is down.

        The engine's memory runs ahead of the journal, so only at such a moment do the engine,
        the journal and the read models describe the same state.
        """
        self._admission.clear()
        try:
            async with asyncio.timeout(timeout_s):
                # A request that times out during the flush adds a void entry: flush again.
                while self.writer.committed_seq < self.engine.last_seq:
                    await self.writer.flush()
            yield
        finally:
            self._admission.set()

    async def quiesce_and_snapshot(self, timeout_s: float) -> Snapshot:
        """A snapshot of a state whose every entry is committed."""
        async with self.quiesced(timeout_s):
            # Admission waits only for the copy; a large state takes seconds to write out,
            # which happens after, off the event loop, while decisions go on.
            frozen = await asyncio.to_thread(self.engine.frozen)
        data = await asyncio.to_thread(frozen.snapshot)
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        self.snapshot_seq = frozen.last_seq
        return Snapshot(frozen.last_seq, digest, data)

    def pause(self) -> None:
        """Stop admitting work (used while shutting down)."""
        self._admission.clear()
