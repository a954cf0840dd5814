"""Cardholder pages (/me): cards with one-click freeze, balance and holds, transaction
history with search and filters, own limits within the company's, KYC and top-ups for
personal cardholders. Everything is read by the viewer's own user id."""

from aiohttp import web

from portal import audit, cards, controls, documents, queries
from portal.company import apply_control
from portal.funding import RAILS
from portal.gateway import GatewayUnavailable, ProgramRejected
from portal.kyc import KYC_ATTEMPTS_MAX, Applicant, applicant_problems
from portal.money import AmountError, parse_amount
from portal.roles import Role
from portal.web import Context, not_found, see_other


async def _account_token(context: Context) -> str:
    found = await queries.company(context.portal.pool, context.viewer.company_id)
    return found.business_token if found else str(context.viewer.holder_token)


async def dashboard(
    context: Context, status: int = 200, error: str | None = None
) -> web.StreamResponse:
    pool = context.portal.pool
    held = await queries.holder_cards(pool, context.viewer.user_id)
    money = await queries.holder_money(pool, context.viewer.user_id, await _account_token(context))
    recent = await queries.holder_transactions(
        pool, context.viewer.user_id, queries.TransactionFilter()
    )
    kyc = await pool.fetchval(
        "SELECT kyc_status FROM portal_users WHERE id = $1", context.viewer.user_id
    )
    return context.render(
        "me/dashboard.html",
        status,
        cards=held,
        money=money,
        transactions=recent[:10],
        kyc=kyc,
        error=error,
        personal=context.viewer.role is Role.CARDHOLDER,
    )


async def card_state(context: Context) -> web.StreamResponse:
    row = await cards.holder_card(
        context.portal.pool, context.viewer.user_id, context.request.match_info["card_token"]
    )
    if row is None:
        return not_found(context)
    problem = await cards.state_from_form(
        context.portal, context.viewer, row, context.form, context.address
    )
    if problem is not None:
        return await dashboard(context, *problem)
    return see_other("/me")


async def card(context: Context, status: int = 200, error: str | None = None) -> web.StreamResponse:
    row = await cards.holder_card(
        context.portal.pool, context.viewer.user_id, context.request.match_info["card_token"]
    )
    if row is None:
        return not_found(context)
    limits = await controls.active_controls(
        context.portal.pool, row["card_token"], context.viewer.user_id
    )
    return context.render("me/card.html", status, card=row, controls=limits, error=error)


async def card_controls(context: Context) -> web.StreamResponse:
    row = await cards.holder_card(
        context.portal.pool, context.viewer.user_id, context.request.match_info["card_token"]
    )
    if row is None:
        return not_found(context)
    target = controls.Target(row["company_id"], card_token=row["card_token"])
    problem = await apply_control(context, target, "holder")
    if problem is not None:
        return await card(context, 400, problem)
    return see_other(f"/me/cards/{row['card_token']}")


async def transactions(context: Context) -> web.StreamResponse:
    filters = queries.filters_from(context.request.query)
    rows = await queries.holder_transactions(context.portal.pool, context.viewer.user_id, filters)
    return context.render(
        "transactions.html",
        company=None,
        transactions=rows,
        filters=filters,
        base="/me/transactions",
    )


async def kyc_page(
    context: Context, status: int = 200, problems: list[str] | None = None
) -> web.StreamResponse:
    row = await context.portal.pool.fetchrow(
        "SELECT kyc_status, kyc_attempts FROM portal_users WHERE id = $1",
        context.viewer.user_id,
    )
    checks = await context.portal.pool.fetch(
        "SELECT status, reasons, submitted_at FROM portal_kyc_checks WHERE user_id = $1 "
        "ORDER BY id DESC",
        context.viewer.user_id,
    )
    return context.render(
        "me/kyc.html",
        status,
        kyc=row,
        checks=checks,
        problems=problems or [],
        attempts_max=KYC_ATTEMPTS_MAX,
    )


