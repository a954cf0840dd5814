"""The issuance service against the processor simulator and a real gateway: it proves KYC
takes at most two attempts and the holder's status follows its result (PENDING and FAILURE
leave the holder unverified and unable to get a card), that card suspension and termination
reach the gateway (a swipe is declined CARD_NOT_ACTIVE; TERMINATED is final), that bad
requests get a precise 4xx, and that identifiers are sealed at rest and shown masked."""

from program_support import Program, person
from wh_support import Served

Ran = tuple[Served, Program]


async def test_failed_kyc_twice_uses_up_the_attempts(program: Ran) -> None:
    _, running = program
    onboarded = await running.call("/people", person("Fail", "123459999"), 201)
    token = onboarded["token"]
    for attempt in (1, 2):
        result = await running.call(f"/holders/{token}/kyc")
        assert (result["kyc_status"], result["kyc_attempts"]) == ("FAILURE", attempt)
        assert result["status"] == "UNVERIFIED"
    refused = await running.call(f"/holders/{token}/kyc", status=409)
    assert "2 KYC attempts" in refused["error"]
    no_card = await running.call(f"/holders/{token}/cards", status=409)
    assert "UNVERIFIED" in no_card["error"]


async def test_pending_kyc_keeps_the_holder_unverified(program: Ran) -> None:
    _, running = program
    token = (await running.call("/people", person("Pending", "123458888"), 201))["token"]
    result = await running.call(f"/holders/{token}/kyc")
    assert (result["kyc_status"], result["status"]) == ("PENDING", "UNVERIFIED")


async def test_suspend_and_terminate_reach_the_gateway(program: Ran) -> None:
    served, running = program
    token = (await running.call("/people", person("Lovelace", "123457777"), 201))["token"]
    await running.call(f"/holders/{token}/kyc")
    await running.call(f"/holders/{token}/funding", {"token": "f-ada", "amount": "50.00"})
    card = await running.call(f"/holders/{token}/cards", status=201)
    await running.call(f"/cards/{card['token']}/transitions", {"state": "ACTIVE"})

    acceptor = {"mid": "m1", "mcc": "5411"}
    swipe = {"card_token": card["token"], "amount": "5.00", "card_acceptor": acceptor}
    assert (await running.client.simulate_authorization(swipe))["state"] == "PENDING"
    await running.call(f"/cards/{card['token']}/transitions", {"state": "SUSPENDED"})
    declined = await running.client.simulate_authorization(swipe)
    assert declined["state"] == "DECLINED"

    await running.call(f"/cards/{card['token']}/transitions", {"state": "TERMINATED"})
    final = await running.call(
        f"/cards/{card['token']}/transitions", {"state": "ACTIVE"}, status=400
    )
    assert "final" in final["error"]
    rows = await served.fetch("SELECT state FROM issuance_cards WHERE token = $1", card["token"])
    assert [row[0] for row in rows] == ["TERMINATED"]


async def test_gateway_declines_a_suspended_card_it_learned_of(program: Ran) -> None:
    served, running = program
    token = (await running.call("/people", person("Hopper", "123456666"), 201))["token"]
    await running.call(f"/holders/{token}/kyc")
    card = await running.call(f"/holders/{token}/cards", status=201)
    await running.call(f"/cards/{card['token']}/transitions", {"state": "SUSPENDED"})
    # Straight to the gateway, as a processor with a stale view of the card would.
    message = (
        b'{"token":"t-x","type":"authorization","state":"PENDING","amount":"1.00",'
        b'"currency_code":"USD","card_token":"' + card["token"].encode() + b'",'
        b'"gpa_order":{"jit_funding":{"token":"j-x","method":"pgfs.authorization",'
        b'"user_token":"' + token.encode() + b'","amount":"1.00"}}}'
    )
    status, answer = await served.jit(message)
    assert status == 402
    assert answer["jit_funding"]["decline_reason"] == "CARD_NOT_ACTIVE"


async def test_bad_requests_get_a_precise_4xx(program: Ran) -> None:
    _, running = program
    missing = await running.call("/people", {"last_name": "Nobody"}, 400)
    assert missing["error"] == "first_name is required text"
    unknown = await running.call("/holders/nobody/kyc", status=404)
    assert unknown["error"] == "no account holder nobody"
    wrong_state = await running.call("/cards/none/transitions", {"state": "LOST"}, 400)
    assert "state must be one of" in wrong_state["error"]
    async with running.session.post(running.issuance + "/people", data=b"{") as response:
        assert response.status == 400
    async with running.session.post(
        running.issuance + "/people", json={}, headers={"Authorization": "Basic eDp5"}
    ) as response:
        assert response.status == 401


async def test_identifiers_are_sealed_and_shown_masked(program: Ran) -> None:
    served, running = program
    token = (await running.call("/people", person("Turing", "123451234"), 201))["token"]
    rows = await served.fetch(
        "SELECT identifications_sealed, birth_date_sealed FROM issuance_holders WHERE token = $1",
        token,
    )
    sealed_ids, sealed_birth = rows[0]
    assert sealed_ids.startswith("k1:") and sealed_birth.startswith("k1:")
    assert "123451234" not in sealed_ids and "1985" not in sealed_birth
    async with running.session.get(f"{running.issuance}/holders/{token}") as response:
        shown = await response.json()
    assert shown["identifications"] == [{"type": "SSN", "last_four": "1234"}]
    assert "123451234" not in str(shown)
