"""The journal's rows and the read models (`transactions`, `holds`, `accounts`) they move.

The journal writer commits only `JOURNAL_APPEND` before an answer leaves. The projector
(pyjit/projector.py) then parses committed entries here (orjson) and folds them per key
(the last state of each hold, the last balance of each account, a void merged into its
decision when both are in the batch), so `PROJECT` receives typed arrays and does plain
inserts and upserts, with no JSON work of its own, and moves the watermark in the same
transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

JOURNAL_APPEND = """
INSERT INTO journal (seq, kind, token, account_token, posted_delta_minor, held_delta_minor, data)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                     $6::bigint[], $7::bytea[])
"""

PROJECT = """
WITH decided AS (
    INSERT INTO transactions AS t
        (token, seq, card_token, account_token, method, amount_minor, currency, status,
         approved, decline_reason, rule_id, rule_name, merchant, at_ms, voided_by_seq)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::bigint[], $7::text[], $8::int[], $9::bool[], $10::text[],
                         $11::text[], $12::text[], $13::jsonb[], $14::bigint[], $15::bigint[])
    ON CONFLICT (token) DO UPDATE
    SET status = EXCLUDED.status, approved = EXCLUDED.approved,
        decline_reason = coalesce(EXCLUDED.decline_reason, t.decline_reason),
        voided_by_seq = EXCLUDED.voided_by_seq
), held AS (
    INSERT INTO holds AS h
        (hold_token, account_token, amount_minor, state, expires_at_ms, last_seq)
    SELECT * FROM unnest($16::text[], $17::text[], $18::bigint[], $19::text[], $20::bigint[],
                         $21::bigint[])
    ON CONFLICT (hold_token) DO UPDATE
    SET account_token = coalesce(EXCLUDED.account_token, h.account_token),
        amount_minor = EXCLUDED.amount_minor, state = EXCLUDED.state,
        expires_at_ms = coalesce(EXCLUDED.expires_at_ms, h.expires_at_ms),
        last_seq = EXCLUDED.last_seq
), marked AS (
    -- Read models are derived: their commit need not wait for the WAL flush (see
    -- pyjit/projector.py). Set here so the statement stays one round trip.
    UPDATE projection_state SET projected_seq = $31
    WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
), moved AS (
    SELECT * FROM unnest($22::text[], $23::text[], $24::bigint[], $25::bigint[],
                         $26::bigint[], $27::bigint[], $28::bigint[], $29::bigint[],
                         $30::bigint[])
        AS m(account_token, currency, posted_minor, held_minor, credit_line_minor,
             posted_delta, held_delta, has_balance, last_seq)
), updated AS (
    UPDATE accounts a
    SET currency = coalesce(m.currency, a.currency),
        posted_minor = CASE WHEN m.has_balance = 1 THEN m.posted_minor
                            ELSE a.posted_minor END + m.posted_delta,
        held_minor = CASE WHEN m.has_balance = 1 THEN m.held_minor
                          ELSE a.held_minor END + m.held_delta,
        credit_line_minor = CASE WHEN m.has_balance = 1 THEN m.credit_line_minor
                                 ELSE a.credit_line_minor END,
        last_seq = m.last_seq
    FROM moved m
    WHERE a.account_token = m.account_token
    RETURNING a.account_token
)
INSERT INTO accounts
    (account_token, currency, posted_minor, held_minor, credit_line_minor, last_seq)
SELECT m.account_token, m.currency, m.posted_minor + m.posted_delta,
       m.held_minor + m.held_delta, m.credit_line_minor, m.last_seq
FROM moved m
WHERE m.account_token NOT IN (SELECT account_token FROM updated)
"""

PROJECTED_SEQ = "SELECT projected_seq FROM projection_state"

UNPROJECTED = "SELECT seq, data FROM journal WHERE seq > $1 ORDER BY seq"

# Which seqs of a batch are already in the journal, and with what: asked before retrying a
# batch whose first attempt may have committed without us hearing back.
ALREADY_COMMITTED = "SELECT seq, data FROM journal WHERE seq = ANY($1::bigint[])"


@dataclass
class _Account:
    currency: str | None
    posted_minor: int = 0
    held_minor: int = 0
    credit_line_minor: int = 0
    posted_delta: int = 0
    held_delta: int = 0
    has_balance: int = 0
    last_seq: int = 0


@dataclass
class BatchColumns:
    """The projection's 30 column arguments, built column by column."""

    transactions: dict[str, list[Any]] = field(default_factory=dict)
    holds: dict[str, list[Any]] = field(default_factory=dict)
    accounts: dict[str, _Account] = field(default_factory=dict)

    def arguments(self) -> list[list[Any]]:
        return [
            *_transpose(list(self.transactions.values()), 15),
            *_transpose(list(self.holds.values()), 6),
            *_transpose([_account_row(t, a) for t, a in self.accounts.items()], 9),
        ]


