"""Signing in and out: password, second factor (TOTP or a recovery code), enrolment of
the second factor with a QR code, invitations, and signing out everywhere."""

from typing import Any

import pyotp
import segno
from aiohttp import web
from multidict import MultiDictProxy

from portal import audit, users
from portal.passwords import password_problem, verify_password
from portal.roles import SECOND_FACTOR_REQUIRED, Role
from portal.sessions import Session, csrf_matches
from portal.web import (
    COOKIE,
    PORTAL,
    Context,
    Portal,
    client_address,
    forbidden,
    read_form,
    render,
    see_other,
    set_cookie,
)

ISSUER = "pyjit portal"
STAGE_SECOND_FACTOR = "second_factor"
STAGE_ENROL = "enrol"
STAGE_SIGNED_IN = "signed_in"
LOCKED = "Too many failed attempts. Wait 15 minutes and try again."


async def _session(portal: Portal, request: web.Request) -> Session | None:
    return await portal.sessions.load(request.cookies.get(COOKIE))


async def _anonymous(portal: Portal, request: web.Request) -> Session:
    """The browser's session, or a new anonymous one that carries the login form's CSRF."""
    session = await _session(portal, request)
    return session or await portal.sessions.start(None, "anonymous", None)


def _page(
    portal: Portal, session: Session, template: str, status: int = 200, **values: object
) -> web.Response:
    response = render(portal, template, session, None, status, **values)
    set_cookie(portal, response, session)
    return response


def _redirect(portal: Portal, session: Session, location: str) -> web.Response:
    response = see_other(location)
    set_cookie(portal, response, session)
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    session = await _anonymous(portal, request)
    if session.signed_in:
        raise web.HTTPSeeOther("/")
    return _page(portal, session, "login.html", error=None, email="")