async def kyc_submit(context: Context) -> web.StreamResponse:
    portal, viewer, form = context.portal, context.viewer, context.form
    row = await portal.pool.fetchrow("SELECT * FROM portal_users WHERE id = $1", viewer.user_id)
    assert row is not None, "a signed-in viewer exists"
    if row["kyc_status"] == "approved" or row["kyc_attempts"] >= KYC_ATTEMPTS_MAX:
        return await kyc_page(context, 409, ["No more attempts; contact support."])
    applicant = Applicant(
        *(
            form.get(name, "")[:200]
            for name in ("first_name", "last_name", "birth_date", "address", "country")
        )
    )
    problems = applicant_problems(applicant)
    if problems:
        return await kyc_page(context, 400, problems)
    reference = f"kyc-{viewer.user_id}-{row['kyc_attempts'] + 1}"
    result = await portal.kyc.check(str(viewer.holder_token), applicant, reference)
    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """INSERT INTO portal_kyc_checks (user_id, reference, status, reasons, submitted_at)
               VALUES ($1, $2, $3, $4, now())""",
            viewer.user_id,
            reference,
            result.status,
            " ".join(result.reasons),
        )
        await connection.execute(
            "UPDATE portal_users SET kyc_status = $2, kyc_attempts = kyc_attempts + 1 "
            "WHERE id = $1",
            viewer.user_id,
            result.status,
        )
        await audit.record(
            connection,
            portal.clock,
            viewer,
            "kyc_submitted",
            reference,
            context.address,
            {"status": result.status},
        )
    if result.status == "approved" and not await portal.pool.fetchval(
        "SELECT 1 FROM portal_cards WHERE user_id = $1", viewer.user_id
    ):
        try:
            await cards.issue(portal, viewer, row, None, context.address)
        except (ProgramRejected, GatewayUnavailable) as error:
            return await kyc_page(context, 503, [f"Approved, but no card yet: {error}"])
    return see_other("/me/kyc")


async def topup_page(
    context: Context, status: int = 200, message: str | None = None
) -> web.StreamResponse:
    rows = await context.portal.pool.fetch(
        "SELECT rail, amount_minor, currency, status, created_at FROM portal_topups "
        "WHERE user_id = $1 ORDER BY id DESC LIMIT 20",
        context.viewer.user_id,
    )
    return context.render("me/topup.html", status, topups=rows, rails=RAILS, message=message)


async def topup(context: Context) -> web.StreamResponse:
    portal, viewer = context.portal, context.viewer
    kyc = await portal.pool.fetchval(
        "SELECT kyc_status FROM portal_users WHERE id = $1", viewer.user_id
    )
    if kyc != "approved":
        return await topup_page(context, 409, "Finish the identity check first.")
    rail = context.form.get("rail", "")
    if rail not in RAILS:
        return await topup_page(context, 400, "Choose how to pay.")
    try:
        amount = parse_amount(context.form.get("amount", ""), portal.currency)
    except AmountError as error:
        return await topup_page(context, 400, str(error))
    reference = f"top-{portal.ids.token(24)}"
    result = await portal.funding.collect(
        str(viewer.holder_token), rail, amount, portal.currency, reference
    )
    order = reference if result.status == "settled" else None
    if order is not None:
        try:
            await portal.loader.load(
                documents.funding(order, str(viewer.holder_token), amount, portal.currency)
            )
        except (ProgramRejected, GatewayUnavailable) as error:
            return await topup_page(context, 503, f"Received, not yet credited: {error}")
    await _record_topup(context, rail, amount, result.status, reference, order)
    return await topup_page(context, 200, result.message)


async def _record_topup(
    context: Context, rail: str, amount: int, status: str, reference: str, order: str | None
) -> None:
    portal = context.portal
    async with portal.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """INSERT INTO portal_topups (user_id, rail, amount_minor, currency, status,
                                          provider_reference, gpa_order_token, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, now())""",
            context.viewer.user_id,
            rail,
            amount,
            portal.currency,
            status,
            reference,
            order,
        )
        await audit.record(
            connection,
            portal.clock,
            context.viewer,
            "top_up",
            reference,
            context.address,
            {"amount_minor": amount, "status": status},
        )
