"""Company pages (/company): overview, employees, cards and their controls, transactions,
and expense reports with CSV export. Every read and write is scoped to the viewer's
company; an id from another company answers 404, as an unknown one does."""

import contextlib
import csv
import datetime as dt
import io
from typing import Any

from aiohttp import web

from portal import audit, cards, controls, queries, users
from portal.gateway import GatewayUnavailable, ProgramRejected
from portal.money import AmountError, decimal_text, parse_amount
from portal.roles import Role
from portal.web import Context, not_found, see_other


async def company_of(context: Context) -> queries.Company:
    found = await queries.company(context.portal.pool, context.viewer.company_id)
    assert found is not None, "a company admin always has a company"
    return found


async def overview(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    summary = await queries.overview(context.portal.pool, found, context.portal.clock.now_ms())
    recent = await queries.company_transactions(
        context.portal.pool, found, queries.TransactionFilter()
    )
    return context.render(
        "company/overview.html", company=found, summary=summary, transactions=recent[:10]
    )


async def employees(context: Context, status: int = 200, **extra: Any) -> web.StreamResponse:
    found = await company_of(context)
    rows = await context.portal.pool.fetch(
        """SELECT u.id, u.email, u.display_name, u.role, u.active,
                  (SELECT count(*) FROM portal_cards c WHERE c.user_id = u.id) AS cards
           FROM portal_users u WHERE u.company_id = $1 ORDER BY u.display_name, u.id""",
        found.company_id,
    )
    values = {"invite_link": None, "error": None, **extra}
    return context.render("company/employees.html", status, company=found, people=rows, **values)


async def invite(context: Context) -> web.StreamResponse:
    outcome = await _invite(context, Role.EMPLOYEE, "invite_employee")
    if isinstance(outcome, tuple):
        return await employees(context, outcome[0], error=outcome[1])
    return await employees(context, 201, invite_link=outcome)


async def _invite(context: Context, role: Role, action: str) -> str | tuple[int, str]:
    """Create a person of the company from the posted name and email, with a one-time
    link to set their password: the link, or a status and problem."""
    found = await company_of(context)
    email = context.form.get("email", "").strip()
    name = context.form.get("name", "").strip()[:100]
    if "@" not in email or not name or len(email) > 320:
        return 400, "Enter their name and email."
    portal = context.portal
    holder = cards.new_holder_token(portal) if role is Role.EMPLOYEE else None
    async with portal.pool.acquire() as connection, connection.transaction():
        try:
            user_id = await users.create_user(
                connection, email, name, role, company_id=found.company_id, holder_token=holder
            )
        except users.UserError as error:
            return 409, str(error)
        secret = await users.issue_invite(
            connection, user_id, portal.clock, portal.ids, portal.settings.invite_valid_s
        )
        await audit.record(connection, portal.clock, context.viewer, action, email, context.address)
    return f"{context.request.scheme}://{context.request.host}/invite/{secret}"


async def _employee(context: Context) -> Any:
    employee_id = queries.small_id(context.request.match_info["employee_id"])
    if employee_id is None:
        return None
    return await context.portal.pool.fetchrow(
        "SELECT * FROM portal_users WHERE id = $1 AND company_id = $2 AND role = 'employee'",
        employee_id,
        context.viewer.company_id,
    )


async def employee(
    context: Context, status: int = 200, error: str | None = None
) -> web.StreamResponse:
    person = await _employee(context)
    if person is None:
        return not_found(context)
    found = await company_of(context)
    held = await queries.holder_cards(context.portal.pool, person["id"])
    limits = await controls.active_controls(context.portal.pool, None, person["id"])
    return context.render(
        "company/employee.html",
        status,
        company=found,
        person=person,
        cards=held,
        controls=limits,
        error=error,
        categories=category_choices(),
    )


async def deactivate(context: Context) -> web.StreamResponse:
    person = await _employee(context)
    if person is None:
        return not_found(context)
    portal = context.portal
    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "UPDATE portal_users SET active = false WHERE id = $1", person["id"]
        )
        await audit.record(
            connection,
            portal.clock,
            context.viewer,
            "deactivate_employee",
            person["email"],
            context.address,
        )
    frozen = await portal.pool.fetch(
        "SELECT * FROM portal_cards WHERE user_id = $1 AND state = 'ACTIVE'", person["id"]
    )
    for card in frozen:
        await cards.change_state(portal, context.viewer, card, "freeze", context.address)
    await portal.sessions.end_all(person["id"])
    return see_other(f"/company/employees/{person['id']}")


async def issue_card(context: Context) -> web.StreamResponse:
    person = await _employee(context)
    if person is None:
        return not_found(context)
    if not person["active"]:
        return await employee(context, 409, "This employee is deactivated.")
    found = await company_of(context)
    try:
        card_token = await cards.issue(
            context.portal, context.viewer, person, found, context.address
        )
    except (ProgramRejected, GatewayUnavailable) as error:
        return await employee(context, 503, f"The card was not issued: {error}")
    return see_other(f"/company/cards/{card_token}")


