"""The compiled decision engine (`jit_core` behind PyO3).

One `Engine` owns a program's accounts, cards, holds and spend controls in memory and applies
one message at a time. It never reads the clock: every call that needs time takes `now_ms`
(milliseconds since the Unix epoch, UTC) from the caller. It never logs and does no I/O.

Every change is emitted as a journal `Entry`. The caller must make an entry durable before
it answers the processor, and must feed committed entries, in `seq` order, to `apply` to
rebuild the same state after a restart. An entry that could not be made durable is undone
with `void`, which itself yields an entry to journal.

Calls are not thread-safe on one instance: the engine is a single writer, and a second
thread calling in while one call runs gets a `RuntimeError` from PyO3's borrow check.
"""

from typing import final

__all__ = [
    "PROGRAM_COLLECTIONS",
    "PROGRAM_OBJECTS_MAX",
    "Account",
    "Engine",
    "EngineError",
    "Entry",
    "FrozenEngine",
    "JournalError",
    "MessageError",
    "Outcome",
    "ProgramError",
    "TokenConflict",
    "__version__",
]

__version__: str

PROGRAM_COLLECTIONS: list[str]
"""The collections of a program file in the order the engine applies them."""

PROGRAM_OBJECTS_MAX: int
"""The most objects one `Engine.load` applies; a larger file is refused at ``$``."""

class EngineError(ValueError):
    """Input the engine refuses; the engine's state is unchanged."""

    field: str
    """Dotted path of the offending field, such as ``gpa_order.jit_funding.amount``."""

class MessageError(EngineError):
    """A JIT message that cannot be decided: malformed JSON, a missing or mistyped field,
    an amount the currency cannot express. The gateway answers HTTP 400."""

class TokenConflict(EngineError):
    """A `jit_funding.token` seen before, now with a different method, amount, card or
    chain. The gateway answers HTTP 409 and changes nothing."""

class ProgramError(EngineError):
    """A program file with at least one bad object; nothing in the file was applied."""

    problems: list[tuple[str, str]]
    """Every problem found, as (path, message), e.g. ("cards[3].user_token", "unknown user")."""

class JournalError(EngineError):
    """A journal entry that does not fit the engine's state (corrupt, out of order, or
    written by an incompatible engine). Recovery must stop."""

@final
class Entry:
    """One journal record: what the engine changed, ready to commit."""

    @property
    def seq(self) -> int:
        """Position in the journal; strictly increasing, assigned by the engine."""
    @property
    def kind(self) -> str:
        """``decision``, ``void``, ``program`` or ``expiry``."""
    @property
    def token(self) -> str:
        """The JIT token, program object token, or ``expiry:<seq>``."""
    @property
    def account_token(self) -> str | None:
        """The account whose balances this entry moved, if any."""
    @property
    def posted_delta_minor(self) -> int:
        """Signed change to the account's posted balance, minor units."""
    @property
    def held_delta_minor(self) -> int:
        """Signed change to the account's held total, minor units."""
    @property
    def data(self) -> bytes:
        """The whole entry as UTF-8 JSON (see docs/journal.md); input to `Engine.apply`."""

