"""Employee groups and their expense controls.

The engine knows no groups: a group's control is loaded as one control per member, on the
member's user token, all in one document. A member who joins later, or gets a first card
later (the engine learns of a user with their first card), gets the group's controls then.
"""

import hashlib
from typing import Any

import asyncpg

from portal import audit, documents
from portal.categories import BY_TOKEN, country_problem
from portal.controls import AMOUNT_KINDS, BLOCK_KINDS, ControlError
from portal.roles import Viewer
from portal.web import Portal


def member_token(holder_token: str, group_id: int, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{group_id}:{kind}:{value}".encode()).hexdigest()[:10]
    return f"{holder_token}-{digest}"


def group_token(group_id: int, kind: str, value: str) -> str:
    return f"group-{group_id}-{kind}-{value}"[:36]


def _control(
    token: str,
    holder_token: str,
    kind: str,
    amount_minor: int | None,
    value: str | None,
    currency: str,
    active: bool,
) -> documents.Document:
    scope = documents.association(None, holder_token)
    if kind in AMOUNT_KINDS:
        return documents.amount_limit(token, scope, kind, amount_minor or 1, currency, active)
    return documents.block(token, scope, kind, str(value), active)


async def members_with_cards(pool: asyncpg.Pool, group_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        """SELECT u.id, u.holder_token FROM portal_group_members m
           JOIN portal_users u ON u.id = m.user_id
           WHERE m.group_id = $1 AND u.active
             AND EXISTS (SELECT 1 FROM portal_cards c WHERE c.user_id = u.id)""",
        group_id,
    )
    return rows


def checked_value(kind: str, value: str) -> str:
    if kind == "country":
        value = value.strip().upper()
        if problem := country_problem(value):
            raise ControlError(problem)
    elif kind == "mcc_group" and value not in BY_TOKEN:
        raise ControlError("Choose one of the listed categories.")
    return value


async def set_control(
    portal: Portal,
    viewer: Viewer,
    group: Any,
    kind: str,
    amount_minor: int | None,
    value: str,
    active: bool,
    address: str,
) -> int:
    """Set the group's control and load it for every member with a card; the count."""
    if kind not in AMOUNT_KINDS and kind not in BLOCK_KINDS:
        raise ControlError("Choose a kind of control.")
    value = checked_value(kind, value) if kind in BLOCK_KINDS else ""
    members = await members_with_cards(portal.pool, group["id"])
    parts = [
        _control(
            member_token(m["holder_token"], group["id"], kind, value),
            m["holder_token"],
            kind,
            amount_minor,
            value,
            portal.currency,
            active,
        )
        for m in members
    ]
    if parts:
        await portal.loader.load(documents.merge(*parts))

    rows = [(group_token(group["id"], kind, value), None)] + [
        (member_token(m["holder_token"], group["id"], kind, value), m["id"]) for m in members
    ]
    async with portal.pool.acquire() as connection, connection.transaction():
        await store_member_rows(
            connection,
            [
                (
                    token,
                    group["company_id"],
                    user_id,
                    group["id"],
                    kind,
                    amount_minor,
                    value or None,
                    active,
                )
                for token, user_id in rows
            ],
        )
        await audit.record(
            connection,
            portal.clock,
            viewer,
            f"set_group_{kind}",
            group["name"],
            address,
            {
                "amount_minor": amount_minor,
                "value": value,
                "active": active,
                "members": len(members),
            },
        )
    return len(members)


async def member_document(
    pool: asyncpg.Pool, user_id: int, holder_token: str, currency: str
) -> tuple[documents.Document, list[tuple[Any, ...]]]:
    """The group controls `user_id` should carry, and their portal_controls rows."""
    controls = await pool.fetch(
        """SELECT c.group_id, c.company_id, c.kind, c.amount_minor, c.scope_value
           FROM portal_controls c
           JOIN portal_group_members m ON m.group_id = c.group_id AND m.user_id = $1
           WHERE c.user_id IS NULL AND c.active""",
        user_id,
    )
    parts, rows = [], []
    for c in controls:
        value = c["scope_value"] or ""
        token = member_token(holder_token, c["group_id"], c["kind"], value)
        parts.append(
            _control(token, holder_token, c["kind"], c["amount_minor"], value, currency, True)
        )
        rows.append(
            (
                token,
                c["company_id"],
                user_id,
                c["group_id"],
                c["kind"],
                c["amount_minor"],
                c["scope_value"],
                True,
            )
        )
    return documents.merge(*parts), rows


async def store_member_rows(connection: Any, rows: list[tuple[Any, ...]]) -> None:
    await connection.executemany(
        """INSERT INTO portal_controls (token, company_id, user_id, group_id, kind,
                                        amount_minor, scope_value, set_by, active)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'company', $8)
           ON CONFLICT (token) DO UPDATE SET amount_minor = EXCLUDED.amount_minor,
               active = EXCLUDED.active, updated_at = now()""",
        rows,
    )


async def add_member(portal: Portal, viewer: Viewer, group: Any, member: Any, address: str) -> None:
    """Add an employee; if the engine knows them (they have a card), load the group's
    controls for them in the same step."""
    has_card = await portal.pool.fetchval(
        "SELECT 1 FROM portal_cards WHERE user_id = $1", member["id"]
    )
    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO portal_group_members (group_id, user_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            group["id"],
            member["id"],
        )
        await audit.record(
            connection,
            portal.clock,
            viewer,
            "add_group_member",
            group["name"],
            address,
            {"member": member["email"]},
        )
    if has_card:
        document, rows = await member_document(
            portal.pool, member["id"], member["holder_token"], portal.currency
        )
        if document:
            await portal.loader.load(document)
            async with portal.pool.acquire() as connection:
                await store_member_rows(connection, rows)
