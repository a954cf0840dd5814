"""Reads of the gateway's read models (transactions, holds, accounts) and the portal's
tables, each scoped by the company or the holder of the signed-in viewer.

Company lists read by the company's account (`transactions_account_at`), holder lists by
card (`transactions_card_at`); each page is one or two statements whatever its length.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from portal.categories import category_name
from portal.reasons import decline_words, status_of

PAGE_ROWS = 50
# What counts as spending: purchases that asked for money. Clearings of an authorization
# would count the same purchase twice, so they are not added.
SPEND_METHODS = (
    "pgfs.authorization",
    "pgfs.authorization.incremental",
    "pgfs.auth_plus_capture",
    "pgfs.force_capture",
    "pgfs.pindebit",
    "pgfs.atm.withdrawal",
)
REVERSAL = "pgfs.authorization.reversal"
# Reversals (informative messages, approved) give back what they release, so a purchase
# reversed in the end, in whole or in part, counts only what was kept.
SPENT = f"""
    sum(CASE WHEN t.method = '{REVERSAL}' THEN -t.amount_minor ELSE t.amount_minor END)
        AS spent,
    count(*) FILTER (WHERE t.method <> '{REVERSAL}') AS n
"""


@dataclass(frozen=True)
class TransactionFilter:
    search: str = ""
    status: str = ""
    card_token: str = ""
    user_id: int | None = None
    page: int = 0


ID_DIGITS_MAX = 18


def small_id(text: str) -> int | None:
    """A row id typed into a URL or form: ASCII digits that fit a bigint, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > ID_DIGITS_MAX:
        return None
    return int(text)


def filters_from(query: Mapping[str, str]) -> TransactionFilter:
    """The list's filters from a query string, bounded; unknown values are ignored."""
    page = small_id(query.get("page", "0")) or 0
    return TransactionFilter(
        search=query.get("q", "")[:100],
        status=query.get("status", "") if query.get("status") in ("approved", "declined") else "",
        card_token=query.get("card", "")[:64],
        user_id=small_id(query.get("employee", "")),
        page=min(page, 10_000),
    )


@dataclass(frozen=True)
class Company:
    company_id: int
    business_token: str
    name: str
    currency: str


async def company(pool: asyncpg.Pool, company_id: int | None) -> Company | None:
    if company_id is None:
        return None
    row = await pool.fetchrow(
        "SELECT id, business_token, name, currency FROM portal_companies WHERE id = $1",
        company_id,
    )
    if row is None:
        return None
    return Company(row["id"], row["business_token"], row["name"], row["currency"])


def month_start_ms(now_ms: int) -> int:
    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


def next_month_ms(start_ms: int) -> int:
    start = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC)
    following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return int(following.timestamp() * 1000)


async def overview(pool: asyncpg.Pool, found: Company, now_ms: int) -> dict[str, Any]:
    """Cards by state, this month's spend, and its top categories."""
    since = month_start_ms(now_ms)
    async with pool.acquire() as connection:
        states = await connection.fetch(
            "SELECT state, count(*) AS n FROM portal_cards WHERE company_id = $1 GROUP BY state",
            found.company_id,
        )
        by_mcc = await connection.fetch(
            f"""SELECT t.merchant->>'mcc' AS mcc, {SPENT}
               FROM transactions t
               WHERE t.account_token = $1 AND t.at_ms >= $2 AND t.approved
                 AND t.voided_by_seq IS NULL AND t.method = ANY($3::text[])
               GROUP BY 1""",  # noqa: S608
            found.business_token,
            since,
            [*SPEND_METHODS, REVERSAL],
        )
        account = await connection.fetchrow(
            "SELECT posted_minor, held_minor, credit_line_minor FROM accounts "
            "WHERE account_token = $1",
            found.business_token,
        )
    categories: dict[str, int] = {}
    for row in by_mcc:
        name = category_name(row["mcc"])
        categories[name] = categories.get(name, 0) + int(row["spent"] or 0)
    top = sorted(categories.items(), key=lambda item: (-item[1], item[0]))[:5]
    return {
        "cards": {row["state"]: row["n"] for row in states},
        "spent_minor": sum(categories.values()),
        "purchases": sum(int(row["n"]) for row in by_mcc),
        "top_categories": top,
        "available_minor": _available(account),
    }


def _available(account: asyncpg.Record | None) -> int | None:
    if account is None:
        return None
    return int(account["posted_minor"] - account["held_minor"] + account["credit_line_minor"])


TRANSACTION_COLUMNS = """
    t.token, t.method, t.amount_minor, t.currency, t.approved, t.decline_reason,
    t.voided_by_seq, t.merchant->>'name' AS merchant_name, t.merchant->>'mcc' AS mcc,
    t.merchant->>'country' AS country, t.at_ms, t.card_token, c.last_four,
    u.display_name AS holder_name,
    (SELECT h.state FROM holds h WHERE h.hold_token = t.token) AS hold_state
"""


