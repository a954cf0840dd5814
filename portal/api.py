"""The JSON API: short-lived JWT access tokens, rotating refresh tokens, and the card
actions of the pages.

A refresh token works once: using it returns a new pair in the same family. Presenting a
token that was already used means two parties hold it, so the whole family is revoked and
both must sign in again.
"""

import datetime as dt
from typing import Any

import jwt
import orjson
from aiohttp import web

from portal import cards, controls, queries, users
from portal.gateway import GatewayUnavailable, ProgramRejected
from portal.money import AmountError, decimal_text, parse_amount
from portal.passwords import verify_password
from portal.roles import HOLDER_ROLES, SECOND_FACTOR_REQUIRED, Role, Viewer
from portal.web import PORTAL, Portal, client_address
from pyjit.edge import BodyRefused, read_at_most

ALGORITHM = "HS256"
REFRESH_LENGTH = 48
BODY_MAX = 16 * 1024


def _json(status: int, payload: object) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def _body(request: web.Request) -> dict[str, Any] | None:
    # content.read(n) returns the first chunk that arrives, not n bytes: read to the end.
    try:
        raw = await read_at_most(request, BODY_MAX)
    except BodyRefused:
        return None
    if raw is None:
        return None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _now(portal: Portal) -> dt.datetime:
    return dt.datetime.fromtimestamp(portal.clock.now_ms() / 1000, dt.UTC)


async def _issue_pair(
    portal: Portal, connection: Any, user_id: int, role: str, family: str
) -> dict[str, Any]:
    now_s = portal.clock.now_ms() // 1000
    access = jwt.encode(
        {
            "sub": str(user_id),
            "role": role,
            "iat": now_s,
            "exp": now_s + portal.settings.access_token_s,
            "jti": portal.ids.token(16),
        },
        portal.settings.jwt_secret,
        algorithm=ALGORITHM,
    )
    refresh = portal.ids.token(REFRESH_LENGTH)
    await connection.execute(
        "INSERT INTO portal_refresh_tokens (token_hash, family, user_id, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        users.digest(refresh),
        family,
        user_id,
        _now(portal) + dt.timedelta(seconds=portal.settings.refresh_token_s),
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": portal.settings.access_token_s,
        "refresh_token": refresh,
    }


async def token(request: web.Request) -> web.Response:
    """Sign in: email, password and, where the account has one, the TOTP code."""
    portal = request.app[PORTAL]
    body = await _body(request)
    if body is None:
        return _json(400, {"error": "send a JSON object with email, password and code"})
    email = users.normal_email(str(body.get("email", "")))[:320]
    address = client_address(request)
    if await portal.limiter.locked(email, address):
        return _json(429, {"error": "too many failed attempts; wait and retry"})
    found = await users.credentials(portal.pool, email)
    ok = verify_password(found.password_hash if found else None, str(body.get("password", "")))
    if ok and found is not None and found.totp_enabled:
        ok = users.totp_matches(found.totp_secret, str(body.get("code", "")), portal.clock)
    if not ok or found is None or not found.active:
        await portal.limiter.failed(email, address)
        return _json(401, {"error": "wrong email, password or code"})
    if found.role in SECOND_FACTOR_REQUIRED and not found.totp_enabled:
        return _json(403, {"error": "set up the second factor in the browser first"})
    await portal.limiter.succeeded(email)
    async with portal.pool.acquire() as connection:
        pair = await _issue_pair(
            portal, connection, found.user_id, found.role.value, portal.ids.token(24)
        )
    return _json(200, pair)


async def refresh(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    body = await _body(request)
    presented = str((body or {}).get("refresh_token", ""))
    async with portal.pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT * FROM portal_refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            users.digest(presented),
        )
        if row is None:
            return _json(401, {"error": "unknown refresh token"})
        if row["used_at"] is not None or row["revoked_at"] is not None:
            await _revoke_family(connection, portal, row["family"])
            return _json(401, {"error": "refresh token reused; every token of it is revoked"})
        if row["expires_at"] <= _now(portal):
            return _json(401, {"error": "refresh token expired"})
        role = await connection.fetchval(
            "SELECT role FROM portal_users WHERE id = $1 AND active", row["user_id"]
        )
        if role is None:
            return _json(401, {"error": "account inactive"})
        await connection.execute(
            "UPDATE portal_refresh_tokens SET used_at = $2 WHERE token_hash = $1",
            row["token_hash"],
            _now(portal),
        )
        pair = await _issue_pair(portal, connection, row["user_id"], role, row["family"])
    return _json(200, pair)


async def _revoke_family(connection: Any, portal: Portal, family: str) -> None:
    await connection.execute(
        "UPDATE portal_refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
        family,
        _now(portal),
    )


async def _bearer(request: web.Request) -> Viewer | None:
    portal = request.app[PORTAL]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        claims = jwt.decode(
            presented.strip(),
            portal.settings.jwt_secret,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "require": ["exp", "sub"]},
        )
    except jwt.InvalidTokenError:
        return None
    # Expiry is checked against the portal's clock, which tests drive.
    if int(claims["exp"]) <= portal.clock.now_ms() // 1000:
        return None
    return await users.viewer(portal.pool, int(claims["sub"]))


async def my_cards(request: web.Request) -> web.Response:
    viewer = await _bearer(request)
    if viewer is None:
        return _json(401, {"error": "missing, expired or invalid access token"})
    if viewer.role not in HOLDER_ROLES:
        return _json(403, {"error": "only cardholders have cards"})
    rows = await queries.holder_cards(request.app[PORTAL].pool, viewer.user_id)
    return _json(
        200,
        {
            "cards": [
                {
                    "token": row["card_token"],
                    "last_four": row["last_four"],
                    "state": row["state"],
                    "expiration": row["expiration"],
                }
                for row in rows
            ]
        },
    )


