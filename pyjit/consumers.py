"""The webhook consumers: reconcile the ledger with what the processor says happened.

Every ledger effect goes through the decider as a JIT-shaped message, so the journal stays
the single source of truth. Idempotency therefore lives where the effect lives: the engine
answers a JIT token it has seen with its first answer and changes nothing, and that record
is committed in the same journal transaction as the effect. Messages the consumers make up
(undoing a hold the processor declined) carry a token derived from the event token, so the
event's second delivery derives the same token and changes nothing either. The
`webhook_events` row written afterwards is the fast path that skips known events.

What each transaction event means for the ledger:

- the gateway saw its JIT message: nothing to do (the engine replays its answer);
- the processor declined what the gateway approved (the answer came too late): undo it
  with a reversal of the approved amount;
- the processor approved a JIT message the gateway never saw (stand-in): apply it as the
  processor's stand-in, under the processor's own JIT token so later clearings find it;
- an informative message the gateway never saw (clearing, reversal, refund): apply it;
- its parent (`original_jit_funding_token`) unknown to the ledger: park it and retry.
"""

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import orjson

from pyjit.webhooks import Event
from services.marqeta import codec

log = logging.getLogger(__name__)

STANDIN_METHODS = {
    "pgfs.authorization": "pgfs.authorization.standin",
    "pgfs.auth_plus_capture": "pgfs.auth_plus_capture.standin",
    "pgfs.pindebit": "pgfs.pindebit.standin",
}
# Methods whose answer the processor waits for; every other one reports money that moved.
DECIDED_PREFIXES = ("pgfs.authorization.incremental", "pgfs.balanceinquiry")
PARK_RETRY_MAX_S = 60.0
PARK_SCAN_S = 0.25
# Attempts, 50 ms doubling, before a bounded wait gives up: about 50 s in all.
PARK_PATIENCE = 10

SEEN = "SELECT 1 FROM webhook_events WHERE event_token = $1"

RECORD = """
INSERT INTO webhook_events
    (event_token, event_type, outcome, holder_token, card_token, state, amount, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (event_token) DO NOTHING
"""

STATE_OF = "SELECT event_time FROM webhook_states WHERE object_token = $1"

SET_STATE = """
INSERT INTO webhook_states AS s (object_token, object_kind, state, event_token, event_time)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (object_token) DO UPDATE
SET state = EXCLUDED.state, event_token = EXCLUDED.event_token,
    event_time = EXCLUDED.event_time
WHERE s.event_time <= EXCLUDED.event_time
"""

PARK = """
INSERT INTO webhook_parked (event_token, event_type, body, waiting_for)
VALUES ($1, $2, $3, $4) ON CONFLICT (event_token) DO NOTHING
"""

DUE_PARKED = """
SELECT event_token, event_type, body, attempts FROM webhook_parked
WHERE retry_at <= now() ORDER BY parked_at LIMIT 100
"""

UNPARK = "DELETE FROM webhook_parked WHERE event_token = $1"

STILL_PARKED = """
UPDATE webhook_parked SET attempts = attempts + 1,
       retry_at = now() + make_interval(secs => least($2::float8, 0.05 * power(2, attempts)))
WHERE event_token = $1
"""


@dataclass(frozen=True, slots=True)
class LedgerAnswer:
    status: int
    approved: bool
    replayed: bool


class ParentMissing(Exception):
    """The event refers to something the ledger does not know yet. With `otherwise`, the
    wait is bounded: after PARK_PATIENCE attempts that outcome is recorded instead."""

    def __init__(self, parent: str, otherwise: str | None = None) -> None:
        super().__init__(f"waiting for {parent}")
        self.parent = parent
        self.otherwise = otherwise


class EventRejected(Exception):
    """The ledger refuses the event for good; retries will not help (a poison event)."""


class Ledger(Protocol):
    """The decider, seen from a consumer: in this process or across the network."""

    async def decide(self, body: bytes) -> LedgerAnswer:
        """Decide or apply one JIT message; `EventRejected` for a message it refuses."""

    async def load(self, body: bytes) -> list[tuple[str, str]]:
        """Upsert a program file; the problems if it was refused (empty when applied)."""

    async def decision_of(self, jit_token: str) -> bool | None:
        """Whether the ledger approved `jit_token` (and did not void it); None if unknown."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a consumer did with one event, for its `webhook_events` row."""

    name: str
    state_change: tuple[str, str, str, str] | None = None


