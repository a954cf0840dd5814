"""Spend controls as the processor applies them before it asks the gateway.

Authorization controls block a merchant scope (MID, MCC or MCC group) for a user, a card
product or the whole program, unless an exempt MID lets that merchant through. Velocity
controls cap the amount and the number of approved purchases per window; windows follow
the processor: DAY from 00:00 UTC, WEEK from Sunday 00:00 UTC, MONTH from the 1st.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from aiohttp import web

from services.simulator import validation as field
from services.simulator.errors import CONTROL_LIMIT_REACHED, found, invalid
from services.simulator.state import Resource, SimulatorState, SpendEntry
from services.simulator.wire import V3, answer, body_of, created, page, state_of

routes = web.RouteTableDef()

VELOCITY_WINDOWS = frozenset({"DAY", "WEEK", "MONTH", "LIFETIME", "TRANSACTION"})
_FLAG_DEFAULTS = {
    "approvals_only": True,
    "include_purchases": True,
    "include_withdrawals": True,
    "include_transfers": True,
    "include_cashback": True,
    "include_credits": False,
    "active": True,
}


@dataclass(frozen=True, slots=True)
class Purchase:
    """What a spend control looks at in one authorization."""

    user_token: str
    card_product_token: str
    amount: Decimal
    mcc: str
    mid: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ControlDecline:
    decline_reason: str
    memo: str


def _association(state: SimulatorState, body: field.Body) -> dict[str, str]:
    association = field.nested(body, "association")
    user_token = field.optional_reference(association, "user_token", state.users)
    product_token = field.optional_reference(association, "card_product_token", state.card_products)
    if user_token is not None and product_token is not None:
        raise invalid("association takes user_token or card_product_token, not both")
    if user_token is not None:
        return {"user_token": user_token}
    return {} if product_token is None else {"card_product_token": product_token}


def _merchant_scope(state: SimulatorState, body: field.Body, required: bool) -> dict[str, str]:
    scope = field.nested(body, "merchant_scope")
    given = {k: v for k, v in scope.items() if k in ("mid", "mcc", "mcc_group") and v}
    if len(given) > 1 or (required and not given):
        raise invalid("merchant_scope takes exactly one of mid, mcc and mcc_group")
    if "mcc" in given:
        field.mcc(given["mcc"], "merchant_scope.mcc")
    if "mcc_group" in given:
        field.reference(given, "mcc_group", state.mcc_groups)
    if "mid" in given:
        field.required_text(given, "mid", max_length=36)
    return given


def _room_for_control(state: SimulatorState) -> None:
    if state.spend_controls_count() >= state.config.spend_controls_max:
        limit = state.config.spend_controls_max
        raise invalid(f"a program has at most {limit} spend controls", CONTROL_LIMIT_REACHED)


def _velocity_fields(state: SimulatorState, body: field.Body) -> Resource:
    currency_code = field.currency(body)
    window = field.choice(body, "velocity_window", VELOCITY_WINDOWS)
    control: Resource = {
        "name": field.text(body, "name") or "",
        "association": _association(state, body),
        "merchant_scope": _merchant_scope(state, body, required=False),
        "amount_limit": field.amount(body, "amount_limit", currency_code),
        "usage_limit": field.integer(body, "usage_limit", default=-1, minimum=-1, maximum=10**9),
        "currency_code": currency_code,
        "velocity_window": window,
    }
    for name, default in _FLAG_DEFAULTS.items():
        control[name] = field.flag(body, name, default)
    return control


@routes.post(V3 + "/velocitycontrols")
async def create_velocity_control(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.velocity_controls, state.tokens.token())
    control = {"token": token, **_velocity_fields(state, body)}
    _room_for_control(state)
    state.velocity_controls[token] = control
    return created(control)


@routes.get(V3 + "/velocitycontrols")
async def list_velocity_controls(request: web.Request) -> web.Response:
    return page(request, [*state_of(request).velocity_controls.values()])


@routes.get(V3 + "/velocitycontrols/{token}")
async def get_velocity_control(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    return answer(found(state_of(request).velocity_controls, "velocity control", token))


@routes.put(V3 + "/velocitycontrols/{token}")
async def update_velocity_control(request: web.Request) -> web.Response:
    state = state_of(request)
    control = found(state.velocity_controls, "velocity control", request.match_info["token"])
    changes = await body_of(request)
    changes.pop("token", None)
    control.update(_velocity_fields(state, {**control, **changes}))
    return answer(control)


def window_bounds(window: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """Where the current window began and ends; None for an unbounded side."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "DAY":
        return day, day + timedelta(days=1)
    if window == "WEEK":
        start = day - timedelta(days=(day.weekday() + 1) % 7)
        return start, start + timedelta(days=7)
    if window == "MONTH":
        start = day.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return start, following
    return None, None


