"""The portal's routes, with the roles allowed on each, and the two ways to serve them:
`install` into the gateway's application, `build_app` alone."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiohttp import web

from portal import api, company, company_groups, holder, signin, staff
from portal.funding import SandboxFunding
from portal.gateway import ProgramLoader
from portal.kyc import SandboxKyc
from portal.roles import Role
from portal.sessions import RedisHandle, SessionStore, SignInLimiter
from portal.settings import PortalSettings
from portal.web import PORTAL, Handler, Portal, guard, templates, timed
from pyjit.clock import Clock, Ids
from pyjit.metrics import Metrics

STATIC = Path(__file__).parent / "static"
ALL = frozenset(Role)
COMPANY_ADMIN = frozenset({Role.COMPANY_ADMIN})
HOLDERS = frozenset({Role.EMPLOYEE, Role.CARDHOLDER})
PERSONAL = frozenset({Role.CARDHOLDER})
STAFF = frozenset({Role.PROGRAM_ADMIN, Role.SUPPORT, Role.AUDITOR})
LOOKUP = frozenset({Role.PROGRAM_ADMIN, Role.SUPPORT})
AUDIT = frozenset({Role.PROGRAM_ADMIN, Role.AUDITOR})
PROGRAM_ADMIN = frozenset({Role.PROGRAM_ADMIN})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]


# Every guarded page and action, with the roles that may use it. Support and auditors
# only read; no write route lists them.
ROUTES = (
    Route("POST", "/logout", signin.logout, ALL),
    Route("POST", "/logout/everywhere", signin.logout_everywhere, ALL),
    Route("GET", "/company", company.overview, COMPANY_ADMIN),
    Route("GET", "/company/employees", company.employees, COMPANY_ADMIN),
    Route("POST", "/company/employees", company.invite, COMPANY_ADMIN),
    Route("GET", "/company/employees/{employee_id}", company.employee, COMPANY_ADMIN),
    Route("POST", "/company/employees/{employee_id}/deactivate", company.deactivate, COMPANY_ADMIN),
    Route("POST", "/company/employees/{employee_id}/cards", company.issue_card, COMPANY_ADMIN),
    Route(
        "POST",
        "/company/employees/{employee_id}/controls",
        company.employee_controls,
        COMPANY_ADMIN,
    ),
    Route("GET", "/company/cards", company.cards_page, COMPANY_ADMIN),
    Route("GET", "/company/cards/{card_token}", company.card, COMPANY_ADMIN),
    Route("POST", "/company/cards/{card_token}/state", company.card_state, COMPANY_ADMIN),
    Route("POST", "/company/cards/{card_token}/controls", company.card_controls, COMPANY_ADMIN),
    Route("GET", "/company/groups", company_groups.groups_page, COMPANY_ADMIN),
    Route("POST", "/company/groups", company_groups.create_group, COMPANY_ADMIN),
    Route("GET", "/company/groups/{group_id}", company_groups.group_page, COMPANY_ADMIN),
    Route("POST", "/company/groups/{group_id}/members", company_groups.add_member, COMPANY_ADMIN),
    Route(
        "POST", "/company/groups/{group_id}/controls", company_groups.group_controls, COMPANY_ADMIN
    ),
    Route("GET", "/company/transactions", company.transactions, COMPANY_ADMIN),
    Route("GET", "/company/reports", company.reports, COMPANY_ADMIN),
    Route("GET", "/company/reports.csv", company.report_csv, COMPANY_ADMIN),
    Route("GET", "/company/audit", company.audit_log, COMPANY_ADMIN),
    Route("GET", "/company/settings", company.settings_page, COMPANY_ADMIN),
    Route("POST", "/company/settings/admins", company.invite_admin, COMPANY_ADMIN),
    Route("GET", "/me", holder.dashboard, HOLDERS),
    Route("GET", "/me/transactions", holder.transactions, HOLDERS),
    Route("GET", "/me/cards/{card_token}", holder.card, HOLDERS),
    Route("POST", "/me/cards/{card_token}/state", holder.card_state, HOLDERS),
    Route("POST", "/me/cards/{card_token}/controls", holder.card_controls, HOLDERS),
    Route("GET", "/me/kyc", holder.kyc_page, PERSONAL),
    Route("POST", "/me/kyc", holder.kyc_submit, PERSONAL),
    Route("GET", "/me/topup", holder.topup_page, PERSONAL),
    Route("POST", "/me/topup", holder.topup, PERSONAL),
    Route("GET", "/admin", staff.overview, STAFF),
    Route("GET", "/admin/lookup", staff.lookup, LOOKUP),
    Route("GET", "/admin/audit", staff.audit_log, AUDIT),
    Route("GET", "/admin/companies", staff.companies, LOOKUP),
    Route("POST", "/admin/companies", staff.create_company, PROGRAM_ADMIN),
)

PUBLIC: tuple[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]], ...] = (
    ("GET", "/", signin.root),
    ("GET", "/login", signin.login_page),
    ("POST", "/login", signin.login),
    ("GET", "/login/second-factor", signin.second_factor_page),
    ("POST", "/login/second-factor", signin.second_factor),
    ("GET", "/login/enrol", signin.enrol_page),
    ("POST", "/login/enrol", signin.enrol),
    ("GET", "/signup", signin.signup_page),
    ("POST", "/signup", signin.signup),
    ("GET", "/invite/{secret}", signin.invite_page),
    ("POST", "/invite/{secret}", signin.accept_invite),
)


def make_portal(
    pool: asyncpg.Pool,
    redis: RedisHandle,
    loader: ProgramLoader,
    settings: PortalSettings,
    clock: Clock,
    ids: Ids,
    metrics: Metrics | None = None,
) -> Portal:
    return Portal(
        pool=pool,
        sessions=SessionStore(redis, settings, clock, ids),
        limiter=SignInLimiter(redis, settings),
        loader=loader,
        settings=settings,
        clock=clock,
        ids=ids,
        templates=templates(),
        funding=SandboxFunding(),
        kyc=SandboxKyc(),
        metrics=metrics,
    )


def install(app: web.Application, portal: Portal) -> None:
    """Add the portal's pages, API and static files to `app`."""
    app[PORTAL] = portal
    for method, path, public in PUBLIC:
        app.router.add_route(method, path, timed(public))
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guard(route.roles, route.handler))
    api.install(app)
    app.router.add_static("/portal-static", STATIC)


def build_app(portal: Portal) -> web.Application:
    """The portal alone (`pyjit serve --role portal`), with its own /health."""
    app = web.Application(client_max_size=1024 * 1024)
    install(app, portal)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "role": "portal"})

    app.router.add_get("/health", health)
    return app