def derived_token(event_token: str, purpose: str) -> str:
    """A JIT token (36 characters at most) that only this event and purpose produce."""
    digest = hashlib.sha256(f"{purpose}:{event_token}".encode()).hexdigest()
    return f"wh-{digest[:33]}"


class Reconciler:
    """Applies webhook events to the ledger, once each, parking those that come early."""

    def __init__(self, pool: asyncpg.Pool, ledger: Ledger) -> None:
        self._pool = pool
        self._ledger = ledger
        self._object_locks: dict[str, asyncio.Lock] = {}
        self._applied = asyncio.Event()
        self.parked = 0

    async def handle(self, event: Event) -> None:
        """The queue's handler: raises to have the event tried again."""
        if await self._pool.fetchval(SEEN, event.token):
            return
        document = codec.decode(event.body)
        if not isinstance(document, dict):
            raise EventRejected("an event must be a JSON object")
        try:
            outcome = await self._apply(event, document)
        except ParentMissing as missing:
            await self._pool.execute(
                PARK, event.token, event.event_type, event.body, missing.parent
            )
            self.parked += 1
            log.info("event %s parked until %s arrives", event.token, missing.parent)
            return
        await self._record(event, document, outcome)

    async def _apply(self, event: Event, document: dict[str, Any]) -> Outcome:
        base = event.event_type.split(".", 1)[0]
        if base == "transaction":
            return await self._transaction(event, document)
        if base == "cardtransition":
            return await self._card_transition(event, document)
        if base in ("usertransition", "businesstransition"):
            return await self._holder_transition(event, base.removesuffix("transition"), document)
        return Outcome("not-for-the-ledger")

    async def _transaction(self, event: Event, document: dict[str, Any]) -> Outcome:
        order = document.get("gpa_order")
        jit = order.get("jit_funding") if isinstance(order, dict) else None
        if not isinstance(jit, dict):
            # Declined before any JIT message, or a card not funded by our gateway.
            return Outcome("no-jit-funding")
        token, method = jit.get("token"), jit.get("method")
        if not isinstance(token, str) or not isinstance(method, str):
            raise EventRejected("gpa_order.jit_funding needs a token and a method")
        original = jit.get("original_jit_funding_token")
        if isinstance(original, str) and await self._ledger.decision_of(original) is None:
            raise ParentMissing(original)

        ours = await self._ledger.decision_of(token)
        if document.get("state") == "DECLINED":
            if ours is None and _timed_out(order):
                # The processor stopped waiting; our decision may still be committing, so
                # wait for it a while before calling it unseen.
                raise ParentMissing(token, otherwise="declined-unseen")
            if not ours:
                return Outcome("declined-by-both" if ours is False else "declined-unseen")
            return await self._undo(event, document, jit, original or token)
        if ours is not None:
            return Outcome("seen-through-jit" if ours else "approved-over-our-decline")
        return await self._apply_unseen(document, jit, method)

    async def _undo(
        self, event: Event, document: dict[str, Any], jit: dict[str, Any], chain: str
    ) -> Outcome:
        """Release what the gateway approved and the processor declined (a late answer)."""
        reversal = {
            "token": derived_token(event.token, "undo"),
            "method": "pgfs.authorization.reversal",
            "amount": jit.get("amount"),
            "original_jit_funding_token": chain,
        }
        for holder in ("user_token", "business_token", "acting_user_token"):
            if holder in jit:
                reversal[holder] = jit[holder]
        body = {**document, "type": "authorization.reversal"}
        body["gpa_order"] = {"jit_funding": reversal}
        answer = await self._ledger.decide(codec.encode(body))
        return Outcome("undone-replayed" if answer.replayed else "undone")

    async def _apply_unseen(
        self, document: dict[str, Any], jit: dict[str, Any], method: str
    ) -> Outcome:
        standin = STANDIN_METHODS.get(method)
        if standin is None and method.startswith(DECIDED_PREFIXES):
            raise EventRejected(f"{method} approved by the processor but never seen here")
        if standin is not None:
            document = {**document, "gpa_order": {**document["gpa_order"]}}
            document["gpa_order"]["jit_funding"] = {**jit, "method": standin}
        answer = await self._ledger.decide(codec.encode(document))
        if answer.status not in (200, 402):
            raise EventRejected(f"the ledger answered {answer.status}")
        return Outcome("stand-in-applied" if standin else "applied-unseen")

    async def _card_transition(self, event: Event, document: dict[str, Any]) -> Outcome:
        card, state = document.get("card_token"), document.get("state")
        kind = str(document.get("type", "state"))
        if not isinstance(card, str) or not isinstance(state, str):
            raise EventRejected("a card transition needs card_token and state")
        if not kind.startswith("state."):
            # Fulfillment and other non-state events leave the card's state as it was.
            return Outcome("no-state-change")
        transition = {"token": event.token, "card_token": card, "state": state}
        program = {"cardtransitions": [_with_reason(transition, document)]}
        return await self._transition(event, "card", card, state, document, program)

    async def _holder_transition(
        self, event: Event, kind: str, document: dict[str, Any]
    ) -> Outcome:
        holder, status = document.get(f"{kind}_token"), document.get("status")
        if not isinstance(holder, str) or not isinstance(status, str):
            raise EventRejected(f"a {kind} transition needs {kind}_token and status")
        transition = {"token": event.token, f"{kind}_token": holder, "status": status}
        program = {f"{kind}transitions": [_with_reason(transition, document)]}
        return await self._transition(event, kind, holder, status, document, program)

    async def _transition(
        self,
        event: Event,
        kind: str,
        target: str,
        state: str,
        document: dict[str, Any],
        program: dict[str, Any],
    ) -> Outcome:
        """Apply a state change unless a newer one for the same object was applied."""
        moment = str(document.get("created_time", ""))
        lock = self._object_locks.setdefault(target, asyncio.Lock())
        async with lock:
            newest = await self._pool.fetchval(STATE_OF, target)
            if newest is not None and newest > moment:
                return Outcome("older-than-current")
            problems = await self._ledger.load(orjson.dumps(program))
            if any("unknown" in message for _, message in problems):
                raise ParentMissing(target)
            if problems:
                raise EventRejected(f"the gateway refused the transition: {problems}")
            return Outcome("state-applied", (target, kind, state, moment))

    async def _record(self, event: Event, document: dict[str, Any], outcome: Outcome) -> None:
        holder = document.get("business_token") or document.get("user_token")
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                RECORD,
                event.token,
                event.event_type,
                outcome.name,
                holder,
                document.get("card_token"),
                document.get("state") or document.get("status"),
                None if document.get("amount") is None else str(document["amount"]),
                document.get("currency_code"),
            )
            if outcome.state_change is not None:
                target, kind, state, moment = outcome.state_change
                await connection.execute(SET_STATE, target, kind, state, event.token, moment)
        self._applied.set()

    async def retry_parked(self) -> int:
        """Try every parked event that is due; returns how many left the parking."""
        released = 0
        for row in await self._pool.fetch(DUE_PARKED):
            event = Event(row["event_token"], row["event_type"], bytes(row["body"]))
            document = codec.decode(event.body)
            try:
                outcome = await self._apply(event, document)
            except ParentMissing as missing:
                if missing.otherwise is None or row["attempts"] < PARK_PATIENCE:
                    await self._pool.execute(STILL_PARKED, event.token, PARK_RETRY_MAX_S)
                    continue
                outcome = Outcome(missing.otherwise)
            except EventRejected as error:
                log.error("parked event %s refused by the ledger: %s", event.token, error)
                outcome = Outcome("refused-after-parking")
            await self._record(event, document, outcome)
            await self._pool.execute(UNPARK, event.token)
            released += 1
        return released

    async def run_parking(self) -> None:
        """Retry parked events whenever another event was applied, or every so often."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._applied.wait(), PARK_SCAN_S)
            self._applied.clear()
            try:
                while await self.retry_parked():
                    pass
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("parked events not retried now: %r", error)


def _timed_out(order: Any) -> bool:
    funding = order.get("funding") if isinstance(order, dict) else None
    log_entry = funding.get("gateway_log") if isinstance(funding, dict) else None
    return isinstance(log_entry, dict) and log_entry.get("timed_out") is True


def _with_reason(transition: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    for name in ("reason_code", "channel"):
        if isinstance(document.get(name), str):
            transition[name] = document[name]
    return transition
