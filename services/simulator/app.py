"""The simulator's aiohttp application: routes, Basic auth, errors in the processor's shape."""

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.simulator import cards, controls, funding, holders, transactions, webhooks
from services.simulator.clock import Clock, SystemClock, TokenSource
from services.simulator.delivery import WebhookDispatcher
from services.simulator.errors import BAD_CREDENTIALS, NOT_FOUND, ApiError
from services.simulator.state import SimulatorConfig, SimulatorState
from services.simulator.wire import STATE, answer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, error_code: str, error_message: str) -> web.Response:
    return answer({"error_code": error_code, "error_message": error_message}, status)


def _credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _authorized(config: SimulatorConfig, request: web.Request) -> bool:
    given = _credentials(request)
    if given is None:
        return False
    # Both comparisons always run, so the time taken says nothing about which part was wrong.
    user_ok = hmac.compare_digest(given[0].encode(), config.application_token.encode())
    pass_ok = hmac.compare_digest(given[1].encode(), config.admin_access_token.encode())
    return user_ok & pass_ok


@web.middleware
async def processor_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check Basic auth, then render `ApiError` and unknown routes as the processor does."""
    if not _authorized(request.app[STATE].config, request):
        return _error(401, BAD_CREDENTIALS, "Invalid application token or access token")
    try:
        return await handler(request)
    except ApiError as error:
        return _error(error.status, error.error_code, error.error_message)
    except web.HTTPNotFound:
        return _error(404, NOT_FOUND, f"no resource at {request.path}")
    except web.HTTPMethodNotAllowed as error:
        return _error(405, "405100", f"{error.method} is not allowed on {request.path}")


def create_app(
    config: SimulatorConfig,
    *,
    clock: Clock | None = None,
    tokens: TokenSource | None = None,
) -> web.Application:
    """The processor simulator: Marqeta's REST API under /v3, its JIT messages and webhooks.

    State lives in memory and dies with the application; this is a test and demo tool.
    Pass a `ManualClock` and a seeded `TokenSource` for deterministic runs.
    """
    app = web.Application(middlewares=[processor_errors])
    holder: list[SimulatorState] = []
    dispatcher = WebhookDispatcher(config.delivery, lambda: holder[0].http())
    state = SimulatorState(
        config=config,
        clock=clock or SystemClock(),
        tokens=tokens or TokenSource(),
        dispatcher=dispatcher,
    )
    holder.append(state)
    app[STATE] = state
    for module in (holders, cards, controls, funding, transactions, webhooks):
        app.add_routes(module.routes)

    async def close_state(_: web.Application) -> None:
        await state.close()

    app.on_cleanup.append(close_state)
    return app


def state_of_app(app: web.Application) -> SimulatorState:
    """The simulator's state, for tests and demos that drive it directly."""
    return app[STATE]