async def cards_page(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    rows = await context.portal.pool.fetch(
        """SELECT c.card_token, c.last_four, c.state, c.expiration, u.display_name, u.id
           FROM portal_cards c JOIN portal_users u ON u.id = c.user_id
           WHERE c.company_id = $1 ORDER BY c.created_at DESC LIMIT 500""",
        found.company_id,
    )
    return context.render("company/cards.html", company=found, cards=rows)


async def card(context: Context, status: int = 200, error: str | None = None) -> web.StreamResponse:
    found = await company_of(context)
    row = await cards.company_card(
        context.portal.pool, found.company_id, context.request.match_info["card_token"]
    )
    if row is None:
        return not_found(context)
    limits = await controls.active_controls(context.portal.pool, row["card_token"], None)
    history = await queries.company_transactions(
        context.portal.pool, found, queries.TransactionFilter(card_token=row["card_token"])
    )
    return context.render(
        "company/card.html",
        status,
        company=found,
        card=row,
        controls=limits,
        transactions=history,
        error=error,
        categories=category_choices(),
    )


def category_choices() -> list[tuple[str, str]]:
    from portal.categories import CATEGORIES

    return [(category.token, category.name) for category in CATEGORIES]


async def card_state(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    row = await cards.company_card(
        context.portal.pool, found.company_id, context.request.match_info["card_token"]
    )
    if row is None:
        return not_found(context)
    problem = await cards.state_from_form(
        context.portal, context.viewer, row, context.form, context.address
    )
    if problem is not None:
        return await card(context, *problem)
    return see_other(f"/company/cards/{row['card_token']}")


async def card_controls(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    row = await cards.company_card(
        context.portal.pool, found.company_id, context.request.match_info["card_token"]
    )
    if row is None:
        return not_found(context)
    target = controls.Target(found.company_id, card_token=row["card_token"])
    problem = await apply_control(context, target, "company")
    if problem is not None:
        return await card(context, 400, problem)
    return see_other(f"/company/cards/{row['card_token']}")


async def employee_controls(context: Context) -> web.StreamResponse:
    person = await _employee(context)
    if person is None:
        return not_found(context)
    target = controls.Target(
        context.viewer.company_id, user_id=person["id"], holder_token=person["holder_token"]
    )
    if not await context.portal.pool.fetchval(
        "SELECT 1 FROM portal_cards WHERE user_id = $1", person["id"]
    ):
        return await employee(context, 409, "Issue a card first; controls apply to its holder.")
    problem = await apply_control(context, target, "company")
    if problem is not None:
        return await employee(context, 400, problem)
    return see_other(f"/company/employees/{person['id']}")


async def apply_control(context: Context, target: controls.Target, set_by: str) -> str | None:
    """Apply the posted control form; a problem to show, or None."""
    form = context.form
    kind = form.get("kind", "")
    remove = form.get("action") == "remove"
    try:
        if kind in controls.AMOUNT_KINDS:
            amount = (
                None if remove else parse_amount(form.get("amount", ""), context.portal.currency)
            )
            await controls.set_amount_limit(
                context.portal, context.viewer, target, kind, amount, set_by, context.address
            )
        elif kind in controls.BLOCK_KINDS and set_by == "company":
            await controls.set_block(
                context.portal,
                context.viewer,
                target,
                kind,
                form.get("value", ""),
                not remove,
                context.address,
            )
        else:
            return "Choose a kind of control."
    except (AmountError, controls.ControlError) as error:
        return str(error)
    except ProgramRejected as error:
        return f"The gateway refused the control: {error}"
    except GatewayUnavailable as error:
        return f"The gateway is unavailable; nothing changed: {error}"
    return None


async def transactions(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    filters = queries.filters_from(context.request.query)
    rows = await queries.company_transactions(context.portal.pool, found, filters)
    return context.render(
        "transactions.html",
        company=found,
        transactions=rows,
        filters=filters,
        base="/company/transactions",
    )


def _month_range(context: Context) -> tuple[str, int, int]:
    month = context.request.query.get("month", "")
    now_ms = context.portal.clock.now_ms()
    start = queries.month_start_ms(now_ms)
    if len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit():
        with contextlib.suppress(ValueError):
            start = int(
                dt.datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
                * 1000
            )
    label = queries.month_label(start)
    return label, start, queries.next_month_ms(start)


async def reports(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    label, start, until = _month_range(context)
    rows = await queries.report(context.portal.pool, found, start, until)
    return context.render("company/reports.html", company=found, rows=rows, month=label)


async def report_csv(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    label, start, until = _month_range(context)
    rows = await queries.report(context.portal.pool, found, start, until)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["month", "employee", "category", "purchases", "amount", "currency"])
    for row in rows:
        writer.writerow(
            [
                row["month"],
                _cell(row["employee"]),
                row["category"],
                row["purchases"],
                decimal_text(row["spent_minor"], found.currency),
                found.currency,
            ]
        )
    response = web.Response(text=buffer.getvalue(), content_type="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="expenses-{label}.csv"'
    return response


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def audit_log(context: Context) -> web.StreamResponse:
    found = await company_of(context)
    rows = await context.portal.pool.fetch(
        """SELECT at, actor_email, actor_role, action, target, address FROM portal_audit
           WHERE company_id = $1 ORDER BY id DESC LIMIT 200""",
        found.company_id,
    )
    return context.render("audit.html", company=found, rows=rows)


async def settings_page(context: Context, status: int = 200, **extra: Any) -> web.StreamResponse:
    found = await company_of(context)
    admins = await context.portal.pool.fetch(
        "SELECT display_name, email, totp_enabled FROM portal_users "
        "WHERE company_id = $1 AND role = 'company_admin' AND active ORDER BY display_name",
        found.company_id,
    )
    values = {"invite_link": None, "error": None, **extra}
    return context.render("company/settings.html", status, company=found, admins=admins, **values)


async def invite_admin(context: Context) -> web.StreamResponse:
    """Another admin for the company; they enrol a second factor at their first sign-in."""
    outcome = await _invite(context, Role.COMPANY_ADMIN, "invite_admin")
    if isinstance(outcome, tuple):
        return await settings_page(context, outcome[0], error=outcome[1])
    return await settings_page(context, 201, invite_link=outcome)
