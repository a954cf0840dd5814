"""Simulated card transactions and the JIT funding messages they send.

`POST /v3/simulations/cardtransactions/{kind}` plays the card network's part. An
authorization (or incremental, or PIN debit) first meets the processor's own checks: card
and holder state, authorization controls, velocity controls, and for a GPA-funded card
the balance. If those pass and the card product is JIT funded, the processor asks the
program gateway and its answer decides. Informative messages (advice, reversal, clearing,
force post, refund, issuer expiry) are applied whatever the gateway answers. Every
outcome becomes a `transaction.<type>` webhook event.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from services.simulator import validation as field
from services.simulator.cards import gateway_funding
from services.simulator.controls import (
    ControlDecline,
    Purchase,
    authorization_decline,
    hold_expiration_days,
    velocity_decline,
)
from services.simulator.errors import TRANSACTION_STATE, ApiError, invalid, not_found
from services.simulator.funding import APPROVED, gpa_view
from services.simulator.gateway import GatewayAnswer, send_jit
from services.simulator.state import Account, Hold, Resource, SimulatorState, SpendEntry
from services.simulator.webhooks import publish
from services.simulator.wire import V3, answer, body_of, created, page, state_of

routes = web.RouteTableDef()

NETWORKS = frozenset({"VISA", "MASTERCARD", "DISCOVER", "PULSE"})
# Response codes: 0000, 1016 and 1806 are from the processor's published list; the others
# are the simulator's own choices for reasons that list does not pin to a code.
RESPONSE_CODES = {
    "INSUFFICIENT_FUNDS": ("1016", "Not sufficient funds"),
    "CARD_NOT_ACTIVE": ("1806", "Card not active"),
    "CARDHOLDER_NOT_ACTIVE": ("1807", "Cardholder not active"),
    "TRANSACTION_NOT_PERMITTED": ("1813", "Transaction not permitted"),
    "AMOUNT_LIMIT_EXCEEDED": ("1814", "Velocity amount limit exceeded"),
    "TRANSACTION_COUNT_LIMIT_EXCEEDED": ("1815", "Velocity usage limit exceeded"),
}
_HOLDING_TYPES = frozenset({"authorization", "authorization.incremental"})
_DECIDED_TYPES = _HOLDING_TYPES | {"pindebit"}
GATEWAY_DECLINE = ("1880", "Declined by the JIT funding gateway")
GATEWAY_FAILED = ("1881", "JIT funding gateway timed out or failed")


@dataclass(slots=True)
class Swipe:
    """One simulation request, resolved against the simulator's resources."""

    card: Resource
    holder_field: str
    holder_token: str
    acting_user_token: str | None
    currency_code: str
    card_acceptor: dict[str, Any]
    network: str
    is_preauthorization: bool
    gateway: Resource | None
    refunds_destination: str
    preceding: Resource | None = None


def _card_acceptor(body: field.Body, inherited: dict[str, Any] | None) -> dict[str, Any]:
    given = field.nested(body, "card_acceptor")
    if not given and inherited is not None:
        return dict(inherited)
    if "country" in given and "country_code" not in given:
        # Older sandbox samples name the field "country"; real traffic says "country_code".
        given["country_code"] = given.pop("country")
    acceptor = {
        "mid": field.required_text(given, "mid", max_length=36),
        "mcc": field.mcc(given.get("mcc", "5999"), "card_acceptor.mcc"),
        "name": field.text(given, "name") or "Simulated merchant",
        "city": field.text(given, "city") or "Oakland",
        "state": field.text(given, "state") or "CA",
        "country_code": field.text(given, "country_code", max_length=3) or "USA",
    }
    postal_code = field.text(given, "postal_code")
    if postal_code is not None:
        acceptor["postal_code"] = postal_code
    return acceptor


def _holder(state: SimulatorState, card: Resource) -> tuple[str, str, str | None]:
    """The account holder whose money the card spends, and the user who swiped."""
    if "business_token" in card:
        return "business_token", card["business_token"], None
    user = state.users[card["user_token"]]
    if user.get("uses_parent_account") and "parent_token" in user:
        parent = user["parent_token"]
        kind = "business_token" if parent in state.businesses else "user_token"
        return kind, parent, user["token"]
    return "user_token", user["token"], user["token"]