async def login(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    posted = await _posted(portal, request)
    if isinstance(posted, web.Response):
        return posted
    session, form = posted
    email = users.normal_email(str(form.get("email", "")))[:320]
    password = str(form.get("password", ""))
    address = client_address(request)

    if await portal.limiter.locked(email, address):
        return _page(
            portal,
            session,
            "login.html",
            429,
            email=email,
            error=LOCKED,
        )
    found = await users.credentials(portal.pool, email)
    stored = found.password_hash if found else None
    if not verify_password(stored, password) or found is None or not found.active:
        await portal.limiter.failed(email, address)
        return _page(
            portal,
            session,
            "login.html",
            401,
            email=email,
            error="That email and password do not match an account.",
        )

    await portal.limiter.succeeded(email)
    if found.totp_enabled:
        stage = STAGE_SECOND_FACTOR
    elif found.role in SECOND_FACTOR_REQUIRED:
        stage = STAGE_ENROL
    else:
        stage = STAGE_SIGNED_IN
    fresh = await portal.sessions.start(found.user_id, stage, session)
    if stage == STAGE_SIGNED_IN:
        await _record_sign_in(portal, request, found.user_id, "password")
    target = {STAGE_SECOND_FACTOR: "/login/second-factor", STAGE_ENROL: "/login/enrol"}
    return _redirect(portal, fresh, target.get(stage, "/"))


async def _posted(
    portal: Portal, request: web.Request
) -> tuple[Session, MultiDictProxy[Any]] | web.Response:
    """The browser's session and its posted form, or 403 when the form's CSRF token is not
    the session's (or either is missing)."""
    session = await _session(portal, request)
    form = await read_form(request)
    if session is None or form is None or not csrf_matches(session, form.get("csrf")):
        return forbidden(portal, session, None)
    return session, form


async def _record_sign_in(portal: Portal, request: web.Request, user_id: int, method: str) -> None:
    viewer = await users.viewer(portal.pool, user_id)
    if viewer is not None:
        await audit.record(
            portal.pool,
            portal.clock,
            viewer,
            "sign_in",
            viewer.email,
            client_address(request),
            {"method": method},
        )


async def _pending(request: web.Request, stage: str) -> tuple[Portal, Session]:
    portal = request.app[PORTAL]
    session = await _session(portal, request)
    if session is None or session.stage != stage or session.user_id is None:
        raise web.HTTPSeeOther("/login")
    return portal, session


async def second_factor_page(request: web.Request) -> web.StreamResponse:
    portal, session = await _pending(request, STAGE_SECOND_FACTOR)
    return _page(portal, session, "second_factor.html", error=None)


async def second_factor(request: web.Request) -> web.StreamResponse:
    portal, session = await _pending(request, STAGE_SECOND_FACTOR)
    form = await read_form(request)
    if form is None or not csrf_matches(session, form.get("csrf")):
        return forbidden(portal, session, None)
    assert session.user_id is not None
    email = await portal.pool.fetchval(
        "SELECT email FROM portal_users WHERE id = $1", session.user_id
    )
    address = client_address(request)
    if await portal.limiter.locked(email, address):
        return _page(
            portal,
            session,
            "second_factor.html",
            429,
            error=LOCKED,
        )
    code = str(form.get("code", ""))
    secret = await portal.pool.fetchval(
        "SELECT totp_secret FROM portal_users WHERE id = $1", session.user_id
    )
    accepted = users.totp_matches(secret, code, portal.clock) or (
        len(code.strip()) == users.RECOVERY_CODE_LENGTH
        and await users.use_recovery_code(portal.pool, session.user_id, code)
    )
    if not accepted:
        await portal.limiter.failed(email, address)
        return _page(
            portal,
            session,
            "second_factor.html",
            401,
            error="That code is not right. Codes change every 30 seconds.",
        )
    fresh = await portal.sessions.start(session.user_id, STAGE_SIGNED_IN, session)
    await _record_sign_in(portal, request, session.user_id, "password and second factor")
    return _redirect(portal, fresh, "/")


async def enrol_page(request: web.Request) -> web.StreamResponse:
    portal, session = await _pending(request, STAGE_ENROL)
    assert session.user_id is not None
    secret = await users.start_enrolment(portal.pool, session.user_id)
    email = await portal.pool.fetchval(
        "SELECT email FROM portal_users WHERE id = $1", session.user_id
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff")
    return _page(portal, session, "enrol.html", qr=qr, secret=secret, error=None)


async def enrol(request: web.Request) -> web.StreamResponse:
    portal, session = await _pending(request, STAGE_ENROL)
    form = await read_form(request)
    if form is None or not csrf_matches(session, form.get("csrf")):
        return forbidden(portal, session, None)
    assert session.user_id is not None
    secret = await portal.pool.fetchval(
        "SELECT totp_secret FROM portal_users WHERE id = $1", session.user_id
    )
    if not users.totp_matches(secret, str(form.get("code", "")), portal.clock):
        return _page(
            portal,
            session,
            "enrol.html",
            401,
            qr=None,
            secret=secret,
            error="That code is not right; scan the QR code again and retry.",
        )
    codes = await users.finish_enrolment(portal.pool, session.user_id, portal.ids)
    fresh = await portal.sessions.start(session.user_id, STAGE_SIGNED_IN, session)
    await _record_sign_in(portal, request, session.user_id, "second factor enrolled")
    return _page(portal, fresh, "recovery_codes.html", codes=codes)


async def root(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    session = await _session(portal, request)
    if session is None or not session.signed_in or session.user_id is None:
        raise web.HTTPSeeOther("/login")
    viewer = await users.viewer(portal.pool, session.user_id)
    raise web.HTTPSeeOther(viewer.home() if viewer else "/login")


async def logout(context: Context) -> web.StreamResponse:
    await context.portal.sessions.end(context.session)
    response = see_other("/login")
    response.del_cookie(COOKIE, path="/")
    return response


async def logout_everywhere(context: Context) -> web.StreamResponse:
    ended = await context.portal.sessions.end_all(context.viewer.user_id)
    await audit.record(
        context.portal.pool,
        context.portal.clock,
        context.viewer,
        "sign_out_everywhere",
        context.viewer.email,
        context.address,
        {"sessions": ended},
    )
    response = see_other("/login")
    response.del_cookie(COOKIE, path="/")
    return response


async def invite_page(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    session = await _anonymous(portal, request)
    valid = await users.invite_valid(portal.pool, request.match_info["secret"], portal.clock)
    status = 200 if valid else 404
    return _page(portal, session, "invite.html", status, valid=valid, error=None)


async def accept_invite(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    posted = await _posted(portal, request)
    if isinstance(posted, web.Response):
        return posted
    session, form = posted
    password = str(form.get("password", ""))
    problem = password_problem(password)
    if problem is None and password != form.get("confirm"):
        problem = "The two passwords differ."
    if problem is not None:
        return _page(portal, session, "invite.html", 400, valid=True, error=problem)
    secret = request.match_info["secret"]
    if not await users.accept_invite(portal.pool, secret, password, portal.clock):
        return _page(portal, session, "invite.html", 404, valid=False, error=None)
    raise web.HTTPSeeOther("/login")


async def signup_page(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    session = await _anonymous(portal, request)
    return _page(portal, session, "signup.html", error=None, email="", name="")


async def signup(request: web.Request) -> web.StreamResponse:
    """A personal cardholder opens an account; their card follows the identity check."""
    portal = request.app[PORTAL]
    posted = await _posted(portal, request)
    if isinstance(posted, web.Response):
        return posted
    session, form = posted
    email = users.normal_email(str(form.get("email", "")))[:320]
    name = str(form.get("name", "")).strip()[:100]
    password = str(form.get("password", ""))
    address = client_address(request)
    values = {"email": email, "name": name}

    if await portal.limiter.locked(email, address):
        return _page(portal, session, "signup.html", 429, error=LOCKED, **values)
    problem = password_problem(password)
    if "@" not in email or not name:
        problem = "Enter your name and email."
    elif problem is None and password != form.get("confirm"):
        problem = "The two passwords differ."
    if problem is not None:
        return _page(portal, session, "signup.html", 400, error=problem, **values)

    # Each sign-up counts against the address, so one address cannot open accounts endlessly.
    await portal.limiter.count_address(address)
    async with portal.pool.acquire() as connection:
        try:
            user_id = await users.create_user(
                connection,
                email,
                name,
                Role.CARDHOLDER,
                password,
                holder_token="h-" + portal.ids.token(20),
            )
        except users.UserError:
            return _page(
                portal,
                session,
                "signup.html",
                409,
                **values,
                error="That email already has an account; sign in instead.",
            )
    fresh = await portal.sessions.start(user_id, STAGE_SIGNED_IN, session)
    await _record_sign_in(portal, request, user_id, "sign-up")
    return _redirect(portal, fresh, "/me/kyc")
