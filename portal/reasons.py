"""Transaction status and decline reasons in plain words, for cardholders."""

DECLINE_WORDS = {
    "INSUFFICIENT_FUNDS": "Not enough money available",
    "AMOUNT_LIMIT_EXCEEDED": "Over a spending limit on this card",
    "TRANSACTION_COUNT_LIMIT_EXCEEDED": "Too many purchases in the limit's period",
    "TRANSACTION_NOT_PERMITTED": "This kind of purchase is blocked on this card",
    "CARD_NOT_ACTIVE": "The card is frozen or not active",
    "CARDHOLDER_NOT_ACTIVE": "The cardholder's account is not active",
    "CLOSED_ACCOUNT": "The account is closed",
    "INVALID_CARD": "The card is not known",
    "EXPIRED_CARD": "The card has expired",
    "INVALID_AMOUNT": "The amount was not valid",
    "INVALID_MERCHANT": "The merchant is blocked on this card",
    "SUSPECTED_FRAUD": "Declined as possible fraud",
    "DUPLICATE_TRANSACTION": "A duplicate of an earlier purchase",
}

CLEARING_METHODS = frozenset(
    {"pgfs.authorization.capture", "pgfs.force_capture", "pgfs.auth_plus_capture", "pgfs.pindebit"}
)
REVERSAL_METHODS = frozenset({"pgfs.authorization.reversal", "pgfs.refund.authorization.reversal"})


def decline_words(reason: str | None) -> str:
    if not reason:
        return "Declined"
    return DECLINE_WORDS.get(reason, reason.replace("_", " ").capitalize())


def status_of(method: str | None, approved: bool, voided: bool, hold_state: str | None) -> str:
    """pending, cleared, reversed or declined, as the transaction list shows it. An
    authorization's own row follows its hold: cleared, reversed or expired once released."""
    if voided or not approved:
        return "declined"
    if method in REVERSAL_METHODS or hold_state in ("REVERSED", "EXPIRED"):
        return "reversed"
    if method in CLEARING_METHODS or hold_state == "CLEARED":
        return "cleared"
    return "pending"
