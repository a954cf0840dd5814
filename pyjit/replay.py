"""`pyjit replay`: send a file of card transactions to a running gateway as JIT messages.

Messages go out on one keep-alive session with a bounded number in flight, either as fast as
the gateway answers or at a fixed rate. At a fixed rate, latency is measured from the time
each message was due, not from when it finally left, so a slow gateway cannot hide its
queueing (no coordinated omission). An authorization's clearing or reversal is sent only
after the authorization was approved, `clearing_lag` messages later.
"""

import asyncio
import contextlib
import gc
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from pyjit.clock import Clock
from pyjit.gateway_client import GatewayClient, GatewayError
from pyjit.messages import AUTHORIZATION, CLEARING, REFUND, REVERSAL, Message, plan
from pyjit.profile import Profile, build_program, opening_minor, run_prefix
from pyjit.program import parts_of
from pyjit.report import build as build_report
from pyjit.report import reconcile_expectations
from pyjit.transactions import CardTransaction

LATENCY_MAX_US = 60_000_000
REQUEST_TIMEOUT_S = 10.0


@dataclass
class Expected:
    """What the answers received say an account's balances must be, in minor units."""

    posted_minor: int = 0
    held_minor: int = 0


@dataclass
class ReplayResults:
    """Everything observed while sending."""

    sent: int = 0
    approved: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    declines: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    latency_us: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, LATENCY_MAX_US, 3))
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=dict)
    open_holds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        bad_statuses = sum(n for status, n in self.statuses.items() if status not in (200, 402))
        return bad_statuses + sum(self.transport_errors.values())

    def expect(self, account: str) -> Expected:
        found = self.expected.get(account)
        if found is None:
            found = self.expected[account] = Expected()
        return found


# A gateway that stopped answering fails every message after it: past this many transport
# failures in a row the replay stops instead of counting the rest of the file as errors.
GIVE_UP_AFTER_FAILURES = 200


class GatewayGone(OSError):
    """The gateway stopped answering in the middle of a replay; `results` holds what was
    answered before, which is still worth writing out."""

    def __init__(self, message: str, results: "ReplayResults") -> None:
        super().__init__(message)
        self.results = results


