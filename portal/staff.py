"""Program staff pages (/admin): the live program view, lookup of any card, holder or
token with its lifecycle, companies, and the audit log."""

from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from portal import audit, charts, documents, users
from portal.gateway import GatewayUnavailable, ProgramRejected
from portal.money import AmountError, parse_amount
from portal.roles import Role
from portal.web import Context

WINDOW_MINUTES = 60
# The webhook tables belong to another part (migration 0003); the page does without them.
WEBHOOK_QUEUE = """
SELECT (SELECT count(*) FROM webhook_queue WHERE done_at IS NULL AND dead_at IS NULL)
           AS waiting,
       (SELECT count(*) FROM webhook_queue WHERE dead_at IS NOT NULL) AS dead,
       (SELECT count(*) FROM webhook_parked) AS parked
"""
COMPANY_TOKEN_LENGTH = 16


async def overview(context: Context) -> web.StreamResponse:
    now_ms = context.portal.clock.now_ms()
    since = now_ms - WINDOW_MINUTES * 60_000
    pool = context.portal.pool
    minutes = await pool.fetch(
        """SELECT (at_ms - $1) / 60000 AS minute, count(*) AS n,
                  count(*) FILTER (WHERE approved AND voided_by_seq IS NULL) AS approved
           FROM transactions WHERE at_ms >= $1 AND at_ms <= $2 GROUP BY 1""",
        since,
        now_ms,
    )
    reasons = await pool.fetch(
        """SELECT decline_reason, count(*) AS n FROM transactions
           WHERE at_ms >= $1 AND (NOT approved OR voided_by_seq IS NOT NULL)
           GROUP BY 1 ORDER BY 2 DESC LIMIT 10""",
        since,
    )
    per_minute = [0] * WINDOW_MINUTES
    for row in minutes:
        per_minute[min(int(row["minute"]), WINDOW_MINUTES - 1)] += int(row["n"])
    total = sum(per_minute)
    approved = sum(int(row["approved"]) for row in minutes)
    return context.render(
        "admin/overview.html",
        chart=charts.bars(per_minute, f"Decisions per minute, last {WINDOW_MINUTES} minutes"),
        decisions=total,
        per_minute=round(total / WINDOW_MINUTES, 1),
        approval_rate=f"{approved * 100 / total:.1f} %" if total else "—",
        reasons=reasons,
        gateway=await _gateway_figures(context),
        webhooks=await _webhook_figures(context),
    )


DECISION_HISTOGRAM = "pyjit_jit_decision_seconds"
METRICS_TIMEOUT_S = 2.0


async def _gateway_figures(context: Context) -> dict[str, Any]:
    """Latency percentiles of the gateway's decisions: from this process's metrics when it
    decides here, else from the gateway's /metrics (the portal served alone)."""
    portal = context.portal
    families: list[Metric] = []
    if portal.metrics is not None:
        families = list(portal.metrics.decision_seconds.collect())
    if not _count(families) and portal.gateway_url:
        families = await _remote_families(portal.gateway_url)
    count = _count(families)
    if not count:
        return {"decisions": 0}
    buckets = [
        (float(sample.labels["le"]), sample.value)
        for family in families
        for sample in family.samples
        if sample.name.endswith("_bucket")
    ]
    return {
        "decisions": int(count),
        **{name: _quantile(buckets, count, q) for name, q in (("p50", 0.5), ("p99", 0.99))},
    }


def _count(families: list[Metric]) -> float:
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name.endswith("_count")
    )


async def _remote_families(url: str) -> list[Metric]:
    """The gateway's decision histogram, read from its /metrics; none if unreachable."""
    timeout = aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url.rstrip('/')}/metrics") as answer,
        ):
            text = await answer.text()
    except (aiohttp.ClientError, TimeoutError):
        return []
    return [f for f in text_string_to_metric_families(text) if f.name == DECISION_HISTOGRAM]


def _quantile(buckets: list[tuple[float, float]], count: float, q: float) -> str:
    """The upper bound of the bucket holding quantile `q` (histograms keep no more)."""
    for bound, cumulative in sorted(buckets):
        if cumulative >= q * count:
            return "over 10 s" if bound == float("inf") else f"≤ {bound * 1000:g} ms"
    return "—"


async def _webhook_figures(context: Context) -> dict[str, Any]:
    """The PostgreSQL queue's depth and dead letters when that queue exists, and what this
    process's metrics say (the RabbitMQ consumers report there)."""
    metrics = context.portal.metrics
    figures: dict[str, Any] = {}
    try:
        row = await context.portal.pool.fetchrow(WEBHOOK_QUEUE)
    except asyncpg.UndefinedTableError:
        row = None
    if row is not None:
        figures["queued events"] = row["waiting"]
        figures["dead letters (queue)"] = row["dead"]
        figures["parked, waiting for a parent"] = row["parked"]
    if metrics is not None:
        for family in metrics.webhook_queue_depth.collect():
            for sample in family.samples:
                figures[f"queue {sample.labels.get('queue', '')}"] = int(sample.value)
        for family in metrics.webhook_dead_letters.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    figures["dead letters"] = figures.get("dead letters", 0) + int(sample.value)
    return figures


