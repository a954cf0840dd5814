"""Card products, cards and card transitions.

A card starts UNACTIVATED unless its product says `activate_upon_issue`, and moves between
ACTIVE and SUSPENDED; TERMINATED is final, as at the processor.
"""

import re
from datetime import datetime

from aiohttp import web

from services.simulator import validation as field
from services.simulator.errors import (
    INVALID_TRANSITION,
    UNKNOWN_REFERENCE,
    found,
    invalid,
)
from services.simulator.holders import CHANNELS
from services.simulator.state import Resource, SimulatorState
from services.simulator.webhooks import publish
from services.simulator.wire import V3, answer, body_of, created, page, state_of

routes = web.RouteTableDef()

CARD_STATES = frozenset({"ACTIVE", "SUSPENDED", "TERMINATED"})
REFUNDS_DESTINATIONS = frozenset({"GATEWAY", "GPA", "WATERFALL"})
CARD_VALIDITY_YEARS = 4
_CARD_REASON_CODE = re.compile(r"^[0-9]{2,3}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _product_config(state: SimulatorState, body: field.Body) -> dict[str, object]:
    config = field.nested(body, "config")
    jit = field.nested(config, "jit_funding")
    gateway = field.nested(jit, "programgateway_funding_source")
    if gateway:
        gateway = {
            "enabled": field.flag(gateway, "enabled", True),
            "funding_source_token": field.reference(
                gateway, "funding_source_token", state.gateway_sources
            ),
            "refunds_destination": field.choice(
                gateway, "refunds_destination", REFUNDS_DESTINATIONS, "GATEWAY"
            ),
        }
        config["jit_funding"] = {**jit, "programgateway_funding_source": gateway}
    life_cycle = field.nested(config, "card_life_cycle")
    if life_cycle:
        activate = field.flag(life_cycle, "activate_upon_issue", False)
        config["card_life_cycle"] = {**life_cycle, "activate_upon_issue": activate}
    return config


@routes.post(V3 + "/cardproducts")
async def create_card_product(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.card_products, state.tokens.token())
    start_date = field.required_text(body, "start_date", max_length=10)
    if not _DATE.match(start_date):
        raise invalid("start_date must be yyyy-MM-dd")
    product = {
        "token": token,
        "name": field.required_text(body, "name", max_length=40),
        "start_date": start_date,
        "active": field.flag(body, "active", True),
        "config": _product_config(state, body),
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    state.card_products[token] = product
    return created(product)


@routes.get(V3 + "/cardproducts/{token}")
async def get_card_product(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    return answer(found(state_of(request).card_products, "card product", token))


def gateway_funding(product: Resource) -> Resource | None:
    """The product's program gateway funding settings, when JIT funding is enabled."""
    gateway = product["config"].get("jit_funding", {}).get("programgateway_funding_source")
    return gateway if gateway and gateway.get("enabled") else None


def _expiration(issued: datetime) -> tuple[str, str]:
    expires = issued.replace(year=issued.year + CARD_VALIDITY_YEARS, day=1)
    return expires.strftime("%m%y"), expires.strftime("%Y-%m-%dT23:59:59Z")


def _holder_token(state: SimulatorState, body: field.Body) -> tuple[str, str]:
    user_token = field.optional_reference(body, "user_token", state.users)
    business_token = field.optional_reference(body, "business_token", state.businesses)
    if (user_token is None) == (business_token is None):
        raise invalid("give exactly one of user_token and business_token", UNKNOWN_REFERENCE)
    if user_token is not None:
        return "user_token", user_token
    assert business_token is not None
    return "business_token", business_token


@routes.post(V3 + "/cards")
async def create_card(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.cards, state.tokens.token())
    holder_field, holder_token = _holder_token(state, body)
    product = state.card_products[field.reference(body, "card_product_token", state.card_products)]
    activate = product["config"].get("card_life_cycle", {}).get("activate_upon_issue", False)
    expiration, expiration_time = _expiration(state.clock.now())
    last_four = state.tokens.digits(4)
    card = {
        "token": token,
        holder_field: holder_token,
        "card_product_token": product["token"],
        "state": "ACTIVE" if activate else "UNACTIVATED",
        "state_reason": "New card",
        "fulfillment_status": "ISSUED",
        "instrument_type": "VIRTUAL_PAN",
        "last_four": last_four,
        "pan": "411111______" + last_four,
        "expiration": expiration,
        "expiration_time": expiration_time,
        "metadata": {str(k): str(v) for k, v in field.nested(body, "metadata").items()},
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    state.cards[token] = card
    _record_transition(state, card, "fulfillment.issued", "API", "00", None)
    return created(card)


@routes.get(V3 + "/cards/{token}")
async def get_card(request: web.Request) -> web.Response:
    return answer(found(state_of(request).cards, "card", request.match_info["token"]))


@routes.get(V3 + "/cards/user/{token}")
async def list_cards_for_user(request: web.Request) -> web.Response:
    state = state_of(request)
    token = found(state.users, "user", request.match_info["token"])["token"]
    return page(request, [c for c in state.cards.values() if c.get("user_token") == token])


def _transition_type(before: str, after: str) -> str:
    if after == "ACTIVE":
        return "state.reinstated" if before == "SUSPENDED" else "state.activated"
    return f"state.{after.lower()}"


def _record_transition(
    state: SimulatorState,
    card: Resource,
    kind: str,
    channel: str,
    reason_code: str,
    token: str | None,
) -> Resource:
    token = token or state.tokens.token()
    transition = {
        "token": token,
        "card_token": card["token"],
        "card_product_token": card["card_product_token"],
        "state": card["state"],
        "fulfillment_status": card["fulfillment_status"],
        "type": kind,
        "channel": channel,
        "reason_code": reason_code,
        "created_time": state.now_text(),
    }
    for holder_field in ("user_token", "business_token"):
        if holder_field in card:
            transition[holder_field] = card[holder_field]
    state.card_transitions[token] = transition
    publish(state, f"cardtransition.{kind}", token, transition)
    return transition


@routes.post(V3 + "/cardtransitions")
async def transition_card(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.card_transitions, state.tokens.token())
    card = state.cards[field.reference(body, "card_token", state.cards)]
    new_state = field.choice(body, "state", CARD_STATES)
    channel = field.choice(body, "channel", CHANNELS)
    reason_code = field.required_text(body, "reason_code", max_length=3)
    if not _CARD_REASON_CODE.match(reason_code):
        raise invalid("reason_code must be a 2- or 3-digit code")
    if card["state"] == "TERMINATED":
        raise invalid("card is TERMINATED, which is final", INVALID_TRANSITION)

    before = card["state"]
    card["state"] = new_state
    card["state_reason"] = field.text(body, "reason") or f"Changed by {channel}"
    card["last_modified_time"] = state.now_text()
    kind = _transition_type(before, new_state)
    transition = _record_transition(state, card, kind, channel, reason_code, token)
    return created(transition)