class Sender:
    """Sends planned messages and records every answer."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        clock: Clock,
        concurrency: int,
        rate: float | None,
        clearing_lag: int,
        on_sent: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._session = session
        self._url = url
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._interval_ns = int(1e9 / rate) if rate else 0
        self._lag = clearing_lag
        self._on_sent = on_sent
        self._ready: deque[tuple[int, Message]] = deque()
        self._dispatched = 0
        self._failing = 0
        self.results = ReplayResults()

    async def run(self, messages: Sequence[Message]) -> ReplayResults:
        started_ns = self._clock.monotonic_ns()
        schedule_ns = started_ns
        tasks: set[asyncio.Task[None]] = set()
        source = iter(messages)
        exhausted = False
        while True:
            if self._failing >= GIVE_UP_AFTER_FAILURES:
                await _cancel(tasks)
                self.results.seconds = (self._clock.monotonic_ns() - started_ns) / 1e9
                raise GatewayGone(
                    f"{self._failing} messages in a row got no answer "
                    f"({self.results.sent} answered before)",
                    self.results,
                )
            message = self._next(source, exhausted)
            if message is None and not exhausted:
                exhausted = True
                continue
            if message is None:
                if not tasks:
                    break
                # Nothing to send until an answer arrives: the schedule restarts from now.
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                schedule_ns = self._clock.monotonic_ns() - self._dispatched * self._interval_ns
                continue
            due_ns = schedule_ns + self._dispatched * self._interval_ns
            await self._wait_until(due_ns)
            await self._slots.acquire()
            task = asyncio.create_task(self._send(message, due_ns, self._dispatched))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self._dispatched += 1
        self.results.seconds = (self._clock.monotonic_ns() - started_ns) / 1e9
        return self.results

    def _next(self, source: Iterator[Message], exhausted: bool) -> Message | None:
        if self._ready and (exhausted or self._ready[0][0] <= self._dispatched):
            return self._ready.popleft()[1]
        if exhausted:
            return None
        return next(source, None)

    async def _wait_until(self, due_ns: int) -> None:
        if self._interval_ns:
            delay_ns = due_ns - self._clock.monotonic_ns()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / 1e9)

    async def _send(self, message: Message, due_ns: int, index: int) -> None:
        # At full speed a message is due when it leaves; at a fixed rate, when scheduled.
        start_ns = due_ns if self._interval_ns else self._clock.monotonic_ns()
        try:
            async with self._session.post(self._url, data=message.body) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            self.results.transport_errors[type(error).__name__] += 1
            self._failing += 1
            return
        finally:
            self._slots.release()
            self._on_sent(1)
        self._failing = 0
        latency_us = (self._clock.monotonic_ns() - start_ns) // 1000
        self.results.latency_us.record_value(min(max(latency_us, 1), LATENCY_MAX_US))
        self._record(message, status, body)
        if status == 200 and message.follow_up is not None:
            self._ready.append((index + self._lag, message.follow_up))

    def _record(self, message: Message, status: int, body: bytes) -> None:
        results = self.results
        results.sent += 1
        results.statuses[status] += 1
        results.by_method[message.method] += 1
        results.answers[message.token] = (status, body)
        if status == 402:
            results.declines[_decline_reason(body)] += 1
        if status != 200:
            return
        results.approved += 1
        expected = results.expect(message.account)
        if message.method == AUTHORIZATION:
            expected.held_minor += message.amount_minor
            results.open_holds[message.token] = message.amount_minor
        elif message.method in (CLEARING, REVERSAL):
            expected.held_minor -= results.open_holds.pop(message.original or "", 0)
            if message.method == CLEARING:
                expected.posted_minor -= message.amount_minor
        elif message.method == REFUND:
            expected.posted_minor += message.amount_minor


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _decline_reason(body: bytes) -> str:
    with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
        reason = orjson.loads(body)["jit_funding"]["decline_reason"]
        if isinstance(reason, str):
            return reason
    return "UNKNOWN"


@dataclass(frozen=True)
class ReplayOptions:
    url: str
    credentials: tuple[str, str]
    admin_credentials: tuple[str, str]
    rate: float | None = None
    concurrency: int = 64
    seed: int = 1
    profile: Profile = field(default_factory=Profile)
    show_progress: bool = True


async def replay_transactions(
    source: bytes,
    transactions: list[CardTransaction],
    options: ReplayOptions,
    clock: Clock,
    console: Console,
) -> tuple[dict[str, Any], ReplayResults]:
    """Load the program for `transactions`, send their messages, reconcile; the report.

    `source` (the file's bytes) and the seed fix every token, so a second replay of the
    same file changes nothing on the gateway and receives the same answers."""
    profile = options.profile
    prefix = run_prefix(source, options.seed, profile)
    program = build_program(prefix, transactions, profile)
    messages = plan(prefix, transactions, profile, options.seed)
    # The plan lives until the end; left to the collector, every full collection walks it and
    # stalls the sender, which the latency figures would then blame on the gateway.
    gc.freeze()
    try:
        async with GatewayClient(
            options.url, options.credentials, options.admin_credentials, options.concurrency
        ) as client:
            # A file with many cards makes a program over one load: it goes in parts.
            for part in parts_of(orjson.dumps(program)):
                await client.load_program(part.body)
            stopped = None
            try:
                results = await _send_with_progress(client, messages, options, clock, console)
            except GatewayGone as gone:
                # The answers received so far are the record of what the gateway promised.
                results, stopped = gone.results, str(gone)
            server = None if stopped else await _fetch_reconciliation(client, prefix)
    finally:
        gc.unfreeze()

    accounts = [user["token"] for user in program["users"]]
    reconciliation = reconcile_expectations(results, server, accounts, opening_minor(profile))
    extra = {
        "prefix": prefix,
        "seed": options.seed,
        "rate": options.rate,
        "concurrency": options.concurrency,
        "transactions": len(transactions),
        "stopped": stopped,
    }
    return build_report(results, reconciliation, extra), results


async def _send_with_progress(
    client: GatewayClient,
    messages: list[Message],
    options: ReplayOptions,
    clock: Clock,
    console: Console,
) -> ReplayResults:
    # At most: a follow-up goes out only if its authorization is approved.
    total = len(messages) + sum(message.follow_up is not None for message in messages)
    columns = (*Progress.get_default_columns(), MofNCompleteColumn())
    with Progress(*columns, console=console, disable=not options.show_progress) as progress:
        task = progress.add_task("replaying", total=total)
        sender = Sender(
            client.session,
            client.jit_url,
            clock,
            options.concurrency,
            options.rate,
            options.profile.clearing_lag,
            on_sent=lambda n: progress.advance(task, n),
        )
        results = await sender.run(messages)
        progress.update(task, completed=results.sent, total=results.sent)
    return results


async def _fetch_reconciliation(client: GatewayClient, prefix: str) -> dict[str, Any] | None:
    try:
        return await client.reconciliation(prefix)
    except (GatewayError, aiohttp.ClientError, TimeoutError):
        return None
