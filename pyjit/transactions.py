"""Card transactions to replay: the two public CSV formats, and a synthetic sample.

Both formats become `CardTransaction` rows with integer minor units (cents) and a UTC time.
Rows are returned in time order (stable on file order), because spend-control windows depend
on the order in which a card's transactions happen.
"""

import csv
import datetime as dt
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

# Excel's serial day 25569 is 1970-01-01.
EXCEL_UNIX_EPOCH_DAYS = 25569
MS_PER_DAY = 86_400_000

MULTICARD_COLUMNS = {"id", "date", "client_id", "card_id", "amount", "mcc"}
SINGLE_CUSTOMER_COLUMNS = {"User", "Card", "Year", "Month", "Day", "Time", "Amount", "MCC"}


class TransactionFileError(ValueError):
    """A file that is not in one of the supported formats, or a row that cannot be read."""


@dataclass(frozen=True, slots=True)
class CardTransaction:
    """One row: who spent how much where and when. Negative amounts are refunds."""

    row: int
    holder: str
    card: str
    amount_minor: int
    at_ms: int
    mcc: str
    merchant_id: str
    merchant_city: str
    merchant_state: str
    postal_code: str
    entry_mode: str


def read_transactions(path: Path) -> list[CardTransaction]:
    """Read either CSV format, detected from the header."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if columns >= MULTICARD_COLUMNS:
            rows = list(_multicard(reader))
        elif columns >= SINGLE_CUSTOMER_COLUMNS:
            rows = list(_single_customer(reader))
        else:
            raise TransactionFileError(
                f"{path}: unknown CSV format; expected the columns of "
                "card_transactions_multicard_sample.csv or card_transactions_sample.csv"
            )
    return sorted(rows, key=lambda row: (row.at_ms, row.row))


def cents(text: str, row: int) -> int:
    """`"$134.09"`, `"-77.00"` -> minor units; refuses fractions of a cent."""
    cleaned = text.strip().replace("$", "").replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation as error:
        raise TransactionFileError(f"row {row}: amount {text!r} is not a number") from error
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise TransactionFileError(f"row {row}: amount {text!r} has fractions of a cent")
    return int(minor)


def _entry_mode(use_chip: str) -> str:
    if "Chip" in use_chip:
        return "CHIP"
    if "Online" in use_chip:
        return "ECOMMERCE"
    return "MAG_STRIPE"


def _multicard(reader: Iterable[dict[str, str]]) -> Iterator[CardTransaction]:
    for index, record in enumerate(reader, start=1):
        try:
            days = Decimal(record["date"])
        except InvalidOperation as error:
            raise TransactionFileError(f"row {index}: date {record['date']!r}") from error
        at_ms = int((days - EXCEL_UNIX_EPOCH_DAYS) * MS_PER_DAY)
        yield CardTransaction(
            row=index,
            holder=record["client_id"],
            card=record["card_id"],
            amount_minor=cents(record["amount"], index),
            at_ms=at_ms,
            mcc=record["mcc"].strip().zfill(4),
            merchant_id=record.get("merchant_id", ""),
            merchant_city=record.get("merchant_city", ""),
            merchant_state=record.get("merchant_state", ""),
            postal_code=record.get("zip", "").split(".")[0],
            entry_mode=_entry_mode(record.get("use_chip", "")),
        )


def _single_customer(reader: Iterable[dict[str, str]]) -> Iterator[CardTransaction]:
    for index, record in enumerate(reader, start=1):
        try:
            hour, minute = (int(part) for part in record["Time"].split(":"))
            when = dt.datetime(
                int(record["Year"]),
                int(record["Month"]),
                int(record["Day"]),
                hour,
                minute,
                tzinfo=dt.UTC,
            )
        except ValueError as error:
            raise TransactionFileError(f"row {index}: date or time: {error}") from error
        # A card number is the user's n-th card: unique only together with the user.
        yield CardTransaction(
            row=index,
            holder=record["User"],
            card=f"{record['User']}x{record['Card']}",
            amount_minor=cents(record["Amount"], index),
            at_ms=int(when.timestamp() * 1000),
            mcc=record["MCC"].strip().zfill(4),
            merchant_id=record.get("Merchant Name", "").lstrip("-")[:20],
            merchant_city=record.get("Merchant City", ""),
            merchant_state=record.get("Merchant State", ""),
            postal_code=record.get("Zip", "").split(".")[0],
            entry_mode=_entry_mode(record.get("Use Chip", "")),
        )


# Common merchant categories (ISO 18245) with a typical ticket range in dollars and a weight
# for how often they appear; gambling is present so the block on it shows in the report.
SAMPLE_MERCHANTS: tuple[tuple[str, str, int, int, int], ...] = (
    ("5411", "Grocery Stores, Supermarkets", 8, 180, 22),
    ("5812", "Eating Places, Restaurants", 12, 120, 14),
    ("5814", "Fast Food Restaurants", 4, 30, 14),
    ("5541", "Service Stations", 20, 90, 10),
    ("5912", "Drug Stores, Pharmacies", 5, 80, 8),
    ("4121", "Taxicabs, Limousines", 8, 70, 6),
    ("5311", "Department Stores", 15, 300, 6),
    ("5732", "Electronics Stores", 40, 1500, 3),
    ("4814", "Telecommunication Services", 20, 120, 4),
    ("5999", "Miscellaneous Retail", 5, 200, 6),
    ("7011", "Hotels, Motels, Resorts", 90, 900, 3),
    ("4511", "Airlines", 120, 1400, 2),
    ("7995", "Betting, Casino Gaming", 10, 500, 2),
)
SAMPLE_CITIES = (("Chicago", "IL", "60601"), ("Austin", "TX", "73301"), ("Denver", "CO", "80202"))
SAMPLE_START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def synthetic_transactions(count: int, seed: int, cards: int = 24) -> list[CardTransaction]:
    """`count` made-up transactions over `cards` cards and 30 days, for the demo."""
    rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not a secret
    weights = [merchant[4] for merchant in SAMPLE_MERCHANTS]
    rows = []
    for index in range(1, count + 1):
        mcc, _name, low, high, _weight = rng.choices(SAMPLE_MERCHANTS, weights)[0]
        card = rng.randrange(cards)
        amount_minor = rng.randint(low * 100, high * 100)
        if rng.random() < 0.04:
            amount_minor = -amount_minor
        city, state, postal_code = SAMPLE_CITIES[card % len(SAMPLE_CITIES)]
        rows.append(
            CardTransaction(
                row=index,
                holder=str(card // 2),
                card=str(card),
                amount_minor=amount_minor,
                at_ms=SAMPLE_START_MS + rng.randrange(30 * MS_PER_DAY),
                mcc=mcc,
                merchant_id=f"m{mcc}{rng.randrange(40):02d}",
                merchant_city=city,
                merchant_state=state,
                postal_code=postal_code,
                entry_mode=rng.choice(("CHIP", "CHIP", "ECOMMERCE", "MAG_STRIPE")),
            )
        )
    return sorted(rows, key=lambda row: (row.at_ms, row.row))
