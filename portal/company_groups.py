"""Company pages for employee groups (/company/groups): create a group, add employees, and
set controls that apply to every member's cards."""

from typing import Any

import asyncpg
from aiohttp import web

from portal import audit, groups, queries
from portal.company import company_of
from portal.controls import AMOUNT_KINDS, ControlError
from portal.gateway import GatewayUnavailable, ProgramRejected
from portal.money import AmountError, parse_amount
from portal.web import Context, not_found, see_other


async def _group(context: Context) -> Any:
    group_id = queries.small_id(context.request.match_info["group_id"])
    if group_id is None:
        return None
    return await context.portal.pool.fetchrow(
        "SELECT * FROM portal_groups WHERE id = $1 AND company_id = $2",
        group_id,
        context.viewer.company_id,
    )


async def groups_page(
    context: Context, status: int = 200, error: str | None = None
) -> web.StreamResponse:
    found = await company_of(context)
    rows = await context.portal.pool.fetch(
        """SELECT g.id, g.name, (SELECT count(*) FROM portal_group_members m
                                 WHERE m.group_id = g.id) AS members
           FROM portal_groups g WHERE g.company_id = $1 ORDER BY g.name""",
        found.company_id,
    )
    return context.render("company/groups.html", status, company=found, groups=rows, error=error)


async def create_group(context: Context) -> web.StreamResponse:
    name = context.form.get("name", "").strip()[:60]
    if not name:
        return await groups_page(context, 400, "Name the group.")
    portal = context.portal
    async with portal.pool.acquire() as connection, connection.transaction():
        try:
            group_id = await connection.fetchval(
                "INSERT INTO portal_groups (company_id, name) VALUES ($1, $2) RETURNING id",
                context.viewer.company_id,
                name,
            )
        except asyncpg.UniqueViolationError:
            return await groups_page(context, 409, f"There is already a group named {name}.")
        await audit.record(
            connection, portal.clock, context.viewer, "create_group", name, context.address
        )
    return see_other(f"/company/groups/{group_id}")


async def group_page(
    context: Context, status: int = 200, error: str | None = None
) -> web.StreamResponse:
    group = await _group(context)
    if group is None:
        return not_found(context)
    pool = context.portal.pool
    members = await pool.fetch(
        """SELECT u.id, u.display_name, u.email FROM portal_group_members m
           JOIN portal_users u ON u.id = m.user_id WHERE m.group_id = $1
           ORDER BY u.display_name""",
        group["id"],
    )
    others = await pool.fetch(
        """SELECT id, display_name FROM portal_users
           WHERE company_id = $1 AND role = 'employee' AND active
             AND id NOT IN (SELECT user_id FROM portal_group_members WHERE group_id = $2)
           ORDER BY display_name""",
        context.viewer.company_id,
        group["id"],
    )
    controls = await pool.fetch(
        "SELECT kind, amount_minor, scope_value, set_by, NULL AS card_token, NULL AS user_id "
        "FROM portal_controls WHERE group_id = $1 AND user_id IS NULL AND active",
        group["id"],
    )
    from portal.company import category_choices

    return context.render(
        "company/group.html",
        status,
        group=group,
        members=members,
        others=others,
        controls=controls,
        error=error,
        categories=category_choices(),
    )


async def add_member(context: Context) -> web.StreamResponse:
    group = await _group(context)
    if group is None:
        return not_found(context)
    employee_id = context.form.get("employee", "")
    member = await context.portal.pool.fetchrow(
        "SELECT * FROM portal_users WHERE id = $1 AND company_id = $2 AND role = 'employee'",
        queries.small_id(employee_id) or 0,
        context.viewer.company_id,
    )
    if member is None:
        return await group_page(context, 400, "Choose an employee of this company.")
    try:
        await groups.add_member(context.portal, context.viewer, group, member, context.address)
    except (ProgramRejected, GatewayUnavailable) as error:
        return await group_page(context, 503, f"Added, but their controls failed: {error}")
    return see_other(f"/company/groups/{group['id']}")


async def group_controls(context: Context) -> web.StreamResponse:
    group = await _group(context)
    if group is None:
        return not_found(context)
    form = context.form
    kind = form.get("kind", "")
    active = form.get("action") != "remove"
    try:
        amount = None
        if kind in AMOUNT_KINDS and active:
            amount = parse_amount(form.get("amount", ""), context.portal.currency)
        await groups.set_control(
            context.portal,
            context.viewer,
            group,
            kind,
            amount,
            form.get("value", ""),
            active,
            context.address,
        )
    except (AmountError, ControlError) as error:
        return await group_page(context, 400, str(error))
    except (ProgramRejected, GatewayUnavailable) as error:
        return await group_page(context, 503, f"Nothing changed: {error}")
    return see_other(f"/company/groups/{group['id']}")
