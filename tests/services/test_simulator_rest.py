"""The client against the simulator over loopback HTTP: the REST resources and their rules.

Proves: users, businesses, card products with a gateway funding source, cards, card and
user transitions, KYC, spend controls and GPA orders are created with 201 and read back;
the processor's rules hold (TERMINATED is final, KYC at most twice and only from UNVERIFIED
or LIMITED, a decided KYC result from the user's data, 409 on a reused token, 404 on an
unknown one, 401 without the right credentials); every refusal reaches the caller as a
typed error carrying the simulator's `error_code`.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from sim_support import Recorder, Simulator, complete_user, jit_program

from services.marqeta import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    MarqetaClient,
    NotFoundError,
)
from services.simulator.errors import (
    DUPLICATE_TOKEN,
    INVALID_TRANSITION,
    KYC_ATTEMPTS_EXHAUSTED,
    KYC_NOT_ALLOWED,
    MISSING_FIELD,
    UNKNOWN_REFERENCE,
)

StartSimulator = Callable[..., Awaitable[Simulator]]


async def test_users_and_businesses_are_created_read_and_updated(simulator: Simulator) -> None:
    client = simulator.client

    user = await client.create_user({**complete_user(), "token": "user-1"})
    updated = await client.update_user("user-1", {"city": "Berkeley"})
    business = await client.create_business({"business_name_legal": "Acme Corp"})

    assert user["token"] == "user-1" and user["status"] == "ACTIVE"
    assert (await client.get_user("user-1"))["city"] == "Berkeley" == updated["city"]
    assert (await client.get_business(business["token"]))["business_name_legal"] == "Acme Corp"


async def test_a_reused_token_is_409_and_an_unknown_one_404(simulator: Simulator) -> None:
    client = simulator.client
    await client.create_user({"token": "same", "first_name": "A"})

    with pytest.raises(ConflictError) as conflict:
        await client.create_user({"token": "same", "first_name": "B"})
    with pytest.raises(NotFoundError):
        await client.get_user("nobody")

    assert conflict.value.error_code == DUPLICATE_TOKEN


async def test_wrong_credentials_are_401(simulator: Simulator) -> None:
    url = str(simulator.server.make_url("/v3"))
    async with MarqetaClient(url, "test-application", "wrong") as intruder:
        with pytest.raises(AuthenticationError) as raised:
            await intruder.get_user("anyone")

    assert raised.value.status == 401


async def test_validation_errors_name_the_field_and_carry_a_code(simulator: Simulator) -> None:
    client = simulator.client

    with pytest.raises(InvalidRequestError) as missing:
        await client.create_card_product({"name": "No start date"})  # type: ignore[typeddict-item]
    with pytest.raises(InvalidRequestError) as unknown:
        await client.create_card({"user_token": "ghost", "card_product_token": "none"})

    assert missing.value.error_code == MISSING_FIELD
    assert "start_date" in missing.value.error_message
    assert unknown.value.error_code == UNKNOWN_REFERENCE


async def test_a_jit_card_product_points_at_its_gateway_funding_source(
    simulator: Simulator, gateway: Recorder
) -> None:
    client = simulator.client

    product_token = await jit_program(client, gateway.url)
    product = await client.get_card_product(product_token)

    funding = product["config"]["jit_funding"]["programgateway_funding_source"]
    source = await client.get_program_gateway_funding_source(funding["funding_source_token"])
    assert funding["enabled"] and funding["refunds_destination"] == "GATEWAY"
    assert source["url"] == gateway.url + "jit"
    assert "basic_auth_password" not in source


async def test_a_weak_gateway_password_is_refused(simulator: Simulator) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await simulator.client.create_program_gateway_funding_source(
            {
                "name": "gw",
                "url": "https://gw.example.com/jit",
                "basic_auth_username": "p",
                "basic_auth_password": "short",
            }
        )

    assert "basic_auth_password" in raised.value.error_message


async def test_card_transitions_and_terminated_is_final(
    simulator: Simulator, gateway: Recorder
) -> None:
    client = simulator.client
    product_token = await jit_program(client, gateway.url)
    user = await client.create_user(complete_user())
    card = await client.create_card(
        {"user_token": user["token"], "card_product_token": product_token}
    )

    suspended = await client.transition_card(
        {"card_token": card["token"], "state": "SUSPENDED", "channel": "API", "reason_code": "01"}
    )
    reinstated = await client.transition_card(
        {"card_token": card["token"], "state": "ACTIVE", "channel": "API", "reason_code": "00"}
    )
    await client.transition_card(
        {
            "card_token": card["token"],
            "state": "TERMINATED",
            "channel": "FRAUD",
            "reason_code": "05",
        }
    )
    with pytest.raises(InvalidRequestError) as raised:
        await client.transition_card(
            {"card_token": card["token"], "state": "ACTIVE", "channel": "API", "reason_code": "00"}
        )

    assert card["state"] == "ACTIVE"
    assert (suspended["type"], reinstated["type"]) == ("state.suspended", "state.reinstated")
    assert (await client.get_card(card["token"]))["state"] == "TERMINATED"
    assert raised.value.error_code == INVALID_TRANSITION
    listed = await client.list_cards_for_user(user["token"])
    assert [c["token"] for c in listed["data"]] == [card["token"]]


async def test_kyc_success_activates_the_user(start_simulator: StartSimulator) -> None:
    client = (await start_simulator(kyc_required=True)).client
    user = await client.create_user(complete_user())

    kyc = await client.verify_identity({"user_token": user["token"]})

    assert user["status"] == "UNVERIFIED"
    assert kyc["result"] == {"status": "SUCCESS", "codes": []}
    assert (await client.get_user(user["token"]))["status"] == "ACTIVE"
    transitions = await client.list_user_transitions(user["token"])
    assert [t["status"] for t in transitions["data"]] == ["ACTIVE"]
    with pytest.raises(InvalidRequestError) as again:
        await client.verify_identity({"user_token": user["token"]})
    assert again.value.error_code == KYC_NOT_ALLOWED


async def test_kyc_allows_two_attempts_and_no_third(start_simulator: StartSimulator) -> None:
    client = (await start_simulator(kyc_required=True)).client
    user = await client.create_user(complete_user(last_name="Fail"))

    first = await client.verify_identity({"user_token": user["token"]})
    second = await client.verify_identity({"user_token": user["token"]})
    with pytest.raises(InvalidRequestError) as third:
        await client.verify_identity({"user_token": user["token"]})

    assert first["result"]["status"] == second["result"]["status"] == "FAILURE"
    assert third.value.error_code == KYC_ATTEMPTS_EXHAUSTED
    assert (await client.get_user(user["token"]))["status"] == "UNVERIFIED"
    listed = await client.list_kyc_for_user(user["token"])
    assert [k["token"] for k in listed["data"]] == [first["token"], second["token"]]


async def test_kyc_results_follow_the_users_data(start_simulator: StartSimulator) -> None:
    client = (await start_simulator(kyc_required=True)).client
    pending = await client.create_user(complete_user(last_name="Pending"))
    sparse = await client.create_user({"first_name": "No", "last_name": "Papers"})

    waiting = await client.verify_identity({"user_token": pending["token"]})
    failed = await client.verify_identity({"user_token": sparse["token"]})

    assert waiting["result"]["status"] == "PENDING"
    assert failed["result"]["status"] == "FAILURE"
    codes = {code["code"] for code in failed["result"]["codes"]}
    assert codes == {"AddressIssue", "DateOfBirthIssue", "SSNFail"}
    assert (await client.get_kyc(failed["token"]))["result"] == failed["result"]


async def test_a_closed_user_stays_closed(simulator: Simulator) -> None:
    client = simulator.client
    user = await client.create_user(complete_user())

    await client.transition_user(
        {"user_token": user["token"], "status": "CLOSED", "channel": "API", "reason_code": "17"}
    )
    with pytest.raises(InvalidRequestError) as raised:
        await client.transition_user(
            {"user_token": user["token"], "status": "ACTIVE", "channel": "API", "reason_code": "00"}
        )

    assert raised.value.error_code == INVALID_TRANSITION


async def test_spend_controls_are_stored_and_velocity_available_reported(
    simulator: Simulator,
) -> None:
    client = simulator.client
    user = await client.create_user(complete_user())
    group = await client.create_mcc_group(
        {
            "name": "Restaurants",
            "mccs": ["5811-5814"],
            "config": {"authorization_controls": {"hold_expiration_days": 3}},
        }
    )

    daily = await client.create_velocity_control(
        {
            "association": {"user_token": user["token"]},
            "amount_limit": Decimal("100.00"),
            "usage_limit": 5,
            "currency_code": "USD",
            "velocity_window": "DAY",
        }
    )
    block = await client.create_auth_control(
        {"name": "no dining", "merchant_scope": {"mcc_group": group["token"]}}
    )
    exempt = await client.create_exempt_mid({"mid": "cafeteria-1", "name": "staff canteen"})
    available = await client.list_velocity_available(user["token"])

    assert (await client.get_velocity_control(daily["token"]))["amount_limit"] == Decimal("100")
    assert (await client.get_auth_control(block["token"]))["merchant_scope"] == {
        "mcc_group": group["token"]
    }
    assert exempt["mid"] == "cafeteria-1"
    assert available["data"][0]["available"] == {
        "uses": 5,
        "amount": Decimal("100.00"),
        "days_remaining": 1,
    }


async def test_a_gpa_order_loads_the_account(simulator: Simulator) -> None:
    client = simulator.client
    user = await client.create_user(complete_user())
    source = await client.create_program_funding_source({"name": "program"})

    order = await client.create_gpa_order(
        {
            "user_token": user["token"],
            "amount": Decimal("25.50"),
            "currency_code": "USD",
            "funding_source_token": source["token"],
        }
    )
    with pytest.raises(InvalidRequestError) as too_precise:
        await client.create_gpa_order(
            {
                "user_token": user["token"],
                "amount": Decimal("1.005"),
                "currency_code": "USD",
                "funding_source_token": source["token"],
            }
        )

    balances = await client.get_balances(user["token"])
    assert order["state"] == "COMPLETION"
    assert balances["gpa"]["available_balance"] == Decimal("25.50")
    assert "decimals" in too_precise.value.error_message
