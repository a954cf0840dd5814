"""What every portal handler shares: the portal's state, the signed-in context, the guard
that enforces sessions, roles and CSRF, and page rendering."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from portal import users
from portal.categories import BY_TOKEN
from portal.funding import FundingProvider
from portal.gateway import ProgramLoader
from portal.kyc import KycProvider
from portal.money import display
from portal.reasons import decline_words
from portal.roles import Role, Viewer
from portal.sessions import Session, SessionStore, SignInLimiter, csrf_matches
from portal.settings import PortalSettings
from pyjit.clock import Clock, Ids
from pyjit.metrics import Metrics

COOKIE = "pyjit_portal"
CONTROL_KINDS = {
    "per_transaction": "Per purchase",
    "daily": "Per day",
    "monthly": "Per month",
    "mcc_group": "Blocked category",
    "country": "Blocked country",
}
FORM_MAX = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Portal:
    pool: asyncpg.Pool
    sessions: SessionStore
    limiter: SignInLimiter
    loader: ProgramLoader
    settings: PortalSettings
    clock: Clock
    ids: Ids
    templates: jinja2.Environment
    funding: FundingProvider
    kyc: KycProvider
    metrics: Metrics | None = None
    currency: str = "USD"
    # Where the gateway is, when the portal runs apart from it (for its figures).
    gateway_url: str | None = None


PORTAL = web.AppKey("portal", Portal)


@dataclass
class Context:
    """One guarded request: who asks, their session, and the form they sent."""

    portal: Portal
    request: web.Request
    session: Session
    viewer: Viewer
    form: Mapping[str, str]

    @property
    def address(self) -> str:
        return client_address(self.request)

    def render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        return render(self.portal, template, self.session, self.viewer, status, **values)


Handler = Callable[[Context], Awaitable[web.StreamResponse]]


def client_address(request: web.Request) -> str:
    return request.remote or ""


def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("portal", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["money"] = lambda minor, currency="USD": display(minor, currency)
    environment.filters["decline_words"] = decline_words
    environment.filters["control_kind"] = CONTROL_KINDS.get
    environment.filters["category"] = lambda value: (
        BY_TOKEN[value].name if value in BY_TOKEN else value
    )
    return environment


def render(
    portal: Portal,
    template: str,
    session: Session | None,
    viewer: Viewer | None,
    status: int = 200,
    **values: Any,
) -> web.Response:
    page = portal.templates.get_template(template).render(
        csrf=session.csrf if session else "", viewer=viewer, **values
    )
    response = web.Response(status=status, text=page, content_type="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


def set_cookie(portal: Portal, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.session_id,
        httponly=True,
        secure=portal.settings.cookie_secure,
        samesite="Strict",
        path="/",
    )


def forbidden(portal: Portal, session: Session | None, viewer: Viewer | None) -> web.Response:
    return render(portal, "error.html", session, viewer, 403, message="You cannot open this.")


def not_found(context: Context) -> web.Response:
    return context.render("error.html", 404, message="Nothing here, or not yours to see.")


async def read_form(request: web.Request) -> MultiDictProxy[Any] | None:
    """The posted form, or None when it is too large or not a form."""
    if request.content_length is not None and request.content_length > FORM_MAX:
        return None
    try:
        return await request.post()
    except ValueError:
        return None


def timed(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Record the request's latency by route, method and status in the metrics."""

    async def timing(request: web.Request) -> web.StreamResponse:
        portal = request.app[PORTAL]
        started_ns = portal.clock.monotonic_ns()
        response = await handler(request)
        if portal.metrics is not None:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unknown"
            portal.metrics.portal_seconds.labels(
                name, request.method, str(response.status)
            ).observe((portal.clock.monotonic_ns() - started_ns) / 1e9)
        return response

    return timing


def guard(
    roles: frozenset[Role], handler: Handler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Sign-in, role and CSRF checks in front of `handler`: a page for anyone outside
    `roles` is 403, and every POST without its session's CSRF token is 403."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        return await _guarded(request.app[PORTAL], request, roles, handler)

    return timed(guarded)


async def _guarded(
    portal: Portal, request: web.Request, roles: frozenset[Role], handler: Handler
) -> web.StreamResponse:
    session = await portal.sessions.load(request.cookies.get(COOKIE))
    if session is None or not session.signed_in or session.user_id is None:
        return see_other("/login")
    viewer = await users.viewer(portal.pool, session.user_id)
    if viewer is None:
        await portal.sessions.end(session)
        return see_other("/login")
    if viewer.role not in roles:
        return forbidden(portal, session, viewer)

    form: Mapping[str, str] = {}
    if request.method == "POST":
        if request.content_length is not None and request.content_length > FORM_MAX:
            message = f"That form is over {FORM_MAX // 1024} kB."
            return render(portal, "error.html", session, viewer, 413, message=message)
        posted = await read_form(request)
        if posted is None or not csrf_matches(session, posted.get("csrf")):
            return forbidden(portal, session, viewer)
        form = {key: value for key, value in posted.items() if isinstance(value, str)}
    return await handler(Context(portal, request, session, viewer, form))


def see_other(location: str) -> web.Response:
    """A 303 to `location` (returned, not raised, so headers set on it are kept)."""
    return web.Response(status=303, headers={"Location": location})