async def card_state(request: web.Request) -> web.Response:
    viewer = await _bearer(request)
    if viewer is None:
        return _json(401, {"error": "missing, expired or invalid access token"})
    portal = request.app[PORTAL]
    action = request.match_info["action"]
    card, set_by = await _card_for(portal, viewer, request.match_info["card_token"])
    if set_by is None:
        return _json(403, {"error": "this role cannot change cards"})
    if card is None:
        return _json(404, {"error": "no such card"})
    try:
        state = await cards.change_state(portal, viewer, card, action, client_address(request))
    except ValueError as error:
        return _json(409, {"error": str(error)})
    except GatewayUnavailable as error:
        return _json(503, {"error": str(error)})
    return _json(200, {"token": card["card_token"], "state": state})


async def card_limit(request: web.Request) -> web.Response:
    """Set or remove (amount null) a per-transaction, daily or monthly limit on a card."""
    viewer = await _bearer(request)
    if viewer is None:
        return _json(401, {"error": "missing, expired or invalid access token"})
    portal = request.app[PORTAL]
    card, set_by = await _card_for(portal, viewer, request.match_info["card_token"])
    if set_by is None:
        return _json(403, {"error": "this role cannot change cards"})
    if card is None:
        return _json(404, {"error": "no such card"})
    body = await _body(request)
    kind = (body or {}).get("kind")
    amount = (body or {}).get("amount")
    if kind not in controls.AMOUNT_KINDS or not (amount is None or isinstance(amount, str)):
        return _json(
            400,
            {
                "error": "send kind (per_transaction, daily, monthly) and amount "
                "as decimal text, or null to remove"
            },
        )
    try:
        minor = None if amount is None else parse_amount(amount, portal.currency)
        target = controls.Target(card["company_id"], card_token=card["card_token"])
        await controls.set_amount_limit(
            portal, viewer, target, kind, minor, set_by, client_address(request)
        )
    except (AmountError, controls.ControlError) as error:
        return _json(400, {"error": str(error)})
    except ProgramRejected as error:
        return _json(400, {"error": str(error)})
    except GatewayUnavailable as error:
        return _json(503, {"error": str(error)})
    return _json(200, {"token": card["card_token"], "kind": kind, "amount": amount})


async def _card_for(portal: Portal, viewer: Viewer, card_token: str) -> tuple[Any, str | None]:
    """The card if the viewer may change it, and who they set limits as."""
    if viewer.role is Role.COMPANY_ADMIN:
        assert viewer.company_id is not None
        return await cards.company_card(portal.pool, viewer.company_id, card_token), "company"
    if viewer.role in HOLDER_ROLES:
        return await cards.holder_card(portal.pool, viewer.user_id, card_token), "holder"
    return None, None


async def transactions(request: web.Request) -> web.Response:
    """The viewer's transactions (a company admin: the company's), newest first, with the
    page's filters: q, status, card, employee, page."""
    viewer = await _bearer(request)
    if viewer is None:
        return _json(401, {"error": "missing, expired or invalid access token"})
    portal = request.app[PORTAL]
    filters = queries.filters_from(request.query)
    if viewer.role is Role.COMPANY_ADMIN:
        found = await queries.company(portal.pool, viewer.company_id)
        assert found is not None, "a company admin always has a company"
        rows = await queries.company_transactions(portal.pool, found, filters)
    elif viewer.role in HOLDER_ROLES:
        rows = await queries.holder_transactions(portal.pool, viewer.user_id, filters)
    else:
        return _json(403, {"error": "no transactions of your own"})
    for row in rows:
        row["amount"] = decimal_text(row.pop("amount_minor") or 0, row["currency"])
    return _json(200, {"transactions": rows, "page": filters.page})


async def issue_card(request: web.Request) -> web.Response:
    """A company admin issues a card to one of the company's active employees."""
    viewer = await _bearer(request)
    if viewer is None:
        return _json(401, {"error": "missing, expired or invalid access token"})
    if viewer.role is not Role.COMPANY_ADMIN:
        return _json(403, {"error": "only a company admin issues cards"})
    portal = request.app[PORTAL]
    employee_id = request.match_info["employee_id"]
    person = await portal.pool.fetchrow(
        "SELECT * FROM portal_users WHERE id = $1 AND company_id = $2 AND role = 'employee' "
        "AND active",
        queries.small_id(employee_id) or 0,
        viewer.company_id,
    )
    if person is None:
        return _json(404, {"error": "no such active employee"})
    found = await queries.company(portal.pool, viewer.company_id)
    try:
        card = await cards.issue(portal, viewer, person, found, client_address(request))
    except (ProgramRejected, GatewayUnavailable) as error:
        return _json(503, {"error": str(error)})
    return _json(201, {"token": card})


def install(app: web.Application) -> None:
    app.router.add_post("/api/v1/token", token)
    app.router.add_post("/api/v1/token/refresh", refresh)
    app.router.add_get("/api/v1/me/cards", my_cards)
    app.router.add_post("/api/v1/cards/{card_token}/{action:freeze|unfreeze}", card_state)
    app.router.add_post("/api/v1/cards/{card_token}/limits", card_limit)
    app.router.add_get("/api/v1/transactions", transactions)
    app.router.add_post("/api/v1/employees/{employee_id}/cards", issue_card)
