"""Between the contracts' messages and the processor's JSON documents."""

from typing import Any

import orjson

from pyjit.decider import Answer
from pyjit.rpc import money
from pyjit.rpc.errors import invalid
from pyjit.v1 import common_pb2, jit_pb2

JIT_BODY_MAX = 64 * 1024


def request_body(request: jit_pb2.DecideRequest) -> bytes:
    """The processor's JSON body a request carries, raw or built from its fields."""
    which = request.WhichOneof("message")
    if which == "raw":
        if not request.raw:
            raise invalid("raw", "empty message")
        if len(request.raw) > JIT_BODY_MAX:
            raise invalid("raw", f"over {JIT_BODY_MAX} bytes")
        return request.raw
    if which == "fields":
        return orjson.dumps(transaction_of(request.fields))
    raise invalid("message", "set raw or fields")


def transaction_of(fields: jit_pb2.JitMessage) -> dict[str, Any]:
    """The processor's transaction object for a structured message; refuses what the
    processor never sends (no token, two holders, an amount without its currency)."""
    for name in ("token", "method", "card_token"):
        if not getattr(fields, name):
            raise invalid(f"fields.{name}", "required")
    if bool(fields.user_token) == bool(fields.business_token):
        raise invalid("fields.user_token", "set exactly one of user_token and business_token")
    if not fields.HasField("amount"):
        raise invalid("fields.amount", "required")
    currency = fields.amount.currency
    if not money.is_currency(currency):
        raise invalid("fields.amount.currency", f"not an ISO 4217 code: {currency!r}")
    if fields.amount.amount_minor < 0:
        raise invalid("fields.amount.amount_minor", "must not be negative")
    amount = money.to_text(fields.amount.amount_minor, currency)

    holder = {"user_token": fields.user_token} if fields.user_token else {}
    if fields.business_token:
        holder = {"business_token": fields.business_token}
    funding: dict[str, Any] = {
        "token": fields.token,
        "method": fields.method,
        "amount": amount,
        **holder,
    }
    if fields.original_jit_funding_token:
        funding["original_jit_funding_token"] = fields.original_jit_funding_token
    if fields.acting_user_token:
        funding["acting_user_token"] = fields.acting_user_token
    transaction: dict[str, Any] = {
        "token": fields.transaction_token or f"txn-{fields.token}",
        "amount": amount,
        "currency_code": currency,
        "card_token": fields.card_token,
        **holder,
        "gpa_order": {"jit_funding": funding},
    }
    if fields.created_time:
        transaction["created_time"] = fields.created_time
    if fields.HasField("merchant"):
        transaction["card_acceptor"] = _merchant(fields.merchant)
    return transaction


def _merchant(merchant: common_pb2.Merchant) -> dict[str, str]:
    found = {
        "mid": merchant.mid,
        "mcc": merchant.mcc,
        "name": merchant.name,
        "city": merchant.city,
        "country_code": merchant.country_code,
    }
    return {key: value for key, value in found.items() if value}


def currency_of(body: bytes) -> str:
    """The transaction's currency, USD when absent (the engine checks it against the program)."""
    try:
        found = orjson.loads(body).get("currency_code")
    except (orjson.JSONDecodeError, AttributeError):
        return "USD"
    return found if isinstance(found, str) and money.is_currency(found) else "USD"


def decision_of(answer: Answer, currency: str, *, stand_in: bool = False) -> jit_pb2.Decision:
    funding = _funding_of(answer.body)
    amount_text = funding.get("amount")
    amount = None
    if isinstance(amount_text, str):
        try:
            amount = common_pb2.Money(
                amount_minor=money.to_minor(amount_text, currency), currency=currency
            )
        except money.AmountError:
            amount = None
    memo = funding.get("memo")
    return jit_pb2.Decision(
        token=answer.token,
        method=answer.method,
        approved=answer.approved,
        decline_reason=answer.decline_reason or "",
        rule_id=answer.rule_id or "",
        rule_name=answer.rule_name or "",
        amount=amount,
        memo=memo if isinstance(memo, str) else "",
        http_status=answer.status,
        body=answer.body,
        replayed=answer.replayed,
        voided=answer.voided,
        stand_in=stand_in,
    )


def _funding_of(body: bytes) -> dict[str, Any]:
    try:
        funding = orjson.loads(body)["jit_funding"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {}
    return funding if isinstance(funding, dict) else {}
