"""The engine's model JSON (pyjit/_engine.pyi queries) as contract messages."""

import datetime as dt
from typing import Any

from pyjit.rpc import money
from pyjit.v1 import accounts_pb2, cards_pb2, common_pb2, controls_pb2


def amount(amount_minor: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount_minor, currency=currency)


def card(found: dict[str, Any]) -> cards_pb2.Card:
    return cards_pb2.Card(
        token=found["token"],
        user_token=found["user_token"],
        card_product_token=found["card_product_token"],
        state=found["state"],
        last_four=found.get("last_four") or "",
        expires_at_ms=found.get("expires_at_ms") or 0,
    )


def hold(found: dict[str, Any], currency: str) -> accounts_pb2.Hold:
    return accounts_pb2.Hold(
        token=found["token"],
        account_token=found["account"],
        card_token=found.get("card") or "",
        amount=amount(found["amount_minor"], currency),
        state=found["state"],
        expires_at_ms=found.get("expires_at_ms") or 0,
    )


def association(found: dict[str, Any]) -> controls_pb2.Association:
    kind, token = found.get("type"), found.get("token", "")
    names = {"user": "user_token", "card_product": "card_product_token", "card": "card_token"}
    name = names.get(str(kind))
    return controls_pb2.Association(**{name: token}) if name else controls_pb2.Association()


def scope(found: dict[str, Any]) -> controls_pb2.MerchantScope:
    kind, value = found.get("type"), found.get("value")
    if kind == "mcc" and isinstance(value, int):
        return controls_pb2.MerchantScope(mcc=f"{value:04d}")
    if kind in ("mid", "mcc_group", "country"):
        return controls_pb2.MerchantScope(**{str(kind): str(value)})
    return controls_pb2.MerchantScope()


def velocity_control(found: dict[str, Any], currency: str) -> controls_pb2.VelocityControl:
    includes = found.get("includes", {})
    limit = found.get("amount_limit_minor")
    usage = found.get("usage_limit")
    return controls_pb2.VelocityControl(
        token=found["token"],
        name=found["name"],
        association=association(found["association"]),
        merchant_scope=scope(found["scope"]),
        usage_limit=-1 if usage is None else usage,
        amount_limit=None if limit is None else amount(limit, currency),
        velocity_window=found["window"],
        include_purchases=includes.get("purchases", False),
        include_withdrawals=includes.get("withdrawals", False),
        include_transfers=includes.get("transfers", False),
        include_cashback=includes.get("cashback", False),
        include_credits=includes.get("credits", False),
        approvals_only=found.get("approvals_only", False),
        active=found.get("active", False),
    )


def auth_control(found: dict[str, Any]) -> controls_pb2.AuthControl:
    return controls_pb2.AuthControl(
        token=found["token"],
        name=found["name"],
        association=association(found["association"]),
        merchant_scope=scope(found["scope"]),
        active=found.get("active", False),
        mode=found.get("mode", "BLOCK"),
    )


def mcc_group(found: dict[str, Any]) -> controls_pb2.MccGroup:
    ranges = [
        f"{low:04d}" if low == high else f"{low:04d}-{high:04d}"
        for low, high in found.get("ranges", [])
    ]
    return controls_pb2.MccGroup(
        token=found["token"],
        name=found["name"],
        mccs=ranges,
        hold_expiration_days=found.get("hold_expiration_days") or 0,
    )


def available(found: dict[str, Any], currency: str) -> controls_pb2.Available:
    left = found.get("amount")
    return controls_pb2.Available(
        token=found["token"],
        name=found["name"],
        velocity_window=found["window"],
        card_token=found.get("card_token") or "",
        uses=found.get("uses"),
        amount=None if left is None else amount(money.to_minor(left, currency), currency),
        days_remaining=found.get("days_remaining"),
    )


def program_velocity(found: dict[str, Any], currency: str) -> dict[str, Any]:
    """A velocity control of the model as a program-file object (to change one field)."""
    control = velocity_control(found, currency)
    document: dict[str, Any] = {
        "token": control.token,
        "name": control.name,
        "association": _set_fields(control.association),
        "merchant_scope": _set_fields(control.merchant_scope),
        "usage_limit": control.usage_limit,
        "velocity_window": control.velocity_window,
        "approvals_only": control.approvals_only,
        "active": control.active,
    }
    for name in ("purchases", "withdrawals", "transfers", "cashback", "credits"):
        document[f"include_{name}"] = getattr(control, f"include_{name}")
    if control.HasField("amount_limit"):
        document["amount_limit"] = money.to_text(control.amount_limit.amount_minor, currency)
        document["currency_code"] = currency
    return document


def program_auth(found: dict[str, Any]) -> dict[str, Any]:
    control = auth_control(found)
    document: dict[str, Any] = {
        "token": control.token,
        "name": control.name,
        "association": _set_fields(control.association),
        "merchant_scope": _set_fields(control.merchant_scope),
        "active": control.active,
        "mode": control.mode,
    }
    for name in ("start_ms", "end_ms"):
        if found.get(name) is not None:
            document[name.replace("_ms", "_time")] = _iso(found[name])
    return document


def _set_fields(message: controls_pb2.Association | controls_pb2.MerchantScope) -> dict[str, str]:
    return {descriptor.name: value for descriptor, value in message.ListFields()}


def _iso(at_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"