def _swipe(state: SimulatorState, body: dict[str, Any], needs_preceding: bool) -> Swipe:
    preceding_token = field.optional_reference(
        body, "preceding_related_transaction_token", state.transactions
    )
    preceding = None if preceding_token is None else state.transactions[preceding_token]
    if needs_preceding and preceding is None:
        raise invalid("preceding_related_transaction_token is required")
    if preceding is not None and "card_token" in preceding:
        card = state.cards[preceding["card_token"]]
    else:
        card = state.cards[field.reference(body, "card_token", state.cards)]
    product = state.card_products[card["card_product_token"]]
    gateway = gateway_funding(product)
    holder_field, holder_token, acting_user_token = _holder(state, card)
    inherited = preceding or {}
    return Swipe(
        card=card,
        holder_field=holder_field,
        holder_token=holder_token,
        acting_user_token=acting_user_token,
        currency_code=field.currency(body, default=inherited.get("currency_code", "USD")),
        card_acceptor=_card_acceptor(body, inherited.get("card_acceptor")),
        network=field.choice(body, "network", NETWORKS, inherited.get("network", "VISA")),
        is_preauthorization=field.flag(body, "is_preauthorization", False),
        gateway=gateway,
        refunds_destination=(gateway or {}).get("refunds_destination", "GPA"),
        preceding=preceding,
    )


def _new_transaction(state: SimulatorState, swipe: Swipe, kind: str, amount: Decimal) -> Resource:
    now = state.now_text()
    transaction: Resource = {
        "token": state.tokens.token(),
        "type": kind,
        "state": "PENDING" if kind in _DECIDED_TYPES else "COMPLETION",
        "amount": amount,
        "request_amount": amount,
        "currency_code": swipe.currency_code,
        swipe.holder_field: swipe.holder_token,
        "card_token": swipe.card["token"],
        "card_product_token": swipe.card["card_product_token"],
        "network": swipe.network,
        "card_acceptor": swipe.card_acceptor,
        "pos": {
            "card_presence": False,
            "pan_entry_mode": "MANUAL",
            "partial_approval_capable": False,
        },
        "transaction_metadata": {"payment_channel": "ECOMMERCE", "is_recurring": False},
        "is_preauthorization": swipe.is_preauthorization,
        "card": {"last_four": swipe.card["last_four"], "metadata": swipe.card["metadata"]},
        "created_time": now,
        "user_transaction_time": now,
    }
    if swipe.acting_user_token is not None:
        transaction["acting_user_token"] = swipe.acting_user_token
    if swipe.gateway is not None:
        transaction["subnetwork"] = "GATEWAY_JIT"
    if swipe.preceding is not None:
        transaction["preceding_related_transaction_token"] = swipe.preceding["token"]
    return transaction


def _attach_jit(
    state: SimulatorState,
    swipe: Swipe,
    transaction: Resource,
    method: str,
    amount: Decimal,
    chain: tuple[str | None, list[str]] = (None, []),
) -> dict[str, Any]:
    """Put the JIT funding request at `gpa_order.jit_funding` of the transaction."""
    assert swipe.gateway is not None, "only JIT-funded card products send JIT messages"
    jit: dict[str, Any] = {"token": state.tokens.token(), "method": method, "amount": amount}
    if swipe.holder_field == "business_token":
        jit["business_token"] = swipe.holder_token
    else:
        jit["user_token"] = swipe.holder_token
    if swipe.acting_user_token is not None:
        jit["acting_user_token"] = swipe.acting_user_token
    original_token, increment_tokens = chain
    if original_token is not None:
        jit["original_jit_funding_token"] = original_token
    if increment_tokens:
        jit["incremental_authorization_jit_funding_tokens"] = list(increment_tokens)
    source = state.gateway_sources[swipe.gateway["funding_source_token"]]
    transaction["gpa_order"] = {
        "token": state.tokens.token(),
        "amount": amount,
        "state": "PENDING",
        "currency_code": swipe.currency_code,
        swipe.holder_field: swipe.holder_token,
        "funding_source_token": source["token"],
        "transaction_token": transaction["token"],
        "jit_funding": jit,
        "funding": {
            "amount": amount,
            "source": {"type": "programgateway", "token": source["token"], "name": source["name"]},
        },
        "created_time": transaction["created_time"],
    }
    return jit


