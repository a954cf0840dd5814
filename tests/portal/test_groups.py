"""Controls set on an employee group reach every member's cards at the gateway, including
a member whose first card is issued after the control was set."""

from portal_support import Browser, Running, Seeder, jit_body


async def test_a_group_limit_and_block_apply_to_every_member(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    company = await seeder.company("Acme")
    admin = await seeder.user("admin@acme.test", "company_admin", company.company_id, totp=True)
    ann = await seeder.user("ann@acme.test", "employee", company.company_id)
    bob = await seeder.user("bob@acme.test", "employee", company.company_id)
    ann_card = await seeder.card(ann, company)
    boss = Browser(running)
    browsers.append(boss)
    await boss.sign_in(admin)

    status, _, location = await boss.post(
        "/company/groups", {"csrf": await boss.csrf("/company"), "name": "Field team"}
    )
    assert status == 303
    for person in (ann, bob):
        status, _, _ = await boss.post(
            f"{location}/members",
            {"csrf": await boss.csrf(location), "employee": str(person["id"])},
        )
        assert status == 303
    status, _, _ = await boss.post(
        f"{location}/controls",
        {"csrf": await boss.csrf(location), "kind": "daily", "amount": "30", "action": "set"},
    )
    assert status == 303
    status, _, _ = await boss.post(
        f"{location}/controls",
        {
            "csrf": await boss.csrf(location),
            "kind": "mcc_group",
            "value": "portal-gambling",
            "action": "set",
        },
    )
    assert status == 303

    ann_token = ann["holder_token"]
    assert (await running.jit(jit_body("g-1", ann_card, ann_token, "20.00")))[0] == 200
    over = await running.jit(jit_body("g-2", ann_card, ann_token, "15.00"))
    assert over[1]["jit_funding"]["decline_reason"] == "AMOUNT_LIMIT_EXCEEDED"
    assert (await running.jit(jit_body("g-3", ann_card, ann_token, "1.00", mcc="7995")))[0] == 402

    # Bob had no card when the limit was set; his first card carries it.
    bob_card = await seeder.card(bob, company)
    bob_token = bob["holder_token"]
    over = await running.jit(jit_body("g-4", bob_card, bob_token, "40.00"))
    assert over[1]["jit_funding"]["decline_reason"] == "AMOUNT_LIMIT_EXCEEDED"
    assert (await running.jit(jit_body("g-5", bob_card, bob_token, "25.00")))[0] == 200

    status, page = await boss.get(location)
    assert status == 200 and "Ann" in page and "Bob" in page and "30.00" in page
