"""Funding: program gateway funding sources (where JIT messages go), program funding
sources, GPA orders that load an account holder's GPA, and balances."""

from decimal import Decimal
from typing import Any

from aiohttp import web

from services.simulator import validation as field
from services.simulator.errors import UNKNOWN_REFERENCE, invalid, not_found
from services.simulator.state import Account, Resource, SimulatorState
from services.simulator.webhooks import callback_url, publish
from services.simulator.wire import V3, answer, body_of, created, state_of

routes = web.RouteTableDef()

TIMEOUT_MILLIS_DEFAULT = 2000
APPROVED = {"code": "0000", "memo": "Approved or completed successfully"}


@routes.post(V3 + "/fundingsources/programgateway")
async def create_gateway_source(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.gateway_sources, state.tokens.token())
    custom_header = field.nested(body, "custom_header")
    source = {
        "token": token,
        "name": field.required_text(body, "name", max_length=50),
        "url": callback_url(body, "url"),
        "basic_auth_username": field.required_text(body, "basic_auth_username", max_length=50),
        "timeout_millis": field.integer(
            body, "timeout_millis", default=TIMEOUT_MILLIS_DEFAULT, minimum=1000, maximum=7000
        ),
        "custom_header": {str(k): str(v) for k, v in custom_header.items()},
        "use_mtls": field.flag(body, "use_mtls", False),
        "active": field.flag(body, "active", True),
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    state.gateway_passwords[token] = field.password(body, "basic_auth_password")
    state.gateway_sources[token] = source
    return created(source)


@routes.get(V3 + "/fundingsources/programgateway/{token}")
async def get_gateway_source(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    source = state_of(request).gateway_sources.get(token)
    if source is None:
        raise not_found("program gateway funding source", token)
    return answer(source)


@routes.post(V3 + "/fundingsources/program")
async def create_program_source(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.program_sources, state.tokens.token())
    source = {
        "token": token,
        "name": field.required_text(body, "name", max_length=50),
        "active": field.flag(body, "active", True),
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    state.program_sources[token] = source
    return created(source)


def gpa_view(account: Account, impacted_amount: Decimal | None = None) -> dict[str, Any]:
    """The `gpa` object the processor shows for an account."""
    detail: dict[str, Any] = {
        "currency_code": account.currency_code,
        "ledger_balance": account.posted,
        "available_balance": account.available,
        "credit_balance": Decimal("0.00"),
        "pending_credits": Decimal("0.00"),
    }
    if impacted_amount is not None:
        detail["impacted_amount"] = impacted_amount
    return {**detail, "balances": {account.currency_code: dict(detail)}}


def _funding_source(state: SimulatorState, token: str) -> tuple[str, Resource]:
    if token in state.program_sources:
        return "program", state.program_sources[token]
    if token in state.gateway_sources:
        return "programgateway", state.gateway_sources[token]
    raise invalid(f"funding_source_token does not exist: {token}", UNKNOWN_REFERENCE)


def _order_holder(state: SimulatorState, body: field.Body) -> tuple[str, str]:
    user_token = field.optional_reference(body, "user_token", state.users)
    business_token = field.optional_reference(body, "business_token", state.businesses)
    if (user_token is None) == (business_token is None):
        raise invalid("give exactly one of user_token and business_token")
    if user_token is not None:
        return "user_token", user_token
    assert business_token is not None
    return "business_token", business_token


@routes.post(V3 + "/gpaorders")
async def create_gpa_order(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.gpa_orders, state.tokens.token())
    holder_field, holder_token = _order_holder(state, body)
    currency_code = field.currency(body)
    amount = field.amount(body, "amount", currency_code, positive=True)
    source_type, source = _funding_source(state, field.required_text(body, "funding_source_token"))

    account = state.account(holder_token, currency_code)
    account.posted += amount
    order = {
        "token": token,
        holder_field: holder_token,
        "amount": amount,
        "currency_code": currency_code,
        "funding_source_token": source["token"],
        "state": "COMPLETION",
        "response": APPROVED,
        "funding": {"amount": amount, "source": {"type": source_type, **source}},
        "transaction_token": state.tokens.token(),
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    for name in ("memo", "tags"):
        value = field.text(body, name, max_length=99 if name == "memo" else 255)
        if value is not None:
            order[name] = value
    state.gpa_orders[token] = order
    _publish_gpa_credit(state, order, holder_field, holder_token, account)
    return created(order)


def _publish_gpa_credit(
    state: SimulatorState, order: Resource, holder_field: str, holder_token: str, account: Account
) -> None:
    transaction = {
        "token": order["transaction_token"],
        "type": "gpa.credit",
        "state": "COMPLETION",
        "amount": order["amount"],
        "currency_code": order["currency_code"],
        holder_field: holder_token,
        "gpa": gpa_view(account, order["amount"]),
        "gpa_order": {k: v for k, v in order.items() if k != "funding"},
        "response": APPROVED,
        "created_time": order["created_time"],
        "user_transaction_time": order["created_time"],
    }
    state.transactions[transaction["token"]] = transaction
    publish(state, "transaction.gpa.credit", transaction["token"], transaction)


@routes.get(V3 + "/gpaorders/{token}")
async def get_gpa_order(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    order = state_of(request).gpa_orders.get(token)
    if order is None:
        raise not_found("GPA order", token)
    return answer(order)


@routes.get(V3 + "/balances/{token}")
async def get_balances(request: web.Request) -> web.Response:
    state = state_of(request)
    token = request.match_info["token"]
    if state.holder(token) is None:
        raise not_found("account holder", token)
    return answer({"gpa": gpa_view(state.account(token)), "links": []})
