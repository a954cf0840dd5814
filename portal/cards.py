"""Card operations: issue a card, freeze and unfreeze, and who may touch which card.

Each change is loaded into the engine first (so it decides with it from the next
authorization on) and then recorded in the portal's tables with its audit row, in one
transaction. A crash between the two leaves the engine ahead, never behind.
"""

import datetime as dt
from typing import Any

import asyncpg

from portal import audit, documents, groups
from portal.gateway import GatewayUnavailable
from portal.queries import Company
from portal.roles import Viewer
from portal.web import Portal

CARD_TOKEN_LENGTH = 20
HOLDER_TOKEN_LENGTH = 20
PERSONAL_PRODUCT = "portal-personal-cards"
STATES = {"freeze": "SUSPENDED", "unfreeze": "ACTIVE"}
EXPIRY_YEARS = 4


def new_holder_token(portal: Portal) -> str:
    return "h-" + portal.ids.token(HOLDER_TOKEN_LENGTH)


def _names(display_name: str) -> tuple[str, str]:
    first, _, last = display_name.strip().partition(" ")
    return (first or "Cardholder")[:40], (last or "-")[:40]


def _expiration(portal: Portal) -> str:
    year = dt.datetime.fromtimestamp(portal.clock.now_ms() / 1000, dt.UTC).year
    return f"12{(year + EXPIRY_YEARS) % 100:02d}"


async def company_card(pool: asyncpg.Pool, company_id: int, card_token: str) -> Any:
    """The card if it belongs to the company, else None (whatever token was typed)."""
    return await pool.fetchrow(
        "SELECT * FROM portal_cards WHERE card_token = $1 AND company_id = $2",
        card_token,
        company_id,
    )


async def holder_card(pool: asyncpg.Pool, user_id: int, card_token: str) -> Any:
    return await pool.fetchrow(
        "SELECT * FROM portal_cards WHERE card_token = $1 AND user_id = $2", card_token, user_id
    )


async def issue(
    portal: Portal, viewer: Viewer, holder: Any, found: Company | None, address: str
) -> str:
    """Issue a card to `holder` (a portal_users row); employees draw on the company."""
    card_token = "card-" + portal.ids.token(CARD_TOKEN_LENGTH)
    last_four = "".join(str(ord(char) % 10) for char in card_token[-4:])
    expiration = _expiration(portal)
    first, last = _names(holder["display_name"])
    if found is not None:
        document = documents.holder(holder["holder_token"], first, last, found.business_token)
        product = documents.card_product_token(found.business_token)
    else:
        document = {
            **documents.personal_product(PERSONAL_PRODUCT),
            **documents.holder(holder["holder_token"], first, last, None),
        }
        product = PERSONAL_PRODUCT
    document.update(
        documents.card(card_token, holder["holder_token"], product, last_four, expiration)
    )
    # A first card is when the engine learns of the user: their groups' controls come with it.
    grouped, group_rows = await groups.member_document(
        portal.pool, holder["id"], holder["holder_token"], portal.currency
    )
    await portal.loader.load(documents.merge(document, grouped))

    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """INSERT INTO portal_cards (card_token, user_id, company_id, last_four, expiration)
               VALUES ($1, $2, $3, $4, $5)""",
            card_token,
            holder["id"],
            found.company_id if found else None,
            last_four,
            expiration,
        )
        await audit.record(
            connection,
            portal.clock,
            viewer,
            "issue_card",
            card_token,
            address,
            {"holder": holder["email"]},
        )
        await groups.store_member_rows(connection, group_rows)
    return card_token


async def change_state(portal: Portal, viewer: Viewer, card: Any, action: str, address: str) -> str:
    """Freeze or unfreeze; the engine declines the next authorization of a frozen card."""
    state = STATES[action]
    if card["state"] == "TERMINATED":
        raise ValueError("A terminated card cannot change state.")
    transition = f"tr-{portal.ids.token(24)}"
    await portal.loader.load(documents.card_state(transition, card["card_token"], state))
    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "UPDATE portal_cards SET state = $2 WHERE card_token = $1", card["card_token"], state
        )
        await audit.record(
            connection, portal.clock, viewer, action, card["card_token"], address, {"state": state}
        )
    return state


async def state_from_form(
    portal: Portal, viewer: Viewer, card: Any, form: Any, address: str
) -> tuple[int, str] | None:
    """Apply a posted freeze/unfreeze; the status and problem to show, or None when done."""
    action = form.get("action", "")
    if action not in STATES:
        return 400, "Choose freeze or unfreeze."
    try:
        await change_state(portal, viewer, card, action, address)
    except (ValueError, GatewayUnavailable) as error:
        return 409, str(error)
    return None