async def _ask_gateway(state: SimulatorState, swipe: Swipe, transaction: Resource) -> GatewayAnswer:
    assert swipe.gateway is not None
    source = state.gateway_sources[swipe.gateway["funding_source_token"]]
    reply = await send_jit(state, source, transaction)
    order = transaction["gpa_order"]
    order["funding"]["gateway_log"] = reply.log(order["token"])
    return reply


def _settle(
    state: SimulatorState, transaction: Resource, account: Account, impacted: Decimal
) -> Resource:
    """Mark a transaction completed or approved and show the account after it."""
    if transaction["type"] not in _HOLDING_TYPES:
        transaction["state"] = "COMPLETION"
    transaction["response"] = APPROVED
    transaction["approval_code"] = state.tokens.digits(6)
    transaction["gpa"] = gpa_view(account, impacted)
    if "gpa_order" in transaction:
        transaction["gpa_order"]["state"] = "COMPLETION"
        transaction["gpa_order"]["response"] = APPROVED
    return transaction


def _decline(
    transaction: Resource, account: Account, reason: str | None, code: tuple[str, str], memo: str
) -> Resource:
    transaction["state"] = "DECLINED"
    transaction["response"] = {"code": code[0], "memo": f"{code[1]}: {memo}"}
    transaction["gpa"] = gpa_view(account, Decimal("0.00"))
    if "gpa_order" in transaction:
        transaction["gpa_order"]["state"] = "DECLINED"
        transaction["gpa_order"]["response"] = transaction["response"]
        if reason is not None:
            transaction["gpa_order"]["jit_funding"]["decline_reason"] = reason
    return transaction


def _record(state: SimulatorState, transaction: Resource) -> None:
    """Keep the transaction and publish its `transaction.<type>` event."""
    state.transactions[transaction["token"]] = transaction
    publish(state, f"transaction.{transaction['type']}", transaction["token"], transaction)


def chain_of(transaction: Resource | None, hold: Hold | None) -> tuple[str | None, list[str]]:
    """The JIT tokens that earlier messages of this authorization's chain carried."""
    if hold is not None:
        return hold.jit_token, list(hold.increment_jit_tokens)
    jit = (transaction or {}).get("gpa_order", {}).get("jit_funding", {})
    return jit.get("original_jit_funding_token", jit.get("token")), []


def _purchase(state: SimulatorState, swipe: Swipe, amount: Decimal) -> Purchase:
    return Purchase(
        user_token=swipe.acting_user_token or swipe.holder_token,
        card_product_token=swipe.card["card_product_token"],
        amount=amount,
        mcc=swipe.card_acceptor["mcc"],
        mid=swipe.card_acceptor["mid"],
        at=state.clock.now(),
    )


def _processor_decline(
    state: SimulatorState, swipe: Swipe, purchase: Purchase, new_uses: int
) -> ControlDecline | None:
    """The processor's own checks, in the order it runs them, before any JIT message."""
    if swipe.card["state"] != "ACTIVE":
        return ControlDecline("CARD_NOT_ACTIVE", f"card is {swipe.card['state']}")
    holders = [state.holder(swipe.holder_token)]
    if swipe.acting_user_token is not None:
        holders.append(state.users[swipe.acting_user_token])
    for holder in holders:
        if holder is not None and holder["status"] != "ACTIVE":
            return ControlDecline("CARDHOLDER_NOT_ACTIVE", f"holder is {holder['status']}")
    return authorization_decline(state, purchase, state.now_text()) or velocity_decline(
        state, purchase, new_uses
    )


