"""Program documents (docs/program-file.md) for what the portal changes in the engine.

Tokens are derived from the portal's own tokens, so setting the same control twice
upserts one engine object instead of stacking two.
"""

from typing import Any

from portal.categories import mcc_groups_document
from portal.money import decimal_text

Document = dict[str, Any]

WINDOWS = {"per_transaction": "TRANSACTION", "daily": "DAY", "monthly": "MONTH"}


def card_product_token(business_token: str) -> str:
    return f"{business_token}-cards"


def company(business_token: str, name: str, funding_minor: int, currency: str) -> Document:
    """A company: its business (and account), its card product and the MCC groups its
    controls may name."""
    document: Document = {
        "businesses": [{"token": business_token, "business_name_dba": name}],
        "mccgroups": mcc_groups_document(),
        "cardproducts": [
            {
                "token": card_product_token(business_token),
                "name": f"{name} cards"[:40],
                "config": {"jit_funding": {"programgateway_funding_source": {"enabled": True}}},
            }
        ],
    }
    if funding_minor > 0:
        document["gpaorders"] = [
            {
                "token": f"{business_token}-opening",
                "business_token": business_token,
                "amount": decimal_text(funding_minor, currency),
                "currency_code": currency,
            }
        ]
    return document


def holder(
    holder_token: str, first_name: str, last_name: str, parent_token: str | None
) -> Document:
    """A user: an employee draws on the company's account, a personal holder has their own."""
    user: dict[str, Any] = {"token": holder_token, "first_name": first_name, "last_name": last_name}
    if parent_token is not None:
        user["parent_token"] = parent_token
        user["uses_parent_account"] = True
    return {"users": [user]}


def card(
    card_token: str, holder_token: str, product_token: str, last_four: str, expiration: str
) -> Document:
    return {
        "cards": [
            {
                "token": card_token,
                "user_token": holder_token,
                "card_product_token": product_token,
                "last_four": last_four,
                "expiration": expiration,
            }
        ],
    }


def personal_product(product_token: str) -> Document:
    return {
        "mccgroups": mcc_groups_document(),
        "cardproducts": [
            {
                "token": product_token,
                "name": "Personal cards",
                "config": {"jit_funding": {"programgateway_funding_source": {"enabled": True}}},
            }
        ],
    }


def card_state(transition_token: str, card_token: str, state: str) -> Document:
    return {
        "cardtransitions": [
            {
                "token": transition_token,
                "card_token": card_token,
                "state": state,
                "reason_code": "00",
                "channel": "API",
            }
        ]
    }


def association(card_token: str | None, holder_token: str | None) -> dict[str, str]:
    assert (card_token is None) != (holder_token is None), "one association"
    return {"card_token": card_token} if card_token else {"user_token": str(holder_token)}


def amount_limit(
    token: str,
    scope: dict[str, str],
    kind: str,
    amount_minor: int,
    currency: str,
    active: bool,
) -> Document:
    return {
        "velocitycontrols": [
            {
                "token": token,
                "name": f"portal {kind} limit"[:40],
                "association": scope,
                "usage_limit": -1,
                "amount_limit": decimal_text(amount_minor, currency),
                "velocity_window": WINDOWS[kind],
                "include_purchases": True,
                "include_withdrawals": True,
                "include_transfers": True,
                "include_cashback": True,
                "currency_code": currency,
                "active": active,
            }
        ]
    }


def block(token: str, scope: dict[str, str], kind: str, value: str, active: bool) -> Document:
    """A BLOCK auth control on an MCC group (`mcc_group`) or a country (`country`)."""
    return {
        "authcontrols": [
            {
                "token": token,
                "name": f"portal block {value}"[:40],
                "association": scope,
                "merchant_scope": {kind: value},
                "active": active,
            }
        ]
    }


def funding(order_token: str, holder_token: str, amount_minor: int, currency: str) -> Document:
    return {
        "gpaorders": [
            {
                "token": order_token,
                "user_token": holder_token,
                "amount": decimal_text(amount_minor, currency),
                "currency_code": currency,
                "memo": "portal top-up",
            }
        ]
    }


def merge(*parts: Document) -> Document:
    """One document with every part's objects, applied together or not at all."""
    merged: Document = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            else:
                merged[key] = value
    return merged
