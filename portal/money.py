"""Amounts at the portal's edges: decimal text in forms and pages, integer minor units
inside. Never a float."""

from decimal import Decimal, InvalidOperation

# ISO 4217 exponents of the currencies a program may use; others are refused, not guessed.
EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "JPY": 0, "CHF": 2}
AMOUNT_MINOR_MAX = 10**13


class AmountError(ValueError):
    pass


def parse_amount(text: str, currency: str) -> int:
    """Minor units of a positive decimal amount typed by a person ("25", "25.50", "1,000")."""
    exponent = EXPONENTS.get(currency)
    if exponent is None:
        raise AmountError(f"unsupported currency {currency}")
    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError(f"{text!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise AmountError("Enter an amount above zero.")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{currency} amounts have at most {exponent} decimal places.")
    minor = int(scaled)
    if minor > AMOUNT_MINOR_MAX:
        raise AmountError("That amount is too large.")
    return minor


def decimal_text(minor: int, currency: str) -> str:
    """Exact decimal text of `minor` units, as the program file and the pages show it."""
    exponent = EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    if exponent == 0:
        return f"{sign}{abs(minor)}"
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def display(minor: int | None, currency: str | None) -> str:
    """An amount for people: thousands separated, with its currency code."""
    if minor is None:
        return "—"
    code = currency or "USD"
    text = decimal_text(minor, code)
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    grouped = f"{int(whole):,}"
    return f"{sign}{grouped}{'.' + fraction if fraction else ''} {code}"
