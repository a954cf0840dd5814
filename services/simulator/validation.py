"""Field rules for request bodies, shared by every resource of the simulator.

Each helper reads one field, applies the processor's rule and raises a 400 `ApiError`
naming the field when it is broken, so handlers read as a list of fields and their rules.
"""

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from services.simulator.errors import (
    DUPLICATE_TOKEN,
    INVALID_AMOUNT,
    MISSING_FIELD,
    UNKNOWN_REFERENCE,
    ApiError,
    invalid,
)

Body = Mapping[str, Any]

# Minor-unit exponents from ISO 4217 for the currencies the simulator accepts.
CURRENCY_EXPONENTS = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "JPY": 0,
    "KWD": 3,
    "BHD": 3,
}

TOKEN_MAX_LENGTH = 36
# Far above any card amount, and small enough that quantizing never overflows the context.
AMOUNT_MAX = Decimal("1000000000000")
_PASSWORD_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")
_MCC = re.compile(r"^[0-9]{4}$")


def text(body: Body, field: str, *, max_length: int = 255) -> str | None:
    """An optional string field, at most `max_length` characters."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string")
    if len(value) > max_length:
        raise invalid(f"{field} must be at most {max_length} characters")
    return value


def required_text(body: Body, field: str, *, max_length: int = 255) -> str:
    """A string field that must be present and not empty."""
    value = text(body, field, max_length=max_length)
    if not value:
        raise invalid(f"{field} is required", MISSING_FIELD)
    return value


def choice(body: Body, field: str, allowed: Collection[str], default: str | None = None) -> str:
    """A field whose value is one of `allowed`; required unless `default` is given."""
    value = text(body, field)
    if value is None:
        if default is None:
            raise invalid(f"{field} is required", MISSING_FIELD)
        return default
    if value not in allowed:
        raise invalid(f"{field} must be one of {', '.join(sorted(allowed))}")
    return value


def flag(body: Body, field: str, default: bool) -> bool:
    """An optional boolean field."""
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise invalid(f"{field} must be true or false")
    return value


def integer(body: Body, field: str, *, default: int, minimum: int, maximum: int) -> int:
    """An optional whole-number field within [minimum, maximum]."""
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{field} must be a whole number")
    if not minimum <= value <= maximum:
        raise invalid(f"{field} must be between {minimum} and {maximum}")
    return value


def nested(body: Body, field: str) -> dict[str, Any]:
    """An optional object field; absent reads as empty."""
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(f"{field} must be an object")
    return dict(value)


def currency(body: Body, field: str = "currency_code", default: str | None = None) -> str:
    """An ISO 4217 alphabetic code the simulator knows."""
    return choice(body, field, CURRENCY_EXPONENTS.keys(), default)


def amount(body: Body, field: str, currency_code: str, *, positive: bool = False) -> Decimal:
    """A required amount in major units, exact, with no more decimals than the currency has.

    JSON numbers and numeric strings are both accepted, as the processor's samples send
    both; a float never reaches here because the codec decodes numbers as `Decimal`.
    """
    value = body.get(field)
    if value is None:
        raise invalid(f"{field} is required", MISSING_FIELD)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise invalid(f"{field} must be a number", INVALID_AMOUNT)
    try:
        parsed = Decimal(value)
    except InvalidOperation as error:
        raise invalid(f"{field} must be a number", INVALID_AMOUNT) from error
    if not parsed.is_finite() or parsed < 0 or (positive and parsed == 0):
        sign = "positive" if positive else "non-negative"
        raise invalid(f"{field} must be a {sign} number", INVALID_AMOUNT)
    if parsed > AMOUNT_MAX:
        raise invalid(f"{field} must be at most {AMOUNT_MAX}", INVALID_AMOUNT)
    exponent = CURRENCY_EXPONENTS[currency_code]
    exact = parsed.quantize(Decimal(1).scaleb(-exponent))
    if parsed != exact:
        raise invalid(
            f"{field} has more than {exponent} decimals for {currency_code}", INVALID_AMOUNT
        )
    return exact


def password(body: Body, field: str, *, min_length: int = 20, max_length: int = 100) -> str:
    """A secret the processor accepts: long enough, with lower, upper, digit and symbol."""
    value = required_text(body, field, max_length=max_length)
    if len(value) < min_length or not all(re.search(c, value) for c in _PASSWORD_CLASSES):
        raise invalid(
            f"{field} must be {min_length}-{max_length} characters with an upper-case letter, "
            "a lower-case letter, a digit and a symbol"
        )
    return value


def mcc(value: object, field: str = "mcc") -> str:
    """A merchant category code: four digits as text, leading zeros kept."""
    if not isinstance(value, str) or not _MCC.match(value):
        raise invalid(f"{field} must be a 4-digit string")
    return value


def new_token(body: Body, existing: Collection[str], generated: str) -> str:
    """The token for a create: the caller's if given and unused, else `generated`."""
    token = text(body, "token", max_length=TOKEN_MAX_LENGTH)
    if token is None:
        return generated
    if token in existing:
        raise ApiError(409, DUPLICATE_TOKEN, f"token already exists: {token}")
    return token


def reference(body: Body, field: str, existing: Collection[str]) -> str:
    """A required token field that must name an existing resource (400 if it does not)."""
    token = required_text(body, field, max_length=TOKEN_MAX_LENGTH)
    if token not in existing:
        raise invalid(f"{field} does not exist: {token}", UNKNOWN_REFERENCE)
    return token


def optional_reference(body: Body, field: str, existing: Collection[str]) -> str | None:
    """An optional token field that, when given, must name an existing resource."""
    if body.get(field) is None:
        return None
    return reference(body, field, existing)