def _mcc_in_group(state: SimulatorState, group_token: str, mcc: str) -> bool:
    group = state.mcc_groups.get(group_token)
    if group is None or not group["active"]:
        return False
    for entry in group["mccs"]:
        low, _, high = entry.partition("-")
        if low <= mcc <= (high or low):
            return True
    return False


def in_scope(state: SimulatorState, scope: dict[str, str], mcc: str, mid: str) -> bool:
    if "mid" in scope:
        return scope["mid"] == mid
    if "mcc" in scope:
        return scope["mcc"] == mcc
    if "mcc_group" in scope:
        return _mcc_in_group(state, scope["mcc_group"], mcc)
    return True


def _applies(control: Resource, user_token: str, card_product_token: str) -> bool:
    association = control["association"]
    if "user_token" in association:
        return bool(association["user_token"] == user_token)
    if "card_product_token" in association:
        return bool(association["card_product_token"] == card_product_token)
    return True


def _usage(
    state: SimulatorState, control: Resource, user_token: str, now: datetime
) -> tuple[Decimal, int]:
    start, _ = window_bounds(control["velocity_window"], now)
    entries: list[SpendEntry] = state.spending.get(user_token, [])
    amount, uses = Decimal(0), 0
    for entry in entries:
        if start is not None and entry.at < start:
            continue
        if in_scope(state, control["merchant_scope"], entry.mcc, entry.mid):
            amount += entry.amount
            uses += entry.uses
    return amount, uses


def velocity_decline(
    state: SimulatorState, purchase: Purchase, new_uses: int
) -> ControlDecline | None:
    """The first velocity control this purchase would break, as a decline."""
    for control in state.velocity_controls.values():
        if not control["active"] or not control["include_purchases"]:
            continue
        if not _applies(control, purchase.user_token, purchase.card_product_token):
            continue
        if not in_scope(state, control["merchant_scope"], purchase.mcc, purchase.mid):
            continue
        if control["velocity_window"] == "TRANSACTION":
            spent, uses = Decimal(0), 0
        else:
            spent, uses = _usage(state, control, purchase.user_token, purchase.at)
        if spent + purchase.amount > control["amount_limit"]:
            memo = f"velocity control {control['token']}: amount limit exceeded"
            return ControlDecline("AMOUNT_LIMIT_EXCEEDED", memo)
        if control["usage_limit"] != -1 and uses + new_uses > control["usage_limit"]:
            memo = f"velocity control {control['token']}: usage limit exceeded"
            return ControlDecline("TRANSACTION_COUNT_LIMIT_EXCEEDED", memo)
    return None


def _in_time(control: Resource, now_text: str) -> bool:
    start, end = control.get("start_time"), control.get("end_time")
    return (start is None or start <= now_text) and (end is None or now_text < end)


def authorization_decline(
    state: SimulatorState, purchase: Purchase, now_text: str
) -> ControlDecline | None:
    """An authorization control that blocks this merchant, unless an exempt MID allows it."""
    for exemption in state.exempt_mids.values():
        if (
            exemption["active"]
            and exemption["mid"] == purchase.mid
            and _applies(exemption, purchase.user_token, purchase.card_product_token)
            and _in_time(exemption, now_text)
        ):
            return None
    for control in state.auth_controls.values():
        if (
            control["active"]
            and _applies(control, purchase.user_token, purchase.card_product_token)
            and _in_time(control, now_text)
            and in_scope(state, control["merchant_scope"], purchase.mcc, purchase.mid)
        ):
            memo = f"authorization control {control['token']} blocks this merchant"
            return ControlDecline("TRANSACTION_NOT_PERMITTED", memo)
    return None


