"""The engine's read-only views: cards, holders, open holds, controls, and what a holder has
left under each velocity control."""

import json

from pyjit._engine import Engine

from .conftest import NOW_MS, Body, program_file

DAY_LIMIT = {
    "token": "daily",
    "name": "Daily 50",
    "association": {"user_token": "alice"},
    "amount_limit": "50.00",
    "usage_limit": 3,
    "velocity_window": "DAY",
}
MONTH_LIMIT = {
    "token": "monthly",
    "name": "Program month",
    "amount_limit": "500.00",
    "velocity_window": "MONTH",
}


def test_card_and_holder_views_name_their_state(engine: Engine) -> None:
    card = json.loads(engine.card("card_a") or b"null")
    holder = json.loads(engine.holder("alice") or b"null")

    assert card["user_token"] == "alice" and card["state"] == "ACTIVE"
    assert holder["parent_token"] == "biz" and holder["uses_parent_account"] is True
    assert engine.card("nope") is None and engine.holder("nope") is None


def test_holds_lists_only_open_holds_of_the_account(engine: Engine, body: Body) -> None:
    engine.decide(body("a1", amount="12.50"), NOW_MS)
    engine.decide(body("a2", amount="7.00", card="card_b"), NOW_MS)
    reversal = body("r2", "pgfs.authorization.reversal", "7.00", card="card_b", original="a2")
    engine.decide(reversal, NOW_MS)
    account = json.loads(engine.card("card_a") or b"{}")["user_token"]
    holder = json.loads(engine.holder(account) or b"{}")

    holds = json.loads(engine.holds(holder["account_token"]))

    assert [(hold["token"], hold["amount_minor"]) for hold in holds] == [("a1", 1250)]
    assert json.loads(engine.holds("no-such-account")) == []


def test_controls_lists_what_was_loaded(engine: Engine) -> None:
    engine.load(program_file(velocitycontrols=[DAY_LIMIT, MONTH_LIMIT]), NOW_MS)

    controls = json.loads(engine.controls())

    assert [control["token"] for control in controls["velocitycontrols"]] == [
        "daily",
        "monthly",
    ]
    assert controls["authcontrols"] == [] and controls["mccgroups"] == []


def test_velocity_available_counts_down_with_approvals(engine: Engine, body: Body) -> None:
    engine.load(program_file(velocitycontrols=[DAY_LIMIT, MONTH_LIMIT]), NOW_MS)
    engine.decide(body("a1", amount="20.00"), NOW_MS)
    engine.decide(body("a2", amount="45.00"), NOW_MS)

    left = {row["token"]: row for row in json.loads(engine.velocity_available("alice", NOW_MS))}

    # 2024-03-13T12:00Z: the day resets in 12 hours (one part day), the month on April 1st.
    assert left["daily"]["amount"] == "30.00" and left["daily"]["uses"] == 2
    assert left["daily"]["days_remaining"] == 1
    assert left["monthly"]["amount"] == "480.00" and left["monthly"]["uses"] is None
    assert left["monthly"]["days_remaining"] == 19


def test_velocity_available_skips_other_holders_controls(engine: Engine) -> None:
    engine.load(program_file(velocitycontrols=[DAY_LIMIT]), NOW_MS)

    assert json.loads(engine.velocity_available("bob", NOW_MS)) == []
