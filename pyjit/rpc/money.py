"""Amounts between the contracts' integer minor units and the processor's decimal text."""

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that differ from 2 (the published table), for the
# currencies a card program may run in; every other alphabetic code uses 2.
EXPONENTS = {
    "BHD": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


class AmountError(ValueError):
    """Text that is not an exact amount in the currency."""


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency, 2)


def is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def to_text(amount_minor: int, currency: str) -> str:
    """Decimal text in major units: (1234, "USD") is "12.34", (5, "JPY") is "5"."""
    places = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(places + 1, "0")
    if places == 0:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def to_minor(text: str, currency: str) -> int:
    """Minor units of decimal text; more decimals than the currency has is an error."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite():
        raise AmountError(f"not a decimal amount: {text!r}")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{text!r} has more decimals than {currency} allows")
    return int(scaled)
