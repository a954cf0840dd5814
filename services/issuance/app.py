"""The issuance service's HTTP API (aiohttp), behind Basic credentials.

POST /people                       onboard a person
POST /companies                    onboard a company and its employees
GET  /holders/{token}              a holder, identifiers masked
POST /holders/{token}/kyc          one KYC attempt (two at most)
POST /holders/{token}/cards        issue a virtual card
POST /holders/{token}/funding      fund the holder's account at the gateway
POST /cards/{token}/transitions    ACTIVE, SUSPENDED or TERMINATED
POST /velocitycontrols             a spend limit at the processor and the gateway
"""

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.issuance.service import Issuance, IssuanceError
from services.marqeta import codec
from services.marqeta.errors import ProcessorError

log = logging.getLogger(__name__)

ISSUANCE = web.AppKey("issuance", Issuance)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=codec.encode(payload), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = codec.decode_object(await request.read())
    except codec.CodecError as error:
        raise IssuanceError(400, str(error)) from None
    return body


def _guard(authorization: str) -> Any:
    expected = authorization.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        presented = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(presented, expected):
            return _answer({"error": "missing or wrong Basic credentials"}, 401)
        try:
            return await handler(request)
        except IssuanceError as error:
            payload = {"error": error.message}
            if error.error_code is not None:
                payload["error_code"] = error.error_code
            return _answer(payload, error.status)
        except ProcessorError as error:
            # The processor is down or failing after the client's retries; no identifiers
            # are in its message, only its code.
            log.warning("processor unavailable: %s", error.error_code)
            return _answer({"error": "the processor is unavailable; retry"}, 502)

    return guard


routes = web.RouteTableDef()


@routes.post("/people")
async def people(request: web.Request) -> web.Response:
    person = await _body(request)
    return _answer(await request.app[ISSUANCE].onboard_person(person), 201)


@routes.post("/companies")
async def companies(request: web.Request) -> web.Response:
    body = await _body(request)
    company, employees = body.get("company"), body.get("employees", [])
    if not isinstance(company, dict) or not isinstance(employees, list):
        raise IssuanceError(400, "give company (an object) and employees (a list)")
    if not all(isinstance(person, dict) for person in employees):
        raise IssuanceError(400, "each employee is an object")
    return _answer(await request.app[ISSUANCE].onboard_company(company, employees), 201)


@routes.get("/holders/{token}")
async def holder(request: web.Request) -> web.Response:
    return _answer(await request.app[ISSUANCE].holder_view(request.match_info["token"]))


@routes.post("/holders/{token}/kyc")
async def kyc(request: web.Request) -> web.Response:
    return _answer(await request.app[ISSUANCE].verify(request.match_info["token"]))


@routes.post("/holders/{token}/cards")
async def cards(request: web.Request) -> web.Response:
    issued = await request.app[ISSUANCE].issue_card(request.match_info["token"])
    return _answer(issued, 201)


@routes.post("/holders/{token}/funding")
async def funding(request: web.Request) -> web.Response:
    body = await _body(request)
    order, amount = body.get("token"), body.get("amount")
    if not isinstance(order, str) or not isinstance(amount, str):
        raise IssuanceError(400, "give token and amount (decimal text)")
    funded = await request.app[ISSUANCE].fund(request.match_info["token"], order, amount)
    return _answer(funded)


@routes.post("/cards/{token}/transitions")
async def card_transitions(request: web.Request) -> web.Response:
    state = (await _body(request)).get("state")
    if not isinstance(state, str):
        raise IssuanceError(400, "state is required")
    moved = await request.app[ISSUANCE].transition_card(request.match_info["token"], state)
    return _answer(moved)


@routes.post("/velocitycontrols")
async def velocity_controls(request: web.Request) -> web.Response:
    control = await _body(request)
    return _answer(await request.app[ISSUANCE].set_velocity_control(control), 201)


def create_app(issuance: Issuance, authorization: str) -> web.Application:
    """The service's application; `authorization` is the `Authorization` value callers send."""
    app = web.Application(middlewares=[_guard(authorization)])
    app[ISSUANCE] = issuance
    app.add_routes(routes)
    return app