async def lookup(context: Context) -> web.StreamResponse:
    """Any card, holder (token or email) or transaction token, with its lifecycle."""
    term = context.request.query.get("q", "").strip()[:100]
    pool = context.portal.pool
    found: dict[str, Any] = {}
    if term:
        found["card"] = await pool.fetchrow(
            """SELECT c.*, u.email, u.display_name, u.holder_token FROM portal_cards c
               JOIN portal_users u ON u.id = c.user_id WHERE c.card_token = $1""",
            term,
        )
        found["holder"] = await pool.fetchrow(
            """SELECT id, email, display_name, role, holder_token, active, kyc_status
               FROM portal_users WHERE holder_token = $1 OR email = lower($1)""",
            term,
        )
        found["transaction"] = await pool.fetchrow(
            "SELECT token, card_token, method, amount_minor, currency, approved, "
            "decline_reason, at_ms FROM transactions WHERE token = $1",
            term,
        )
        card_tokens = await pool.fetch(
            """SELECT card_token FROM portal_cards WHERE card_token = $1
               OR user_id = (SELECT id FROM portal_users WHERE holder_token = $1
                             OR email = lower($1))""",
            term,
        )
        tokens = [row["card_token"] for row in card_tokens]
        found["transactions"] = await pool.fetch(
            """SELECT token, card_token, method, amount_minor, currency, approved,
                      decline_reason, merchant->>'name' AS merchant, at_ms
               FROM transactions WHERE card_token = ANY($1::text[])
               ORDER BY at_ms DESC LIMIT 100""",
            tokens,
        )
        found["events"] = await pool.fetch(
            """SELECT at, actor_email, action, target, detail FROM portal_audit
               WHERE target = $1 OR target = ANY($2::text[]) ORDER BY id DESC LIMIT 100""",
            term,
            tokens,
        )
        found["processor"] = await _processor_states(pool, [term, *tokens])
    return context.render("admin/lookup.html", term=term, found=found)


async def _processor_states(pool: asyncpg.Pool, tokens: list[str]) -> list[asyncpg.Record]:
    """What the processor's webhooks last said of these cards or holders, where the webhook
    intake (another part, migration 0003) is installed."""
    try:
        rows: list[asyncpg.Record] = await pool.fetch(
            "SELECT object_kind, object_token, state, event_time FROM webhook_states "
            "WHERE object_token = ANY($1::text[])",
            tokens,
        )
    except asyncpg.UndefinedTableError:
        return []
    return rows


async def audit_log(context: Context) -> web.StreamResponse:
    rows = await context.portal.pool.fetch(
        """SELECT at, actor_email, actor_role, action, target, address FROM portal_audit
           ORDER BY id DESC LIMIT 500"""
    )
    return context.render("audit.html", company=None, rows=rows)


async def companies(context: Context, status: int = 200, **extra: Any) -> web.StreamResponse:
    rows = await context.portal.pool.fetch(
        """SELECT co.id, co.name, co.business_token,
                  (SELECT count(*) FROM portal_cards c WHERE c.company_id = co.id) AS cards
           FROM portal_companies co ORDER BY co.name"""
    )
    values = {"error": None, "invite_link": None, **extra}
    return context.render("admin/companies.html", status, companies=rows, **values)


async def create_company(context: Context) -> web.StreamResponse:
    """Onboard a company: its business, account and card product in the engine, and an
    invitation for its first admin."""
    portal, form = context.portal, context.form
    name = form.get("name", "").strip()[:100]
    email = form.get("admin_email", "").strip()
    admin_name = form.get("admin_name", "").strip()[:100]
    if not name or "@" not in email or not admin_name:
        return await companies(context, 400, error="Enter the company, its admin and email.")
    try:
        funding = parse_amount(form.get("funding") or "0.01", portal.currency)
    except AmountError as error:
        return await companies(context, 400, error=str(error))
    business_token = "co-" + portal.ids.token(COMPANY_TOKEN_LENGTH)
    try:
        await portal.loader.load(documents.company(business_token, name, funding, portal.currency))
    except (ProgramRejected, GatewayUnavailable) as error:
        return await companies(context, 503, error=f"Not created: {error}")
    link = await _store_company(context, business_token, name, email, admin_name, funding)
    if link is None:
        return await companies(context, 409, error=f"{email} already has an account.")
    return await companies(context, 201, invite_link=link)


async def _store_company(
    context: Context, business_token: str, name: str, email: str, admin_name: str, funding: int
) -> str | None:
    portal = context.portal
    async with portal.pool.acquire() as connection, connection.transaction():
        company_id = await connection.fetchval(
            "INSERT INTO portal_companies (business_token, name, currency) VALUES ($1, $2, $3) "
            "RETURNING id",
            business_token,
            name,
            portal.currency,
        )
        try:
            admin_id = await users.create_user(
                connection, email, admin_name, Role.COMPANY_ADMIN, company_id=company_id
            )
        except users.UserError:
            return None
        secret = await users.issue_invite(
            connection, admin_id, portal.clock, portal.ids, portal.settings.invite_valid_s
        )
        await audit.record(
            connection,
            portal.clock,
            context.viewer,
            "create_company",
            business_token,
            context.address,
            {"name": name, "admin": email, "funding_minor": funding},
        )
    return f"{context.request.scheme}://{context.request.host}/invite/{secret}"