# A journal row as `JOURNAL_APPEND` takes it: seq, kind, token, account_token,
# posted_delta_minor, held_delta_minor, data.
JournalRow = tuple[int, str, str, str | None, int, int, bytes]


def journal_row(seq: int, data: bytes) -> JournalRow:
    """The journal row of an entry known only by its JSON (the engine's `Entry` carries the
    same fields as attributes, so the hot path never parses)."""
    entry = orjson.loads(data)
    return (
        seq,
        entry.get("kind", ""),
        entry.get("token", ""),
        entry.get("account"),
        entry.get("posted_delta_minor") or 0,
        entry.get("held_delta_minor") or 0,
        data,
    )


def journal_arguments(rows: Sequence[JournalRow]) -> list[list[Any]]:
    """The arguments of `JOURNAL_APPEND`: the rows' columns."""
    return _transpose([list(row) for row in rows], 7)


def projection_arguments(seqs: Sequence[int], datas: Sequence[bytes]) -> list[Any]:
    """The arguments of `PROJECT` for the committed entries `datas` (docs/journal.md), in
    seq order; the last is the watermark the read models reach with them."""
    columns = BatchColumns()
    for seq, data in zip(seqs, datas, strict=True):
        fold(columns, seq, orjson.loads(data))
    return [*columns.arguments(), seqs[-1]]


def fold(columns: BatchColumns, seq: int, entry: dict[str, Any]) -> None:
    """Fold one entry into the batch's last state per transaction, hold and account."""
    kind = entry.get("kind")
    if kind == "decision":
        _decision(columns, seq, entry)
    elif kind == "void":
        _void(columns, seq, entry)
    _holds(columns, seq, entry)
    _accounts(columns, seq, entry)


def _decision(columns: BatchColumns, seq: int, entry: dict[str, Any]) -> None:
    decline = entry.get("decline") or {}
    merchant = entry.get("merchant")
    columns.transactions[entry["token"]] = [
        entry["token"],
        seq,
        entry.get("card"),
        entry.get("account"),
        entry.get("method"),
        entry.get("amount_minor"),
        entry.get("currency"),
        entry.get("status", 200),
        bool(entry.get("approved", True)),
        decline.get("reason"),
        decline.get("rule_id"),
        decline.get("rule_name"),
        orjson.dumps(merchant).decode() if merchant is not None else None,
        entry.get("at_ms", 0),
        None,
    ]


def _void(columns: BatchColumns, seq: int, entry: dict[str, Any]) -> None:
    token = entry["token"]
    reason = (entry.get("decline") or {}).get("reason")
    row = columns.transactions.get(token)
    if row is None:
        # The decision was committed in an earlier batch: the upsert updates its row.
        row = [
            token,
            seq,
            None,
            entry.get("account"),
            entry.get("method"),
            None,
            None,
            402,
            False,
            None,
            None,
            None,
            None,
            entry.get("at_ms", 0),
            None,
        ]
        columns.transactions[token] = row
    row[7], row[8], row[14] = entry.get("status", 402), False, seq
    row[9] = reason or row[9]


def _holds(columns: BatchColumns, seq: int, entry: dict[str, Any]) -> None:
    hold = entry.get("hold")
    if isinstance(hold, dict) and hold.get("token"):
        columns.holds[hold["token"]] = [
            hold["token"],
            hold.get("account") or entry.get("account"),
            hold.get("amount_minor") or 0,
            hold.get("state") or "OPEN",
            hold.get("expires_at_ms"),
            seq,
        ]
    for expired in entry.get("holds") or ():
        columns.holds[expired["token"]] = [
            expired["token"],
            expired.get("account"),
            expired.get("amount_minor") or 0,
            "EXPIRED",
            None,
            seq,
        ]


def _accounts(columns: BatchColumns, seq: int, entry: dict[str, Any]) -> None:
    moves = [entry] if entry.get("account") else []
    moves.extend(entry.get("accounts") or ())
    for move in moves:
        token = move["account"]
        account = columns.accounts.get(token)
        if account is None:
            account = columns.accounts[token] = _Account(move.get("currency"))
        account.currency = account.currency or move.get("currency")
        account.last_seq = seq
        balance = move.get("balance")
        if isinstance(balance, dict):
            # A balance is the account after this entry: earlier deltas are inside it.
            account.has_balance = 1
            account.posted_minor = balance.get("posted_minor", 0)
            account.held_minor = balance.get("held_minor", 0)
            account.credit_line_minor = balance.get("credit_line_minor", 0)
            account.posted_delta = account.held_delta = 0
        else:
            account.posted_delta += move.get("posted_delta_minor") or 0
            account.held_delta += move.get("held_delta_minor") or 0


def _account_row(token: str, account: _Account) -> list[Any]:
    return [
        token,
        account.currency,
        account.posted_minor,
        account.held_minor,
        account.credit_line_minor,
        account.posted_delta,
        account.held_delta,
        account.has_balance,
        account.last_seq,
    ]


def _transpose(rows: list[list[Any]], width: int) -> list[list[Any]]:
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]