async def _decide(
    state: SimulatorState,
    swipe: Swipe,
    transaction: Resource,
    method: str,
    chain: tuple[str | None, list[str]] = (None, []),
    new_uses: int = 1,
) -> bool:
    """Run the processor's checks, then ask the gateway; True when the money is approved."""
    amount = transaction["amount"]
    account = state.account(swipe.holder_token, swipe.currency_code)
    refusal = _processor_decline(state, swipe, _purchase(state, swipe, amount), new_uses)
    if refusal is None and swipe.gateway is None and account.available < amount:
        refusal = ControlDecline("INSUFFICIENT_FUNDS", "GPA available balance is too low")
    if refusal is not None:
        code = RESPONSE_CODES[refusal.decline_reason]
        _decline(transaction, account, refusal.decline_reason, code, refusal.memo)
        return False
    if swipe.gateway is None:
        return True

    _attach_jit(state, swipe, transaction, method, amount, chain)
    reply = await _ask_gateway(state, swipe, transaction)
    if reply.approved:
        return True
    if reply.status == 402:
        reason = reply.decline_reason
        code = RESPONSE_CODES.get(reason or "", GATEWAY_DECLINE)
        _decline(transaction, account, reason, code, f"gateway said {reason}")
    else:
        memo = transaction["gpa_order"]["funding"]["gateway_log"]["message"]
        _decline(transaction, account, None, GATEWAY_FAILED, memo)
    return False


async def _inform(
    state: SimulatorState,
    swipe: Swipe,
    transaction: Resource,
    method: str,
    amount: Decimal,
    chain: tuple[str | None, list[str]],
) -> None:
    """Send an informative JIT message; the money moved already, so the answer is logged only."""
    if swipe.gateway is None:
        return
    _attach_jit(state, swipe, transaction, method, amount, chain)
    await _ask_gateway(state, swipe, transaction)


def _spend(
    state: SimulatorState, swipe: Swipe, amount: Decimal, uses: int, hold: Hold | None
) -> None:
    """Count spending for velocity controls; a change to a hold counts in the hold's window."""
    user_token = swipe.acting_user_token or swipe.holder_token
    at = hold.authorized_at if hold is not None else state.clock.now()
    mcc = hold.mcc if hold is not None else swipe.card_acceptor["mcc"]
    mid = hold.mid if hold is not None else swipe.card_acceptor["mid"]
    state.spending.setdefault(user_token, []).append(SpendEntry(at, amount, uses, mcc, mid))


def _hold_for(state: SimulatorState, swipe: Swipe) -> Hold:
    preceding = swipe.preceding
    assert preceding is not None
    hold = state.holds.get(preceding["token"])
    if hold is None:
        raise ApiError(422, TRANSACTION_STATE, "the preceding authorization has no open hold")
    return hold


def _release(state: SimulatorState, swipe: Swipe, hold: Hold, amount: Decimal) -> Account:
    """Give back part or all of a hold; a JIT-funded hold also hands its funding back."""
    account = state.account(swipe.holder_token, swipe.currency_code)
    account.held -= amount
    if swipe.gateway is not None:
        account.posted -= amount
    hold.amount -= amount
    _spend(state, swipe, -amount, 0, hold)
    if hold.amount == 0:
        del state.holds[hold.authorization_token]
        state.transactions[hold.authorization_token]["state"] = "CLEARED"
    return account


async def authorize(state: SimulatorState, body: dict[str, Any]) -> Resource:
    swipe = _swipe(state, body, needs_preceding=False)
    amount = field.amount(body, "amount", swipe.currency_code, positive=True)
    transaction = _new_transaction(state, swipe, "authorization", amount)
    if not await _decide(state, swipe, transaction, "pgfs.authorization"):
        return transaction

    account = state.account(swipe.holder_token, swipe.currency_code)
    if swipe.gateway is not None:
        account.posted += amount
    account.held += amount
    now = state.clock.now()
    mcc, mid = swipe.card_acceptor["mcc"], swipe.card_acceptor["mid"]
    jit = transaction.get("gpa_order", {}).get("jit_funding", {})
    hold = Hold(
        authorization_token=transaction["token"],
        card_token=swipe.card["token"],
        holder_token=swipe.holder_token,
        jit_token=jit.get("token"),
        amount=amount,
        authorized_at=now,
        expires_at=now + timedelta(days=hold_expiration_days(state, mcc)),
        mcc=mcc,
        mid=mid,
    )
    state.holds[transaction["token"]] = hold
    _spend(state, swipe, amount, 1, None)
    return _settle(state, transaction, account, -amount)


