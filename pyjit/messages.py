"""The processor's JIT funding messages for replayed card transactions.

Bodies follow the processor's transaction object (`gpa_order.jit_funding`, `card_token`,
`card_acceptor`, ...). Amounts are decimal text so they are exact; times are the file's.
"""

import datetime as dt
import random
from dataclasses import dataclass
from enum import Enum

import orjson

from pyjit.profile import Mix, Profile, card_token, holder_token
from pyjit.transactions import CardTransaction

AUTHORIZATION = "pgfs.authorization"
CLEARING = "pgfs.authorization.capture"
REVERSAL = "pgfs.authorization.reversal"
REFUND = "pgfs.refund"

CLEARING_DELAY_MS = 2 * 3_600_000


class Ending(Enum):
    """How an approved authorization ends."""

    FULL = "full"
    PARTIAL = "partial"
    TIP = "tip"
    REVERSED = "reversed"


@dataclass(frozen=True, slots=True)
class Message:
    """One JIT message to send, with what the replay expects it to do to the account."""

    token: str
    method: str
    account: str
    amount_minor: int
    body: bytes
    # The authorization a clearing or reversal ends.
    original: str | None = None
    # For an authorization: the message that ends it, sent only if it is approved.
    follow_up: "Message | None" = None


def decimal_text(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def iso_time(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(
    prefix: str, transactions: list[CardTransaction], profile: Profile, seed: int
) -> list[Message]:
    """One message per row (an authorization with its ending, or a refund), in file time
    order; zero amounts are skipped. The endings come from a generator seeded with `seed`."""
    rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not a secret
    currency = profile.currency
    messages = []
    for row in transactions:
        if row.amount_minor == 0:
            continue
        ending = _draw(rng, profile.mix)
        ratio = rng.uniform(0.5, 0.95) if ending is Ending.PARTIAL else rng.uniform(1.05, 1.25)
        if row.amount_minor < 0:
            refund = _message(prefix, row, "f", REFUND, -row.amount_minor, row.at_ms, currency)
            messages.append(refund)
            continue
        auth = _message(prefix, row, "a", AUTHORIZATION, row.amount_minor, row.at_ms, currency)
        messages.append(_with_ending(prefix, row, auth, ending, ratio, profile.currency))
    return messages


def _draw(rng: random.Random, mix: Mix) -> Ending:
    weights = [mix.full, mix.partial, mix.tip, mix.reversed]
    return rng.choices(list(Ending), weights)[0]


def _with_ending(
    prefix: str,
    row: CardTransaction,
    auth: Message,
    ending: Ending,
    ratio: float,
    currency: str,
) -> Message:
    later = row.at_ms + CLEARING_DELAY_MS
    if ending is Ending.REVERSED:
        follow = _message(prefix, row, "r", REVERSAL, row.amount_minor, later, currency, auth.token)
    else:
        amount = row.amount_minor
        if ending is not Ending.FULL:
            amount = max(1, round(row.amount_minor * ratio))
        follow = _message(prefix, row, "c", CLEARING, amount, later, currency, auth.token)
    return Message(
        auth.token, auth.method, auth.account, auth.amount_minor, auth.body, None, follow
    )


def _message(
    prefix: str,
    row: CardTransaction,
    kind: str,
    method: str,
    amount_minor: int,
    at_ms: int,
    currency: str,
    original: str | None = None,
) -> Message:
    token = f"{prefix}-{row.row}-{kind}"
    user = holder_token(prefix, row.holder)
    funding: dict[str, object] = {
        "token": token,
        "method": method,
        "user_token": user,
        "acting_user_token": user,
        "amount": decimal_text(amount_minor),
    }
    if original is not None:
        funding["original_jit_funding_token"] = original
    body = {
        "token": f"t-{token}",
        "type": _transaction_type(method),
        "state": "PENDING" if method == AUTHORIZATION else "COMPLETION",
        "amount": decimal_text(amount_minor),
        "currency_code": currency,
        "card_token": card_token(prefix, row.card),
        "user_token": user,
        "created_time": iso_time(at_ms),
        "user_transaction_time": iso_time(at_ms),
        "network": "VISA",
        "subnetwork": "GATEWAY_JIT",
        "is_final_clearing": method == CLEARING,
        "card_acceptor": {
            "mid": row.merchant_id or "unknown",
            "mcc": row.mcc,
            "city": row.merchant_city,
            "state": row.merchant_state,
            "postal_code": row.postal_code,
            "country_code": "USA",
        },
        "pos": {"pan_entry_mode": row.entry_mode, "partial_approval_capable": False},
        "gpa_order": {"jit_funding": funding},
    }
    return Message(token, method, user, amount_minor, orjson.dumps(body), original)


def _transaction_type(method: str) -> str:
    return {
        AUTHORIZATION: "authorization",
        CLEARING: "authorization.clearing",
        REVERSAL: "authorization.reversal",
        REFUND: "refund",
    }[method]
