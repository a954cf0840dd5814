"""Card and control commands as program-file documents, loaded through the decider.

Every change goes through `Decider.load_program`, exactly as `POST /admin/program` does, so
it is journaled, durable before the reply, and replayed at recovery like any program file.
Card transitions are checked against the processor's rules first.
"""

from typing import Any

import grpc
import orjson

from pyjit._engine import ProgramError
from pyjit.decider import Decider, NotDurable, ProgramTooLarge
from pyjit.rpc import money
from pyjit.rpc.errors import RpcRefusal, invalid, not_found
from pyjit.v1 import controls_pb2

PROGRAM_COMMIT_TIMEOUT_S = 30.0

# (states a card may be in, state it moves to) per command; TERMINATED is final.
TRANSITIONS = {
    "activate": (frozenset({"UNACTIVATED"}), "ACTIVE"),
    "suspend": (frozenset({"ACTIVE"}), "SUSPENDED"),
    "reinstate": (frozenset({"SUSPENDED"}), "ACTIVE"),
    "terminate": (frozenset({"UNACTIVATED", "ACTIVE", "SUSPENDED"}), "TERMINATED"),
}
CHANNELS = frozenset({"API", "IVR", "FRAUD", "ADMIN", "SYSTEM"})
WINDOWS = frozenset({"TRANSACTION", "DAY", "WEEK", "MONTH", "LIFETIME"})


async def load(decider: Decider, document: dict[str, Any] | bytes, field_prefix: str = "") -> int:
    """Load a program document (bytes pass untouched, keeping their exact decimals); a
    refused one is INVALID_ARGUMENT naming its first field."""
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    try:
        return await decider.load_program(body, PROGRAM_COMMIT_TIMEOUT_S)
    except ProgramError as error:
        path = error.problems[0][0] if error.problems else error.field
        problems = "; ".join(f"{p}: {m}" for p, m in error.problems) or str(error)
        field = field_prefix + path.split(".", 1)[-1] if field_prefix else path
        raise RpcRefusal(
            grpc.StatusCode.INVALID_ARGUMENT, "PROGRAM_REJECTED", problems, field
        ) from error
    except NotDurable as error:
        raise RpcRefusal(grpc.StatusCode.UNAVAILABLE, "NOT_DURABLE", str(error)) from error
    except ProgramTooLarge as error:
        raise RpcRefusal(
            grpc.StatusCode.INVALID_ARGUMENT, "PROGRAM_TOO_LARGE", str(error), "document"
        ) from error


def card_of(decider: Decider, token: str) -> dict[str, Any]:
    if not token:
        raise invalid("card_token", "required")
    found = decider.engine.card(token)
    if found is None:
        raise not_found("card", token)
    card: dict[str, Any] = orjson.loads(found)
    return card


def transition(
    decider: Decider, command: str, card_token: str, token: str, reason: str, channel: str
) -> dict[str, Any]:
    """The `cardtransitions` document for `command`, or FAILED_PRECONDITION by the rules."""
    card = card_of(decider, card_token)
    allowed, target = TRANSITIONS[command]
    if card["state"] not in allowed:
        raise RpcRefusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "CARD_STATE_TRANSITION",
            f"cannot {command} a card in state {card['state']} (needs {'/'.join(sorted(allowed))})",
            "card_token",
        )
    channel = channel or "API"
    if channel not in CHANNELS:
        raise invalid("channel", f"one of {', '.join(sorted(CHANNELS))}")
    reason = reason or "00"
    if not (len(reason) == 2 and reason.isdigit() and int(reason) <= 32):
        raise invalid("reason_code", "two digits, 00 to 32")
    # Unique without a clock: the engine's seq only grows.
    token = token or f"ct-{card_token}-{decider.engine.last_seq + 1}"
    move = {
        "token": token,
        "card_token": card_token,
        "state": target,
        "reason_code": reason,
        "channel": channel,
    }
    return {"cardtransitions": [move]}


def association_of(association: controls_pb2.Association) -> dict[str, str]:
    names = ("user_token", "card_product_token", "card_token", "business_token")
    return _at_most_one(association, names, "association", "set at most one token")


def scope_of(scope: controls_pb2.MerchantScope) -> dict[str, str]:
    names = ("mid", "mcc", "mcc_group", "country")
    message = "set at most one of mid, mcc, mcc_group, country"
    return _at_most_one(scope, names, "merchant_scope", message)


def _at_most_one(
    message: controls_pb2.Association | controls_pb2.MerchantScope,
    names: tuple[str, ...],
    field: str,
    problem: str,
) -> dict[str, str]:
    given = {name: getattr(message, name) for name in names if getattr(message, name)}
    if len(given) > 1:
        raise invalid(field, problem)
    return given


def velocity_document(control: controls_pb2.VelocityControl) -> dict[str, Any]:
    if not control.token:
        raise invalid("token", "required")
    if control.velocity_window not in WINDOWS:
        raise invalid("velocity_window", f"one of {', '.join(sorted(WINDOWS))}")
    found: dict[str, Any] = {
        "token": control.token,
        "name": control.name or control.token,
        "association": association_of(control.association),
        "merchant_scope": scope_of(control.merchant_scope),
        "usage_limit": control.usage_limit,
        "velocity_window": control.velocity_window,
        "include_purchases": control.include_purchases,
        "include_withdrawals": control.include_withdrawals,
        "include_transfers": control.include_transfers,
        "include_cashback": control.include_cashback,
        "include_credits": control.include_credits,
        "approvals_only": control.approvals_only,
        "active": control.active,
    }
    if control.HasField("amount_limit"):
        limit = control.amount_limit
        if not money.is_currency(limit.currency):
            raise invalid("amount_limit.currency", f"not an ISO 4217 code: {limit.currency!r}")
        if limit.amount_minor < 0:
            raise invalid("amount_limit.amount_minor", "must not be negative")
        found["amount_limit"] = money.to_text(limit.amount_minor, limit.currency)
        found["currency_code"] = limit.currency
    return {"velocitycontrols": [found]}


def auth_document(control: controls_pb2.AuthControl) -> dict[str, Any]:
    if not control.token:
        raise invalid("token", "required")
    if control.mode not in ("", "BLOCK", "ALLOW"):
        raise invalid("mode", "BLOCK or ALLOW")
    found = {
        "token": control.token,
        "name": control.name or control.token,
        "association": association_of(control.association),
        "merchant_scope": scope_of(control.merchant_scope),
        "active": control.active,
        "mode": control.mode or "BLOCK",
    }
    return {"authcontrols": [found]}


def mcc_group_document(group: controls_pb2.MccGroup) -> dict[str, Any]:
    if not group.token:
        raise invalid("token", "required")
    if not group.mccs:
        raise invalid("mccs", "at least one code or range")
    found: dict[str, Any] = {"token": group.token, "name": group.name or group.token}
    found["mccs"] = list(group.mccs)
    if group.hold_expiration_days:
        found["config"] = {
            "authorization_controls": {"hold_expiration_days": group.hold_expiration_days}
        }
    return {"mccgroups": [found]}
