"""Expense controls: amount limits per transaction, day and month, and blocks of MCC groups
and countries, on one card or on every card of an employee.

A company sets them; a holder may add tighter limits of their own on their card, never
looser than the company's. Each control is an engine velocity or auth control whose token
is derived from its target and kind, so setting it again replaces it.
"""

from dataclasses import dataclass
from typing import Any

import asyncpg

from portal import audit, documents
from portal.categories import BY_TOKEN, country_problem
from portal.roles import Viewer
from portal.web import Portal

AMOUNT_KINDS = ("per_transaction", "daily", "monthly")
BLOCK_KINDS = ("mcc_group", "country")


class ControlError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """A card (card_token) or an employee (user_id with their holder_token)."""

    company_id: int | None
    card_token: str | None = None
    user_id: int | None = None
    holder_token: str | None = None

    @property
    def key(self) -> str:
        return self.card_token or str(self.holder_token)


def control_token(target: Target, kind: str, value: str, set_by: str) -> str:
    suffix = {"per_transaction": "tx", "daily": "day", "monthly": "mon"}.get(kind, value)
    owner = "self" if set_by == "holder" else "co"
    return f"{target.key}-{owner}-{suffix}"[:36]


async def set_amount_limit(
    portal: Portal,
    viewer: Viewer,
    target: Target,
    kind: str,
    amount_minor: int | None,
    set_by: str,
    address: str,
) -> None:
    """Set (or with None remove) a limit; the engine applies it to the next authorization."""
    assert kind in AMOUNT_KINDS
    token = control_token(target, kind, "", set_by)
    if set_by == "holder" and amount_minor is not None:
        ceiling = await company_ceiling(portal.pool, target, kind)
        if ceiling is not None and amount_minor > ceiling:
            raise ControlError("Your limit cannot be above the one your company set.")
    scope = documents.association(
        target.card_token, None if target.card_token else target.holder_token
    )
    active = amount_minor is not None
    await portal.loader.load(
        documents.amount_limit(token, scope, kind, amount_minor or 1, portal.currency, active)
    )
    await _record(portal, viewer, target, token, kind, amount_minor, None, set_by, active, address)


async def set_block(
    portal: Portal,
    viewer: Viewer,
    target: Target,
    kind: str,
    value: str,
    active: bool,
    address: str,
) -> None:
    assert kind in BLOCK_KINDS
    value = value.strip().upper() if kind == "country" else value.strip()
    if kind == "mcc_group" and value not in BY_TOKEN:
        raise ControlError("Choose one of the listed categories.")
    if kind == "country" and (problem := country_problem(value)):
        raise ControlError(problem)
    token = control_token(target, kind, value.removeprefix("portal-"), "company")
    scope = documents.association(
        target.card_token, None if target.card_token else target.holder_token
    )
    await portal.loader.load(documents.block(token, scope, kind, value, active))
    await _record(portal, viewer, target, token, kind, None, value, "company", active, address)


async def _record(
    portal: Portal,
    viewer: Viewer,
    target: Target,
    token: str,
    kind: str,
    amount_minor: int | None,
    scope_value: str | None,
    set_by: str,
    active: bool,
    address: str,
) -> None:
    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """INSERT INTO portal_controls
               (token, company_id, card_token, user_id, kind, amount_minor, scope_value,
                set_by, active, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
               ON CONFLICT (token) DO UPDATE SET amount_minor = EXCLUDED.amount_minor,
                   scope_value = EXCLUDED.scope_value, active = EXCLUDED.active,
                   updated_at = now()""",
            token,
            target.company_id,
            target.card_token,
            target.user_id,
            kind,
            amount_minor,
            scope_value,
            set_by,
            active,
        )
        await audit.record(
            connection,
            portal.clock,
            viewer,
            f"set_{kind}",
            target.key,
            address,
            {
                "amount_minor": amount_minor,
                "value": scope_value,
                "active": active,
                "set_by": set_by,
            },
        )


async def company_ceiling(pool: asyncpg.Pool, target: Target, kind: str) -> int | None:
    """The tightest company limit of `kind` over the card and its holder, if any."""
    value = await pool.fetchval(
        """SELECT min(amount_minor) FROM portal_controls
           WHERE kind = $1 AND active AND set_by = 'company'
             AND (card_token = $2 OR user_id = (SELECT user_id FROM portal_cards
                                                WHERE card_token = $2))""",
        kind,
        target.card_token,
    )
    return int(value) if value is not None else None


async def active_controls(
    pool: asyncpg.Pool, card_token: str | None, user_id: int | None
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT token, kind, amount_minor, scope_value, set_by, card_token, user_id
           FROM portal_controls
           WHERE active AND (card_token = $1 OR user_id = $2) ORDER BY kind, token""",
        card_token,
        user_id,
    )
    return [dict(row) for row in rows]