def _where(filters: TransactionFilter, arguments: list[Any]) -> str:
    clauses = []
    if filters.search:
        arguments.append(f"%{_like_escaped(filters.search)}%")
        clauses.append(f"t.merchant->>'name' ILIKE ${len(arguments)}")
    if filters.status == "declined":
        clauses.append("(NOT t.approved OR t.voided_by_seq IS NOT NULL)")
    elif filters.status == "approved":
        clauses.append("t.approved AND t.voided_by_seq IS NULL")
    if filters.card_token:
        arguments.append(filters.card_token)
        clauses.append(f"t.card_token = ${len(arguments)}")
    if filters.user_id is not None:
        arguments.append(filters.user_id)
        clauses.append(f"c.user_id = ${len(arguments)}")
    return "".join(f" AND {clause}" for clause in clauses)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def company_transactions(
    pool: asyncpg.Pool, found: Company, filters: TransactionFilter
) -> list[dict[str, Any]]:
    arguments: list[Any] = [found.business_token]
    where = _where(filters, arguments)
    arguments.append(filters.page * PAGE_ROWS)
    # Only constant SQL is spliced in (columns, clauses from _where); values are parameters.
    rows = await pool.fetch(
        f"""SELECT {TRANSACTION_COLUMNS}
            FROM transactions t
            LEFT JOIN portal_cards c ON c.card_token = t.card_token
            LEFT JOIN portal_users u ON u.id = c.user_id
            WHERE t.account_token = $1 {where}
            ORDER BY t.at_ms DESC, t.token LIMIT {PAGE_ROWS} OFFSET ${len(arguments)}""",  # noqa: S608
        *arguments,
    )
    return [_transaction(row) for row in rows]


async def holder_transactions(
    pool: asyncpg.Pool, user_id: int, filters: TransactionFilter
) -> list[dict[str, Any]]:
    arguments: list[Any] = [user_id]
    where = _where(filters, arguments)
    arguments.append(filters.page * PAGE_ROWS)
    # Only constant SQL is spliced in (columns, clauses from _where); values are parameters.
    rows = await pool.fetch(
        f"""SELECT {TRANSACTION_COLUMNS}
            FROM portal_cards c
            JOIN transactions t ON t.card_token = c.card_token
            JOIN portal_users u ON u.id = c.user_id
            WHERE c.user_id = $1 {where}
            ORDER BY t.at_ms DESC, t.token LIMIT {PAGE_ROWS} OFFSET ${len(arguments)}""",  # noqa: S608
        *arguments,
    )
    return [_transaction(row) for row in rows]


def _transaction(row: asyncpg.Record) -> dict[str, Any]:
    voided = row["voided_by_seq"] is not None
    status = status_of(row["method"], row["approved"], voided, row["hold_state"])
    return {
        "token": row["token"],
        "at": dt.datetime.fromtimestamp(row["at_ms"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "merchant": row["merchant_name"] or "",
        "category": category_name(row["mcc"]),
        "country": row["country"] or "",
        "amount_minor": row["amount_minor"],
        "currency": row["currency"] or "USD",
        "status": status,
        "reason": decline_words(row["decline_reason"]) if status == "declined" else "",
        "card": row["last_four"] or "",
        "holder": row["holder_name"] or "",
    }


async def holder_cards(pool: asyncpg.Pool, user_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM portal_cards WHERE user_id = $1 ORDER BY created_at", user_id
    )
    return rows


async def holder_money(pool: asyncpg.Pool, user_id: int, account_token: str) -> dict[str, Any]:
    """The account the holder's cards draw on, and the holder's own open holds."""
    account = await pool.fetchrow(
        "SELECT posted_minor, held_minor, credit_line_minor, currency FROM accounts "
        "WHERE account_token = $1",
        account_token,
    )
    holds = await pool.fetch(
        """SELECT h.hold_token, h.amount_minor, h.expires_at_ms, t.merchant->>'name' AS merchant,
                  c.last_four
           FROM portal_cards c
           JOIN transactions t ON t.card_token = c.card_token
           JOIN holds h ON h.hold_token = t.token
           WHERE c.user_id = $1 AND h.state = 'OPEN'
           ORDER BY t.at_ms DESC LIMIT 100""",
        user_id,
    )
    return {
        "available_minor": _available(account),
        "currency": account["currency"] if account and account["currency"] else "USD",
        "holds": [dict(hold) for hold in holds],
    }


async def report(
    pool: asyncpg.Pool, found: Company, since_ms: int, until_ms: int
) -> list[dict[str, Any]]:
    """Spend by month, employee and category for the company, in one statement."""
    rows = await pool.fetch(
        f"""SELECT to_char(to_timestamp(t.at_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
                  coalesce(u.display_name, '(no card)') AS employee,
                  t.merchant->>'mcc' AS mcc, {SPENT}
           FROM transactions t
           LEFT JOIN portal_cards c ON c.card_token = t.card_token
           LEFT JOIN portal_users u ON u.id = c.user_id
           WHERE t.account_token = $1 AND t.at_ms >= $2 AND t.at_ms < $3 AND t.approved
             AND t.voided_by_seq IS NULL AND t.method = ANY($4::text[])
           GROUP BY 1, 2, 3""",  # noqa: S608
        found.business_token,
        since_ms,
        until_ms,
        [*SPEND_METHODS, REVERSAL],
    )
    folded: dict[tuple[str, str, str], list[int]] = {}
    for row in rows:
        key = (row["month"], row["employee"], category_name(row["mcc"]))
        totals = folded.setdefault(key, [0, 0])
        totals[0] += int(row["spent"] or 0)
        totals[1] += int(row["n"])
    return [
        {"month": m, "employee": e, "category": c, "spent_minor": s, "purchases": n}
        for (m, e, c), (s, n) in sorted(folded.items())
    ]


def month_label(start_ms: int) -> str:
    return dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).strftime("%Y-%m")