@final
class Outcome:
    """The engine's answer to one JIT message."""

    @property
    def status(self) -> int:
        """HTTP status for the processor: 200 approve or accept, 402 decline."""
    @property
    def body(self) -> bytes:
        """Response body, ``{"jit_funding": {...}}``, byte-identical on every replay."""
    @property
    def token(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def approved(self) -> bool: ...
    @property
    def decline_reason(self) -> str | None:
        """The processor's `decline_reason` value, such as ``INSUFFICIENT_FUNDS``."""
    @property
    def rule_id(self) -> str | None:
        """Id of the control or check that declined, such as a velocity control token."""
    @property
    def rule_name(self) -> str | None: ...
    @property
    def replayed(self) -> bool:
        """True when the token was seen before: `body` is the earlier answer, `entry` is None."""
    @property
    def entry(self) -> Entry | None:
        """What to journal before answering; None when nothing changed."""

@final
class Account:
    """A read-only view of one account's balances, minor units."""

    @property
    def token(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def posted_minor(self) -> int: ...
    @property
    def held_minor(self) -> int: ...
    @property
    def credit_line_minor(self) -> int: ...
    @property
    def available_minor(self) -> int:
        """posted - held + credit line."""

@final
class FrozenEngine:
    """A copy of an `Engine` at one moment."""

    @property
    def last_seq(self) -> int: ...
    def snapshot(self) -> bytes:
        """As `Engine.snapshot`, of the state when the copy was made."""

@final
class Engine:
    def __new__(cls, max_amount_minor: int = 100_000_000_00) -> Engine:
        """An empty engine. Amounts above `max_amount_minor` are refused as input errors."""
    @property
    def last_seq(self) -> int:
        """The seq of the last entry made or applied; 0 for an empty engine."""
    def decide(self, body: bytes, now_ms: int) -> Outcome:
        """Decide one JIT message (the processor's raw JSON body).

        Raises `MessageError` or `TokenConflict`; an unknown card is a 402 INVALID_CARD
        outcome with no entry.
        """
    def void(self, token: str, now_ms: int) -> Outcome:
        """Undo every effect of the decision for `token`, whose entry could not be made
        durable, and make its answer a decline. The returned outcome's entry must be
        journaled after the original one. Raises `KeyError` for a token never decided."""
    def adopt_void(self, data: bytes) -> Entry | None:
        """Take back a void entry (its `data`) that was answered while the journal was
        unreachable and kept outside it, as a new entry to journal; None when the journal
        already holds it. A decision still standing is voided now; a token the journal never
        saw gets the spilled answer and no balance change. Raises `JournalError`."""
    def load(self, body: bytes, now_ms: int) -> list[Entry]:
        """Upsert a program file (the processor's REST objects, see docs/program-file.md).

        All or nothing: raises `ProgramError` listing every bad field."""
    def expire_holds(self, now_ms: int) -> list[Entry]:
        """Release every hold whose expiry is at or before `now_ms`."""
    def apply(self, data: bytes) -> None:
        """Re-apply one committed entry (its `data`) during recovery. Raises `JournalError`."""
    def apply_many(self, entries: list[bytes]) -> int:
        """`apply` for each entry in order, returning how many were applied."""
    def snapshot(self) -> bytes:
        """The whole state, including `last_seq`, as bytes for `restore`."""
    def frozen(self) -> FrozenEngine:
        """A copy of the engine now, to snapshot while this one goes on deciding."""
    @staticmethod
    def restore(snapshot: bytes) -> Engine:
        """An engine equal to the one that produced `snapshot`. Raises `JournalError`."""
    def account(self, token: str) -> Account | None: ...
    def accounts(self) -> list[Account]:
        """Every account, ordered by token."""
    def card(self, token: str) -> bytes | None:
        """The card as JSON (token, user_token, card_product_token, state, expires_at_ms,
        last_four), or None when unknown."""
    def holder(self, token: str) -> bytes | None:
        """The user or business as JSON (token, kind, status, parent_token,
        uses_parent_account, account_token), or None when unknown."""
    def holds(self, account_token: str) -> bytes:
        """The account's open holds as a JSON list, soonest expiry first: token, account,
        card, amount_minor, state, expires_at_ms, usage."""
    def controls(self) -> bytes:
        """``{"velocitycontrols": [...], "authcontrols": [...], "mccgroups": [...]}`` as
        JSON of the engine's model, in token order."""
    def velocity_available(self, holder_token: str, now_ms: int) -> bytes:
        """What the holder has left under each active velocity control that applies to it
        or its cards, as a JSON list of ``{token, name, window, card_token, uses, amount,
        days_remaining}``: ``amount`` is decimal text in the program's currency, and a
        field is null where the control has no such limit or the window never resets."""
    def state_digest(self) -> str:
        """A hex digest of the whole state, equal for equal engines (for recovery tests)."""
