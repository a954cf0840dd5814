"""Reading requests and writing answers the way the processor does."""

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from services.marqeta import codec
from services.simulator.errors import MALFORMED_BODY, invalid
from services.simulator.state import SimulatorState

STATE = web.AppKey("simulator_state", SimulatorState)
V3 = "/v3"


def state_of(request: web.Request) -> SimulatorState:
    return request.app[STATE]


async def body_of(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; a malformed body is a 400, as at the processor."""
    try:
        return codec.decode_object(await request.read())
    except codec.CodecError as error:
        raise invalid(str(error), MALFORMED_BODY) from error


def answer(document: Any, status: int = 200) -> web.Response:
    return web.Response(body=codec.encode(document), status=status, content_type="application/json")


def created(document: Any) -> web.Response:
    return answer(document, 201)


def page(request: web.Request, items: Sequence[Any]) -> web.Response:
    """One page of a list, with the processor's `count` (default 5) and `start_index`."""
    try:
        count = int(request.query.get("count", "5"))
        start_index = int(request.query.get("start_index", "0"))
    except ValueError as error:
        raise invalid("count and start_index must be whole numbers") from error
    if not 1 <= count <= 100 or start_index < 0:
        raise invalid("count must be 1-100 and start_index at least 0")
    selected = list(items[start_index : start_index + count])
    return answer(
        {
            "count": len(selected),
            "start_index": start_index,
            "end_index": start_index + max(len(selected) - 1, 0),
            "is_more": start_index + count < len(items),
            "data": selected,
        }
    )
