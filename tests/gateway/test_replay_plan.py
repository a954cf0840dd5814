"""Proves that `pyjit replay` reads both CSV formats of ../shared/data exactly (cents, UTC
times, refunds), plans deterministic tokens from the file and the seed (so a second replay is
a pure replay), gives every card a holder with a funded account under the profile's controls,
and that the demo's synthetic sample needs no data file. Uses small files written here."""

from pathlib import Path

import orjson
import pytest

from pyjit.messages import AUTHORIZATION, CLEARING, REFUND, REVERSAL, plan
from pyjit.profile import GAMBLING_MCCS, Profile, build_program, load_profile, run_prefix
from pyjit.transactions import (
    TransactionFileError,
    cents,
    read_transactions,
    synthetic_transactions,
)

MULTICARD_HEADER = (
    "id,date,client_id,card_id,amount,use_chip,merchant_id,merchant_city,merchant_state"
)
MULTICARD = (
    MULTICARD_HEADER
    + """,zip,mcc
2,40339.5,1662,4541,170.22,Swipe Transaction,11849,Belleville,IL,62221,5912
1,40339.25,1662,4542,-28.97,Chip Transaction,23481,San Jose,CA,95135.0,742
"""
)

SINGLE_HEADER = "User,Card,Year,Month,Day,Time,Amount,Use Chip,Merchant Name,Merchant City"
SINGLE = (
    SINGLE_HEADER
    + """,Merchant State,Zip,MCC,Errors?,Is Fraud?
0,0,2002,9,1,06:21,$134.09,Swipe Transaction,3527213246127876953,La Verne,CA,91750.0,5300,,No
0,1,2002,9,1,06:42,$-38.48,Online Transaction,-727612092139916043,ONLINE,,,5411,,No
"""
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_multicard_format(tmp_path: Path) -> None:
    rows = read_transactions(write(tmp_path, "m.csv", MULTICARD))
    assert [row.row for row in rows] == [2, 1]  # time order: the refund happened first
    refund, purchase = rows
    assert refund.amount_minor == -2897 and refund.mcc == "0742" and refund.postal_code == "95135"
    assert purchase.amount_minor == 17022
    # Excel serial 40339.5 is 2010-06-10T12:00:00Z.
    assert purchase.at_ms == 1_276_171_200_000


def test_single_customer_format(tmp_path: Path) -> None:
    rows = read_transactions(write(tmp_path, "s.csv", SINGLE))
    assert [row.amount_minor for row in rows] == [13409, -3848]
    assert rows[0].card == "0x0" and rows[1].card == "0x1"
    assert rows[1].entry_mode == "ECOMMERCE"


def test_unknown_format_and_bad_amounts(tmp_path: Path) -> None:
    with pytest.raises(TransactionFileError, match="unknown CSV format"):
        read_transactions(write(tmp_path, "x.csv", "a,b\n1,2\n"))
    with pytest.raises(TransactionFileError, match="fractions of a cent"):
        cents("1.005", 3)


def test_plan_is_deterministic_and_complete(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", MULTICARD)
    rows = read_transactions(path)
    profile = Profile()
    prefix = run_prefix(path.read_bytes(), 1, profile)
    first = plan(prefix, rows, profile, 1)
    again = plan(run_prefix(path.read_bytes(), 1, profile), rows, profile, 1)
    assert [(m.token, m.body) for m in first] == [(m.token, m.body) for m in again]
    assert run_prefix(path.read_bytes(), 2, profile) != prefix

    refund, auth = first
    assert refund.method == REFUND and refund.amount_minor == 2897 and refund.follow_up is None
    assert auth.method == AUTHORIZATION and auth.follow_up is not None
    assert auth.follow_up.method in (CLEARING, REVERSAL)
    assert auth.follow_up.original == auth.token
    body = orjson.loads(auth.body)
    assert body["gpa_order"]["jit_funding"]["amount"] == "170.22"
    assert body["card_acceptor"]["mcc"] == "5912"
    assert all(len(m.token) <= 36 for m in first)


def test_program_funds_every_holder_and_blocks_gambling(tmp_path: Path) -> None:
    rows = read_transactions(write(tmp_path, "m.csv", MULTICARD))
    program = build_program("rabc", rows, Profile())
    assert [user["token"] for user in program["users"]] == ["rabc-u1662"]
    assert sorted(card["token"] for card in program["cards"]) == ["rabc-c4541", "rabc-c4542"]
    assert program["gpaorders"][0]["amount"] == "2500.00"
    assert program["mccgroups"][0]["mccs"] == list(GAMBLING_MCCS)
    windows = sorted(c["velocity_window"] for c in program["velocitycontrols"])
    assert windows == ["DAY", "MONTH", "TRANSACTION"]


def test_profile_file_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.json",
        '{"opening_balance": "50.00", "mix": {"full": 1, "partial": 0, "tip": 0, "reversed": 0}}',
    )
    profile = load_profile(path)
    assert profile.opening_balance == "50.00" and profile.mix.partial == 0
    with pytest.raises(ValueError, match="unknown key 'opening'"):
        load_profile(write(tmp_path, "bad.json", '{"opening": 1}'))


def test_every_bad_profile_value_is_named_at_once(tmp_path: Path) -> None:
    bad = {
        "mix": {"full": 0, "partial": 0, "tip": 0, "reversed": 0},
        "opening_balance": "abc",
        "daily_limit": None,
        "monthly_limit": "-5",
        "transaction_limit": "1.001",
        "clearing_lag": -1,
        "hold_expiration_days": "x",
        "currency": "usd",
        "blocked_mccs": ["79x5"],
    }

    with pytest.raises(ValueError) as raised:
        load_profile(write(tmp_path, "bad.json", orjson.dumps(bad).decode()))

    message = str(raised.value)
    for key in bad:
        assert f"{key} must" in message or f"{key} weights must" in message, (key, message)


def test_synthetic_sample_needs_no_file() -> None:
    rows = synthetic_transactions(300, seed=7)
    assert len(rows) == 300
    assert rows == synthetic_transactions(300, seed=7)
    assert any(row.mcc == "7995" for row in rows)
    assert any(row.amount_minor < 0 for row in rows)
