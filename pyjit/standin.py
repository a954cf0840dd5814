"""Stand-in: the edge's answer when the owning decider cannot answer within the budget.

At the edge, `StandInPolicy` decides from the message alone (no balances there): messages
that report money already moved are accepted, as the processor requires; messages that ask
for money are declined, or approved up to a configured amount for configured MCCs. The
answer is committed to the `standins` table before it leaves. `Reconciler` then hands each
pending stand-in to the owning decider (`Jit.ApplyStandIn`) until one accepts it, and marks
it applied.

At the decider, `apply_standin` makes the stand-in answer the decider's own, exactly once:
an approval becomes the processor's stand-in method (`pgfs.authorization.standin` holds the
money without checking it), a decline is decided and, if the engine would have approved,
voided, so no hold stays where the processor declined. A second delivery finds the token
already decided and changes nothing.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import asyncpg
import orjson

from pyjit._engine import TokenConflict
from pyjit.decider import Answer, Decider
from pyjit.routing import funding_of
from pyjit.rpc import money

log = logging.getLogger(__name__)

STANDIN_DECLINE_REASON = "TRANSACTION_NOT_PERMITTED"
# The processor's own stand-in methods: informative, they hold or post without a check.
STANDIN_METHODS = {
    "pgfs.authorization": "pgfs.authorization.standin",
    "pgfs.auth_plus_capture": "pgfs.auth_plus_capture.standin",
    "pgfs.pindebit": "pgfs.pindebit.standin",
}
# Words in a method that mean the money already moved (marqeta-notes.md, section 4).
INFORMATIVE_WORDS = (
    "capture",
    "reversal",
    "advice",
    "refund",
    "chargeback",
    "dispute",
    "adjustment",
    "directdeposit",
    "original.credit",
    "standin",
    "network.load",
)


def is_informative(method: str) -> bool:
    return any(word in method for word in INFORMATIVE_WORDS)


@dataclass(frozen=True)
class StandInPolicy:
    """Decline everything that asks for money, unless `approve_up_to_minor` > 0: then
    approve up to it for MCCs in `mcc_ranges` (inclusive), in `currency`."""

    approve_up_to_minor: int = 0
    currency: str = "USD"
    mcc_ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, approve_up_to: str, currency: str, mccs: str) -> "StandInPolicy":
        """From decimal text and `5411,5811-5814`; raises ValueError naming the problem."""
        limit = money.to_minor(approve_up_to, currency) if approve_up_to else 0
        if limit < 0:
            raise ValueError("the stand-in approval limit must not be negative")
        ranges = []
        for part in filter(None, (item.strip() for item in mccs.split(","))):
            low, _, high = part.partition("-")
            if not (low.isdigit() and (high or low).isdigit()):
                raise ValueError(f"not an MCC or MCC range: {part!r}")
            ranges.append((int(low), int(high or low)))
        return cls(limit, currency, tuple(ranges))

    def answer(self, document: dict[str, Any]) -> tuple[bool, bytes]:
        """(approved, the processor's JSON body) for a message parsed with exact decimals."""
        funding = funding_of(document)
        method = str(funding.get("method", ""))
        approved = is_informative(method) or self._approves(document, funding, method)
        reply: dict[str, Any] = {
            key: _plain(funding[key])
            for key in ("token", "method", "user_token", "business_token", "amount")
            if key in funding
        }
        if "original_jit_funding_token" in funding:
            reply["original_jit_funding_token"] = funding["original_jit_funding_token"]
        reply["memo"] = "stand-in"
        if not approved:
            reply["decline_reason"] = STANDIN_DECLINE_REASON
        return approved, orjson.dumps({"jit_funding": reply})

    def _approves(self, document: dict[str, Any], funding: dict[str, Any], method: str) -> bool:
        if self.approve_up_to_minor <= 0 or method not in STANDIN_METHODS:
            return False
        if document.get("currency_code", self.currency) != self.currency:
            return False
        mcc_text = str((document.get("card_acceptor") or {}).get("mcc", ""))
        if not mcc_text.isdigit():
            return False
        mcc = int(mcc_text)
        if not any(low <= mcc <= high for low, high in self.mcc_ranges):
            return False
        try:
            amount = money.to_minor(str(funding["amount"]), self.currency)
        except (KeyError, money.AmountError):
            return False
        return 0 <= amount <= self.approve_up_to_minor


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def parse_exact(body: bytes) -> Any:
    """The message with its numbers as Decimal: a stand-in compares amounts exactly."""
    return json.loads(body, parse_float=Decimal)


RECORD = """
WITH inserted AS (
    INSERT INTO standins (token, holder_token, method, approved, decline_reason, status,
                          answer, message)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (token) DO NOTHING
    RETURNING status, answer
)
SELECT status, answer FROM inserted
UNION ALL
SELECT status, answer FROM standins WHERE token = $1 AND NOT EXISTS (SELECT 1 FROM inserted)
"""


async def record(
    pool: asyncpg.Pool,
    holder: str,
    document: dict[str, Any],
    approved: bool,
    body: bytes,
    message: bytes,
) -> tuple[int, bytes]:
    """Commit a stand-in answer and return the one to send: the first one recorded for the
    token, so a message that comes again gets the same answer."""
    funding = funding_of(document)
    status = 200 if approved else 402
    reason = None if approved else STANDIN_DECLINE_REASON
    row = await pool.fetchrow(
        RECORD,
        str(funding["token"]),
        holder,
        str(funding.get("method", "")),
        approved,
        reason,
        status,
        body,
        message,
    )
    assert row is not None, "the insert or the existing row is returned"
    return int(row["status"]), bytes(row["answer"])


class ApplyResult(Enum):
    APPLIED = 1
    ALREADY_APPLIED = 2
    CONFLICT = 3


async def apply_standin(
    decider: Decider, message: bytes, approved: bool, timeout_s: float
) -> tuple[ApplyResult, Answer]:
    """Make an edge's stand-in answer the decider's own (see the module's docstring)."""
    received_ns = decider.clock.monotonic_ns()
    document = orjson.loads(message)
    funding = funding_of(document)
    method = funding.get("method")
    if approved and method in STANDIN_METHODS:
        funding["method"] = STANDIN_METHODS[method]
        try:
            answer = await decider.decide(orjson.dumps(document), received_ns)
        except TokenConflict:
            # The decider decided the original itself before the edge gave up on it.
            answer = await decider.decide(message, received_ns)
            return (
                ApplyResult.ALREADY_APPLIED if answer.approved else ApplyResult.CONFLICT
            ), answer
        return _result(answer), answer

    answer = await decider.decide(message, received_ns)
    if approved or not answer.approved:
        return _result(answer), answer
    # The processor declined (our stand-in said so): the engine's approval must not hold money.
    return ApplyResult.APPLIED, await _void(decider, answer.token, timeout_s)


def _result(answer: Answer) -> ApplyResult:
    return ApplyResult.ALREADY_APPLIED if answer.replayed else ApplyResult.APPLIED


async def _void(decider: Decider, token: str, timeout_s: float) -> Answer:
    outcome = decider.engine.void(token, decider.clock.now_ms())
    if outcome.entry is not None:
        await asyncio.wait_for(asyncio.shield(decider.writer.submit(outcome.entry)), timeout_s)
    return Answer.of(outcome, voided=True)


PENDING = """
SELECT token, holder_token, approved, message FROM standins
WHERE applied_at IS NULL ORDER BY answered_at LIMIT $1
"""
MARK_APPLIED = "UPDATE standins SET applied_at = now(), result = $2 WHERE token = $1"

# Deliver one stand-in to its decider: (holder, message, approved) -> result name.
Deliver = Callable[[str, bytes, bool], Awaitable[str]]


class Reconciler:
    """Hands pending stand-ins to their deciders, oldest first, until each is applied."""

    def __init__(self, pool: asyncpg.Pool, deliver: Deliver, interval_s: float = 0.5) -> None:
        self._pool = pool
        self._deliver = deliver
        self._interval_s = interval_s
        self.applied = 0

    async def run(self) -> None:
        while True:
            try:
                await self.pass_once()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("stand-in reconciliation paused: %r", error)
            await asyncio.sleep(self._interval_s)

    async def pass_once(self, batch: int = 200) -> int:
        """Deliver what is pending now; returns how many were applied."""
        applied = 0
        for row in await self._pool.fetch(PENDING, batch):
            try:
                result = await self._deliver(
                    row["holder_token"], bytes(row["message"]), row["approved"]
                )
            except Exception as error:
                # The decider is still away: the row stays pending for the next pass.
                log.info("stand-in %s not applied yet: %r", row["token"], error)
                continue
            await self._pool.execute(MARK_APPLIED, row["token"], result)
            applied += 1
        self.applied += applied
        return applied
