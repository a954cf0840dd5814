"""Reconciliation: the accounts read model against the journal and against the engine.

The three must agree to the minor unit for every account: the projection (`accounts`), the
sum of the journal's deltas for the account, and the engine's memory.
"""

import asyncio
from typing import Any

import asyncpg

from pyjit.decider import Decider

JOURNAL_SUMS = """
WITH moves AS (
    SELECT account_token, posted_delta_minor AS posted, held_delta_minor AS held
    FROM journal WHERE account_token IS NOT NULL
    UNION ALL
    SELECT a->>'account', coalesce((a->>'posted_delta_minor')::bigint, 0),
           coalesce((a->>'held_delta_minor')::bigint, 0)
    FROM journal j,
         jsonb_array_elements(CASE WHEN jsonb_typeof(convert_from(j.data, 'UTF8')::jsonb
                                                     ->'accounts') = 'array'
                                   THEN convert_from(j.data, 'UTF8')::jsonb->'accounts'
                                   ELSE '[]'::jsonb END) AS a
    WHERE j.kind = 'expiry'
), sums AS (
    SELECT account_token, sum(posted)::bigint AS posted, sum(held)::bigint AS held
    FROM moves GROUP BY account_token
)
SELECT coalesce(a.account_token, s.account_token) AS account_token, a.currency,
       a.posted_minor, a.held_minor, s.posted AS journal_posted, s.held AS journal_held
FROM accounts a FULL JOIN sums s ON s.account_token = a.account_token
WHERE coalesce(a.account_token, s.account_token) LIKE $1 || '%'
ORDER BY 1
"""

QUIESCE_TIMEOUT_S = 10.0


async def reconcile(pool: asyncpg.Pool, decider: Decider, prefix: str) -> dict[str, Any]:
    """Compare every account whose token starts with `prefix` in the three places.

    Admission pauses until the journal has caught up with the engine and the read models
    with the journal, so the three are compared at one moment; the pause lasts one commit,
    one projection and the engine read.
    """
    async with decider.quiesced(QUIESCE_TIMEOUT_S), pool.acquire() as connection:
        async with asyncio.timeout(QUIESCE_TIMEOUT_S):
            await decider.writer.projector.wait_for(decider.writer.committed_seq)
        engine_balances = {
            account.token: (account.posted_minor, account.held_minor)
            for account in decider.engine.accounts()
            if account.token.startswith(prefix)
        }
        rows = await connection.fetch(JOURNAL_SUMS, _like_escape(prefix))

    accounts = []
    mismatches = 0
    for row in rows:
        token = row["account_token"]
        engine_posted, engine_held = engine_balances.pop(token, (None, None))
        entry = {
            "account": token,
            "currency": row["currency"],
            "posted_minor": row["posted_minor"],
            "held_minor": row["held_minor"],
            "journal_posted_minor": row["journal_posted"] or 0,
            "journal_held_minor": row["journal_held"] or 0,
            "engine_posted_minor": engine_posted,
            "engine_held_minor": engine_held,
        }
        entry["ok"] = (
            entry["posted_minor"] == entry["journal_posted_minor"] == engine_posted
            and entry["held_minor"] == entry["journal_held_minor"] == engine_held
        )
        mismatches += not entry["ok"]
        accounts.append(entry)
    for token, (posted, held) in sorted(engine_balances.items()):
        if posted or held:
            mismatches += 1
            accounts.append(
                {
                    "account": token,
                    "engine_posted_minor": posted,
                    "engine_held_minor": held,
                    "ok": False,
                }
            )
    return {"accounts": accounts, "mismatches": mismatches, "last_seq": decider.engine.last_seq}


def _like_escape(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