def _days_remaining(window: str, now: datetime) -> int:
    _, end = window_bounds(window, now)
    if end is None:
        return -1
    return math.ceil((end - now) / timedelta(days=1))


@routes.get(V3 + "/velocitycontrols/user/{token}/available")
async def list_available(request: web.Request) -> web.Response:
    state = state_of(request)
    user = found(state.users, "user", request.match_info["token"])
    product_tokens = {
        card["card_product_token"]
        for card in state.cards.values()
        if card.get("user_token") == user["token"]
    }
    now = state.clock.now()
    balances = []
    for control in state.velocity_controls.values():
        association = control["association"]
        if "card_product_token" in association:
            if association["card_product_token"] not in product_tokens:
                continue
        elif not _applies(control, user["token"], ""):
            continue
        spent, uses = _usage(state, control, user["token"], now)
        unlimited = control["usage_limit"] == -1
        available = {
            "uses": -1 if unlimited else max(control["usage_limit"] - uses, 0),
            "amount": max(control["amount_limit"] - spent, Decimal(0)),
            "days_remaining": _days_remaining(control["velocity_window"], now),
        }
        balances.append({**control, "available": available})
    return page(request, balances)


def _time_text(body: field.Body, name: str) -> str | None:
    return field.text(body, name, max_length=30)


@routes.post(V3 + "/authcontrols")
async def create_auth_control(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.auth_controls, state.tokens.token())
    control = {
        "token": token,
        "name": field.text(body, "name") or "",
        "association": _association(state, body),
        "merchant_scope": _merchant_scope(state, body, required=True),
        "active": field.flag(body, "active", True),
    }
    for name in ("start_time", "end_time"):
        value = _time_text(body, name)
        if value is not None:
            control[name] = value
    _room_for_control(state)
    state.auth_controls[token] = control
    return created(control)


@routes.get(V3 + "/authcontrols/{token}")
async def get_auth_control(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    return answer(found(state_of(request).auth_controls, "authorization control", token))


@routes.post(V3 + "/authcontrols/exemptmids")
async def create_exempt_mid(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.exempt_mids, state.tokens.token())
    exemption = {
        "token": token,
        "name": field.text(body, "name") or "",
        "association": _association(state, body),
        "mid": field.required_text(body, "mid", max_length=36),
        "active": field.flag(body, "active", True),
        "created": state.now_text(),
        "last_updated": state.now_text(),
    }
    for name in ("start_time", "end_time"):
        value = _time_text(body, name)
        if value is not None:
            exemption[name] = value
    state.exempt_mids[token] = exemption
    return created(exemption)


def _mccs(body: field.Body) -> list[str]:
    entries = body.get("mccs")
    if not isinstance(entries, list) or not entries:
        raise invalid("mccs must be a non-empty list of MCCs or MCC ranges")
    for entry in entries:
        if not isinstance(entry, str):
            raise invalid("mccs must hold strings")
        low, dash, high = entry.partition("-")
        field.mcc(low, "mccs")
        if dash and (field.mcc(high, "mccs") < low):
            raise invalid(f"mccs range {entry} runs backwards")
    return [str(entry) for entry in entries]


@routes.post(V3 + "/mccgroups")
async def create_mcc_group(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.mcc_groups, state.tokens.token())
    config = field.nested(body, "config")
    controls = field.nested(config, "authorization_controls")
    if "hold_expiration_days" in controls:
        field.integer(controls, "hold_expiration_days", default=7, minimum=1, maximum=30)
    group = {
        "token": token,
        "name": field.required_text(body, "name", max_length=255),
        "mccs": _mccs(body),
        "config": {**config, "authorization_controls": controls},
        "active": field.flag(body, "active", True),
    }
    state.mcc_groups[token] = group
    return created(group)


@routes.get(V3 + "/mccgroups/{token}")
async def get_mcc_group(request: web.Request) -> web.Response:
    return answer(found(state_of(request).mcc_groups, "MCC group", request.match_info["token"]))


def hold_expiration_days(state: SimulatorState, mcc: str) -> int:
    """Days an authorization's hold lasts: its MCC group's setting, else the program's."""
    for group in state.mcc_groups.values():
        days = group["config"]["authorization_controls"].get("hold_expiration_days")
        if days is not None and _mcc_in_group(state, group["token"], mcc):
            return int(days)
    return state.config.hold_expiration_days