async def increment(state: SimulatorState, body: dict[str, Any]) -> Resource:
    swipe = _swipe(state, body, needs_preceding=True)
    hold = _hold_for(state, swipe)
    amount = field.amount(body, "amount", swipe.currency_code, positive=True)
    transaction = _new_transaction(state, swipe, "authorization.incremental", amount)
    method = "pgfs.authorization.incremental"
    if not await _decide(state, swipe, transaction, method, chain_of(None, hold), new_uses=0):
        return transaction

    account = state.account(swipe.holder_token, swipe.currency_code)
    if swipe.gateway is not None:
        account.posted += amount
        hold.increment_jit_tokens.append(transaction["gpa_order"]["jit_funding"]["token"])
    account.held += amount
    hold.amount += amount
    _spend(state, swipe, amount, 0, hold)
    return _settle(state, transaction, account, -amount)


async def advise(state: SimulatorState, body: dict[str, Any]) -> Resource:
    """An advice lowers an authorization: `amount` is the new total, the JIT amount the cut."""
    swipe = _swipe(state, body, needs_preceding=True)
    hold = _hold_for(state, swipe)
    new_total = field.amount(body, "amount", swipe.currency_code)
    if new_total > hold.amount:
        raise invalid("an advice may only lower the authorization's amount")
    released = hold.amount - new_total
    transaction = _new_transaction(state, swipe, "authorization.advice", new_total)
    chain = chain_of(None, hold)
    await _inform(state, swipe, transaction, "pgfs.authorization.advice", released, chain)
    account = _release(state, swipe, hold, released)
    return _settle(state, transaction, account, released)


async def reverse(
    state: SimulatorState, body: dict[str, Any], kind: str = "authorization.reversal"
) -> Resource:
    """Release all of a hold, or the `amount` given; issuer expiry releases all."""
    swipe = _swipe(state, body, needs_preceding=True)
    hold = _hold_for(state, swipe)
    amount = hold.amount
    if body.get("amount") is not None and kind == "authorization.reversal":
        amount = field.amount(body, "amount", swipe.currency_code, positive=True)
        if amount > hold.amount:
            raise invalid(f"amount is more than the {hold.amount} still held")
    transaction = _new_transaction(state, swipe, kind, amount)
    chain = chain_of(None, hold)
    await _inform(state, swipe, transaction, "pgfs.authorization.reversal", amount, chain)
    account = _release(state, swipe, hold, amount)
    return _settle(state, transaction, account, amount)


async def clear(state: SimulatorState, body: dict[str, Any]) -> Resource:
    """Post the merchant's final amount and release the whole hold, if one is still open."""
    if field.flag(body, "force_post", False):
        return await force_post(state, body)
    swipe = _swipe(state, body, needs_preceding=True)
    preceding = swipe.preceding
    assert preceding is not None
    if preceding["type"] != "authorization" or preceding["state"] == "DECLINED":
        raise ApiError(422, TRANSACTION_STATE, "only an approved authorization can be cleared")
    hold = state.holds.get(preceding["token"])
    amount = field.amount(body, "amount", swipe.currency_code, positive=True)
    transaction = _new_transaction(state, swipe, "authorization.clearing", amount)
    chain = chain_of(preceding, hold)
    await _inform(state, swipe, transaction, "pgfs.authorization.capture", amount, chain)

    held = hold.amount if hold is not None else Decimal(0)
    account = state.account(swipe.holder_token, swipe.currency_code)
    account.held -= held
    account.posted -= held if swipe.gateway is not None else amount
    _spend(state, swipe, amount - held, 0, hold)
    state.holds.pop(preceding["token"], None)
    preceding["state"] = "COMPLETION"
    return _settle(state, transaction, account, -amount)


async def force_post(state: SimulatorState, body: dict[str, Any]) -> Resource:
    """A clearing with no authorization to match (or one that no longer holds money)."""
    swipe = _swipe(state, body, needs_preceding=False)
    amount = field.amount(body, "amount", swipe.currency_code, positive=True)
    transaction = _new_transaction(state, swipe, "authorization.clearing", amount)
    chain = chain_of(swipe.preceding, None) if swipe.preceding is not None else (None, [])
    await _inform(state, swipe, transaction, "pgfs.force_capture", amount, chain)

    account = state.account(swipe.holder_token, swipe.currency_code)
    if swipe.gateway is None:
        account.posted -= amount
    _spend(state, swipe, amount, 1, None)
    return _settle(state, transaction, account, -amount)


