"""The replay profile and the program it produces: every card of a transaction file becomes
a card with an account holder and a funded account, under the profile's spend controls."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from pyjit.transactions import CardTransaction

GAMBLING_MCCS = ("7995", "7800", "7801", "7802")


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Mix:
    """Relative weights of how an approved authorization ends."""

    full: int = 72
    partial: int = 10
    tip: int = 10
    reversed: int = 8


@dataclass(frozen=True)
class Profile:
    """Opening balance and controls for every replayed account holder (amounts in dollars)."""

    currency: str = "USD"
    opening_balance: str = "2500.00"
    transaction_limit: str = "2000.00"
    daily_limit: str = "1500.00"
    monthly_limit: str = "9000.00"
    blocked_mccs: tuple[str, ...] = GAMBLING_MCCS
    hold_expiration_days: int = 7
    mix: Mix = field(default_factory=Mix)
    # How many later messages go out before an authorization's clearing, so clearings
    # arrive "later" as they do in real traffic.
    clearing_lag: int = 200

    def fingerprint(self) -> bytes:
        return orjson.dumps(self, option=orjson.OPT_SORT_KEYS)


AMOUNTS = ("opening_balance", "transaction_limit", "daily_limit", "monthly_limit")
COUNTS = {"hold_expiration_days": 1, "clearing_lag": 0}


def load_profile(path: Path | None) -> Profile:
    """The built-in profile, overridden by the keys of a JSON profile file; every bad key is
    named at once."""
    if path is None:
        return Profile()
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise ProfileError(f"cannot read profile {path}: {error}") from error
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {path} must be a JSON object")
    known = {item.name for item in fields(Profile)}
    problems = [f"unknown key {key!r}" for key in sorted(set(raw) - known)]
    problems += [problem for key, value in raw.items() for problem in _problems(key, value)]
    if problems:
        raise ProfileError(f"profile {path}: " + "; ".join(problems))
    if "mix" in raw:
        raw["mix"] = Mix(**raw["mix"])
    if "blocked_mccs" in raw:
        raw["blocked_mccs"] = tuple(str(mcc).zfill(4) for mcc in raw["blocked_mccs"])
    return Profile(**raw)


def _problems(key: str, value: Any) -> list[str]:
    if key in AMOUNTS:
        return [] if _is_amount(value) else [f'{key} must be an amount like "25.00"']
    if key in COUNTS:
        low = COUNTS[key]
        good = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return [] if good else [f"{key} must be a whole number of at least {low}"]
    if key == "currency":
        good = isinstance(value, str) and len(value) == 3 and value.isascii() and value.isupper()
        return [] if good else ['currency must be an ISO 4217 code like "USD"']
    if key == "blocked_mccs":
        good = isinstance(value, list) and all(_is_mcc(mcc) for mcc in value)
        return [] if good else ["blocked_mccs must be a list of four-digit MCCs"]
    if key == "mix":
        return _mix_problems(value)
    return []


def _is_amount(value: Any) -> bool:
    """Decimal text (or a whole number) of at most two decimals, zero or more."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return False
    return amount.is_finite() and amount >= 0 and amount == amount.quantize(Decimal("0.01"))


def _is_mcc(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 <= value <= 9999
    return isinstance(value, str) and len(value) == 4 and value.isdigit()


def _mix_problems(value: Any) -> list[str]:
    names = {item.name for item in fields(Mix)}
    if not isinstance(value, dict) or not set(value) <= names:
        return [f"mix must be an object with weights for {', '.join(sorted(names))}"]
    weights = {**{name: getattr(Mix(), name) for name in names}, **value}
    whole = all(isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in weights.values())
    if not whole or sum(weights.values()) == 0:
        return ["mix weights must be whole numbers of at least 0, not all 0"]
    return []


def run_prefix(source: bytes, seed: int, profile: Profile) -> str:
    """A short token prefix fixed by the file, the seed and the profile, so replaying the
    same file twice sends the same tokens and a different file never collides."""
    digest = hashlib.sha256(source + b"|" + str(seed).encode() + b"|" + profile.fingerprint())
    return "r" + digest.hexdigest()[:8]


def holder_token(prefix: str, holder: str) -> str:
    return f"{prefix}-u{holder}"


def card_token(prefix: str, card: str) -> str:
    return f"{prefix}-c{card}"


def build_program(
    prefix: str, transactions: Sequence[CardTransaction], profile: Profile
) -> dict[str, Any]:
    """The program file (docs/program-file.md) for every holder and card in the file."""
    holders = sorted({row.holder for row in transactions})
    cards = sorted({(row.card, row.holder) for row in transactions})
    product = f"{prefix}-product"
    gambling = f"{prefix}-gambling"
    # Only the currency: the program's own token, time zone and limit are its operator's.
    return {
        "program": {"currency_code": profile.currency},
        "cardproducts": [{"token": product, "name": "Replay cards", "config": _jit_enabled()}],
        "mccgroups": [
            {
                "token": gambling,
                "name": "Gambling",
                "mccs": list(profile.blocked_mccs),
                "config": {
                    "authorization_controls": {"hold_expiration_days": profile.hold_expiration_days}
                },
            }
        ],
        "users": [
            {"token": holder_token(prefix, holder), "first_name": "Holder", "last_name": holder}
            for holder in holders
        ],
        "cards": [
            {
                "token": card_token(prefix, card),
                "user_token": holder_token(prefix, holder),
                "card_product_token": product,
                "state": "ACTIVE",
            }
            for card, holder in cards
        ],
        "velocitycontrols": _velocity_controls(prefix, product, profile),
        "authcontrols": [
            {
                "token": f"{prefix}-no-gambling",
                "name": "No gambling",
                "association": {"card_product_token": product},
                "merchant_scope": {"mcc_group": gambling},
                "active": True,
            }
        ],
        "gpaorders": [
            {
                "token": f"{prefix}-fund-{holder}",
                "user_token": holder_token(prefix, holder),
                "amount": profile.opening_balance,
                "currency_code": profile.currency,
                "memo": "opening balance",
            }
            for holder in holders
        ],
    }


def _velocity_controls(prefix: str, product: str, profile: Profile) -> list[dict[str, Any]]:
    """Per-transaction, daily and monthly amount limits for every card of the product."""
    controls = [
        ("txn", "TRANSACTION", profile.transaction_limit),
        ("day", "DAY", profile.daily_limit),
        ("month", "MONTH", profile.monthly_limit),
    ]
    return [
        {
            "token": f"{prefix}-{suffix}",
            "name": f"{window.lower()} spend limit",
            "association": {"card_product_token": product},
            "amount_limit": limit,
            "usage_limit": -1,
            "velocity_window": window,
            "currency_code": profile.currency,
            "include_purchases": True,
            "include_withdrawals": True,
            "approvals_only": True,
            "active": True,
        }
        for suffix, window, limit in controls
    ]


def _jit_enabled() -> dict[str, Any]:
    return {"jit_funding": {"programgateway_funding_source": {"enabled": True}}}


def opening_minor(profile: Profile) -> int:
    return int(Decimal(profile.opening_balance) * 100)
