"""The JSON API with bearer tokens: a company admin (password and TOTP) sets a card's
daily limit and freezes it, and the gateway follows; another company's admin gets 404 for
the same card, read-only staff 403, and a holder cannot set a limit looser than the
company's."""

import asyncio
from typing import Any

import pyotp
from portal_support import USER_PASSWORD, Running, Seeder, jit_body


async def _token(running: Running, user: dict[str, Any]) -> str:
    body = {"email": user["email"], "password": USER_PASSWORD}
    if user["totp"]:
        body["code"] = pyotp.TOTP(user["totp"]).now()
    async with running.session.post(f"{running.url}/api/v1/token", json=body) as answer:
        assert answer.status == 200, await answer.text()
        return str((await answer.json())["access_token"])


async def _post(running: Running, token: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with running.session.post(running.url + path, json=body, headers=headers) as answer:
        return answer.status, await answer.json()


async def test_card_actions_through_the_api(running: Running, seeder: Seeder) -> None:
    acme = await seeder.company("Acme")
    other = await seeder.company("Other")
    admin = await seeder.user("admin@acme.test", "company_admin", acme.company_id, totp=True)
    stranger = await seeder.user("admin@other.test", "company_admin", other.company_id, totp=True)
    support = await seeder.user("help@program.test", "support", totp=True)
    ann = await seeder.user("ann@acme.test", "employee", acme.company_id)
    card = await seeder.card(ann, acme)
    holder = ann["holder_token"]
    token = await _token(running, admin)

    status, _ = await _post(
        running, token, f"/api/v1/cards/{card}/limits", {"kind": "daily", "amount": "12.50"}
    )
    assert status == 200
    assert (await running.jit(jit_body("a-1", card, holder, "10.00")))[0] == 200
    over = await running.jit(jit_body("a-2", card, holder, "5.00"))
    assert over[1]["jit_funding"]["decline_reason"] == "AMOUNT_LIMIT_EXCEEDED"
    bad = await _post(
        running, token, f"/api/v1/cards/{card}/limits", {"kind": "daily", "amount": 12.5}
    )
    assert bad[0] == 400

    ann_token = await _token(running, ann)
    looser = await _post(
        running, ann_token, f"/api/v1/cards/{card}/limits", {"kind": "daily", "amount": "100.00"}
    )
    assert looser[0] == 400 and "cannot be above" in looser[1]["error"]

    assert (await _post(running, await _token(running, stranger), f"/api/v1/cards/{card}/freeze"))[
        0
    ] == 404
    assert (await _post(running, await _token(running, support), f"/api/v1/cards/{card}/freeze"))[
        0
    ] == 403
    status, frozen = await _post(running, token, f"/api/v1/cards/{card}/freeze")
    assert (status, frozen["state"]) == (200, "SUSPENDED")
    declined = await running.jit(jit_body("a-3", card, holder, "1.00"))
    assert declined[1]["jit_funding"]["decline_reason"] == "CARD_NOT_ACTIVE"


async def test_issuing_and_listing_through_the_api(running: Running, seeder: Seeder) -> None:
    acme = await seeder.company("Acme")
    admin = await seeder.user("admin@acme.test", "company_admin", acme.company_id, totp=True)
    ann = await seeder.user("ann@acme.test", "employee", acme.company_id)
    token = await _token(running, admin)

    for odd in ("99999999999999999999999", "²", "0"):
        assert (await _post(running, token, f"/api/v1/employees/{odd}/cards"))[0] == 404
    status, issued = await _post(running, token, f"/api/v1/employees/{ann['id']}/cards")
    assert status == 201
    card = issued["token"]
    assert (await running.jit(jit_body("l-1", card, ann["holder_token"], "7.25")))[0] == 200

    async def listed(who: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {who}"}
        async with running.session.get(
            f"{running.url}/api/v1/transactions?status=approved&page=²", headers=headers
        ) as answer:
            return answer.status, await answer.json()

    for _ in range(100):
        status, body = await listed(token)
        if body["transactions"]:
            break
        await asyncio.sleep(0.05)
    assert status == 200 and body["page"] == 0
    assert [(t["token"], t["amount"], t["status"]) for t in body["transactions"]] == [
        ("l-1", "7.25", "pending")
    ]
    assert (await listed(await _token(running, ann)))[1]["transactions"][0]["token"] == "l-1"