async def refund(state: SimulatorState, body: dict[str, Any]) -> Resource:
    """Money back to the cardholder: to the gateway or to the GPA, as the product says."""
    swipe = _swipe(state, body, needs_preceding=False)
    amount = field.amount(body, "amount", swipe.currency_code, positive=True)
    transaction = _new_transaction(state, swipe, "refund", amount)
    account = state.account(swipe.holder_token, swipe.currency_code)
    if swipe.gateway is not None and swipe.refunds_destination == "GATEWAY":
        chain = chain_of(swipe.preceding, None) if swipe.preceding is not None else (None, [])
        await _inform(state, swipe, transaction, "pgfs.refund", amount, chain)
    else:
        account.posted += amount
    return _settle(state, transaction, account, amount)


async def pin_debit(state: SimulatorState, body: dict[str, Any]) -> Resource:
    """A single-message purchase: decided and posted at once, no hold."""
    swipe = _swipe(state, body, needs_preceding=False)
    amount = field.amount(body, "amount", swipe.currency_code, positive=True)
    transaction = _new_transaction(state, swipe, "pindebit", amount)
    if not await _decide(state, swipe, transaction, "pgfs.pindebit"):
        return transaction
    account = state.account(swipe.holder_token, swipe.currency_code)
    if swipe.gateway is None:
        account.posted -= amount
    _spend(state, swipe, amount, 1, None)
    return _settle(state, transaction, account, -amount)


async def expire(state: SimulatorState, body: dict[str, Any]) -> Resource:
    return await reverse(state, body, "authorization.reversal.issuerexpiration")


SIMULATIONS = {
    "authorization": authorize,
    "authorization.incremental": increment,
    "authorization.advice": advise,
    "authorization.reversal": reverse,
    "authorization.clearing": clear,
    "authorization.reversal.issuerexpiration": expire,
    "refund": refund,
    "pindebit": pin_debit,
}


@routes.post(V3 + "/simulations/cardtransactions/{kind}")
async def simulate(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    run = SIMULATIONS.get(kind)
    if run is None:
        raise not_found("simulation", kind)
    state = state_of(request)
    body = await body_of(request)
    # One message at a time per card, as a card's messages reach the processor in order;
    # otherwise a reversal could release a hold that an incremental is still growing.
    async with state.card_lock(_card_token_of(state, body)):
        transaction = await run(state, body)
    _record(state, transaction)
    return created({"transaction": transaction})


def _card_token_of(state: SimulatorState, body: dict[str, Any]) -> str | None:
    preceding = state.transactions.get(str(body.get("preceding_related_transaction_token")))
    if preceding is not None:
        return preceding.get("card_token")
    card_token = body.get("card_token")
    return card_token if isinstance(card_token, str) else None


async def expire_due_holds(state: SimulatorState) -> list[Resource]:
    """Expire every hold whose time has come by the simulator's clock, as the issuer does."""
    now = state.clock.now()
    due = [token for token, hold in state.holds.items() if hold.expires_at <= now]
    expired = []
    for token in due:
        hold = state.holds.get(token)
        if hold is None:
            continue
        body = {"preceding_related_transaction_token": token}
        async with state.card_lock(hold.card_token):
            if token not in state.holds:
                continue
            transaction = await expire(state, body)
        _record(state, transaction)
        expired.append(transaction)
    return expired


@routes.get(V3 + "/transactions")
async def list_transactions(request: web.Request) -> web.Response:
    state = state_of(request)
    filters = {
        name: request.query[name]
        for name in ("user_token", "business_token", "card_token")
        if name in request.query
    }
    items = [
        t for t in state.transactions.values() if all(t.get(k) == v for k, v in filters.items())
    ]
    return page(request, items)


@routes.get(V3 + "/transactions/{token}")
async def get_transaction(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    transaction = state_of(request).transactions.get(token)
    if transaction is None:
        raise not_found("transaction", token)
    return answer(transaction)


@routes.get(V3 + "/transactions/{token}/related")
async def list_related(request: web.Request) -> web.Response:
    state = state_of(request)
    token = request.match_info["token"]
    if token not in state.transactions:
        raise not_found("transaction", token)
    items = [
        t
        for t in state.transactions.values()
        if t.get("preceding_related_transaction_token") == token
    ]
    return page(request, items)
