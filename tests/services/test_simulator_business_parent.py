"""An employee of a company spends the company's money: it proves the simulator accepts a
business as a user's parent and that the JIT message of the employee's swipe names the
business as the account holder and the employee as the user who swiped, as the processor's
messages do for business programs."""

from sim_support import Recorder, Simulator, complete_user, jit_program

from services.marqeta import codec


async def test_employee_swipe_is_funded_by_the_business(
    simulator: Simulator, gateway: Recorder
) -> None:
    client = simulator.client
    product = await jit_program(client, gateway.url)
    business = await client.create_business({"business_name_legal": "Harbor Supply Co"})
    employee = await client.create_user(
        {**complete_user(), "parent_token": business["token"], "uses_parent_account": True}
    )
    card = await client.create_card(
        {"user_token": employee["token"], "card_product_token": product}
    )
    acceptor = {"mid": "m1", "mcc": "5411"}
    await client.simulate_authorization(
        {"card_token": card["token"], "amount": "12.00", "card_acceptor": acceptor}
    )

    jit = codec.decode(gateway.requests[-1][1])["gpa_order"]["jit_funding"]
    assert jit["business_token"] == business["token"]
    assert jit["acting_user_token"] == employee["token"]
    assert "user_token" not in jit
