"""Webhook registrations, event fan-out, ping and replay.

An event type is `<base>.<detail>` (`transaction.authorization`,
`cardtransition.state.activated`, `usertransition.active`); a webhook subscribes with exact
types, `<base>.*`, or `*`. Every event is kept by its token so it can be replayed.
"""

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from services.marqeta import codec
from services.simulator import validation as field
from services.simulator.delivery import SIGNATURE_ALGORITHMS, Endpoint
from services.simulator.errors import WEBHOOK_UNREACHABLE, ApiError, invalid, not_found
from services.simulator.state import Resource, SimulatorState
from services.simulator.wire import V3, answer, body_of, created, page, state_of

routes = web.RouteTableDef()

# The category key of a delivery body for each event base.
CATEGORIES = {
    "transaction": "transactions",
    "cardtransition": "cardtransitions",
    "usertransition": "usertransitions",
    "businesstransition": "businesstransitions",
    "chargebacktransition": "chargebacktransitions",
    "digitalwallettokentransition": "digitalwallettokentransitions",
}
PING_BODY = {"pings": [{"token": "marqeta", "payload": "healthcheck"}]}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def callback_url(body: field.Body, name: str) -> str:
    """An HTTPS URL, or plain HTTP on loopback so tests and demos need no certificate."""
    url = field.required_text(body, name, max_length=1000)
    parts = urlsplit(url)
    secure = parts.scheme == "https" and bool(parts.hostname)
    if not secure and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        raise invalid(f"{name} must be an https URL")
    return url


def subscribes(patterns: list[str], event_type: str) -> bool:
    base = event_type.split(".", 1)[0]
    return any(p in ("*", event_type, f"{base}.*") for p in patterns)


def _endpoint(state: SimulatorState, webhook: Resource) -> Endpoint:
    password, secret = state.webhook_secrets[webhook["token"]]
    config = webhook["config"]
    return Endpoint(
        webhook_token=webhook["token"],
        url=config["url"],
        username=config["basic_auth_username"],
        password=password,
        secret=secret,
        signature_algorithm=config["signature_algorithm"],
        custom_header=dict(config.get("custom_header", {})),
    )


def publish(state: SimulatorState, event_type: str, event_token: str, event: Resource) -> None:
    """Record an event and queue it for every active webhook that subscribes to it."""
    category = CATEGORIES[event_type.split(".", 1)[0]]
    state.events[event_token] = (event_type, category, event)
    for webhook in state.webhooks.values():
        if webhook["active"] and subscribes(webhook["events"], event_type):
            state.dispatcher.publish(_endpoint(state, webhook), category, event)


def _events(body: field.Body) -> list[str]:
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise invalid("events must be a non-empty list of event types")
    for event in events:
        base = event.split(".", 1)[0] if isinstance(event, str) else None
        if event != "*" and base not in CATEGORIES:
            raise invalid(f"events has an unknown event type: {event}")
    return [str(event) for event in events]


def _config(body: field.Body) -> tuple[dict[str, Any], str, str | None]:
    config = field.nested(body, "config")
    secret = field.text(config, "secret", max_length=50)
    if secret is not None and len(secret) < 20:
        raise invalid("config.secret must be 20-50 characters")
    custom_header = field.nested(config, "custom_header")
    public = {
        "url": callback_url(config, "url"),
        "basic_auth_username": field.required_text(config, "basic_auth_username", max_length=50),
        "signature_algorithm": field.choice(
            config, "signature_algorithm", SIGNATURE_ALGORITHMS.keys(), "HMAC_SHA_256"
        ),
        "custom_header": {str(k): str(v) for k, v in custom_header.items()},
    }
    return public, field.password(config, "basic_auth_password"), secret


@routes.post(V3 + "/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.webhooks, state.tokens.token())
    config, password, secret = _config(body)
    webhook = {
        "token": token,
        "name": field.required_text(body, "name", max_length=64),
        "active": field.flag(body, "active", True),
        "events": _events(body),
        "config": config,
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    state.webhooks[token] = webhook
    state.webhook_secrets[token] = (password, secret)
    return created(webhook)


def _webhook(state: SimulatorState, token: str) -> Resource:
    if token not in state.webhooks:
        raise not_found("webhook", token)
    return state.webhooks[token]


@routes.get(V3 + "/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    return page(request, [*state_of(request).webhooks.values()])


@routes.get(V3 + "/webhooks/{token}")
async def get_webhook(request: web.Request) -> web.Response:
    return answer(_webhook(state_of(request), request.match_info["token"]))


@routes.post(V3 + "/webhooks/{token}/ping")
async def ping_webhook(request: web.Request) -> web.Response:
    state = state_of(request)
    endpoint = _endpoint(state, _webhook(state, request.match_info["token"]))
    status = await state.dispatcher.post_once(endpoint, codec.encode(PING_BODY))
    if status != 200:
        raise ApiError(400, WEBHOOK_UNREACHABLE, f"webhook endpoint answered {status}")
    return answer(PING_BODY)


@routes.post(V3 + "/webhooks/{token}/{event_type}/{event_token}")
async def resend_event(request: web.Request) -> web.Response:
    """Queue one recorded event again for one webhook, whatever it subscribes to."""
    state = state_of(request)
    webhook = _webhook(state, request.match_info["token"])
    event_token = request.match_info["event_token"]
    recorded = state.events.get(event_token)
    if recorded is None or recorded[0].split(".", 1)[0] != request.match_info["event_type"]:
        raise not_found(request.match_info["event_type"] + " event", event_token)
    _, category, event = recorded
    state.dispatcher.publish(_endpoint(state, webhook), category, event)
    return answer(event)
