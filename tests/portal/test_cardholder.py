"""A personal cardholder through the portal served alone (`--role portal`), which loads
program documents into the gateway over HTTP: KYC rejected then approved on retry (the
sandbox provider), a card issued on approval, a bank top-up credited and one refused,
purchases decided by the gateway, and a holder's own limit that may only be tighter than
the company's. Also the program view and lookup, and the portal's latency metric."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from portal_support import PASSWORD, USER_PASSWORD, USERNAME, Browser, Running, Seeder, jit_body

from pyjit.clock import SystemClock
from pyjit.config import Address, Config


@pytest.fixture
async def standalone(
    running: Running, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    from portal.serving import serve_portal

    monkeypatch.setenv("PYJIT_GATEWAY_URL", running.url)
    config = Config(
        database_url=database_url,
        http_addr=Address("127.0.0.1", 0),
        gateway_username=USERNAME,
        gateway_password=PASSWORD,
    )
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_portal(config, SystemClock(), stop, listening.set_result))
    await asyncio.wait([listening, task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    portal = Running(
        listening.result(),
        database_url,
        running.prefix,
        running.session,
        running.pool,
        running.redis_url,
    )
    try:
        yield portal
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


async def _kyc(browser: Browser, last_name: str) -> tuple[int, str]:
    form = {
        "csrf": await browser.csrf("/me/kyc"),
        "first_name": "Pat",
        "last_name": last_name,
        "birth_date": "1990-04-30",
        "address": "1 Main St",
        "country": "USA",
    }
    status, _, _ = await browser.post("/me/kyc", form)
    return status, (await browser.get("/me/kyc"))[1]


async def test_a_personal_cardholder_on_the_standalone_portal(
    running: Running, standalone: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    pat = await seeder.user("pat@personal.test", "cardholder")
    browser = Browser(standalone)
    browsers.append(browser)
    await browser.sign_in(pat)

    assert (
        await browser.post(
            "/me/topup",
            {"csrf": await browser.csrf("/me/topup"), "rail": "bank_transfer", "amount": "5"},
        )
    )[0] == 409
    status, page = await _kyc(browser, "Reject")
    assert status == 303 and "rejected" in page and "does not match" in page
    status, page = await _kyc(browser, "Payne")
    assert status == 303 and 'id="kyc-status">approved' in page
    card = await standalone.pool.fetchval(
        "SELECT card_token FROM portal_cards WHERE user_id = $1", pat["id"]
    )
    assert card is not None

    async def top_up(amount: str) -> str:
        token = await browser.csrf("/me/topup")
        status, page, _ = await browser.post(
            "/me/topup", {"csrf": token, "rail": "bank_transfer", "amount": amount}
        )
        assert status == 200
        return page

    assert "Transfer received" in await top_up("100.00")
    assert "refused" in await top_up("5.13")
    holder = pat["holder_token"]
    assert (await running.jit(jit_body("c-1", card, holder, "30.00")))[0] == 200
    declined = await running.jit(jit_body("c-2", card, holder, "80.00"))
    assert declined[1]["jit_funding"]["decline_reason"] == "INSUFFICIENT_FUNDS"

    token = await browser.csrf(f"/me/cards/{card}")
    status, _, _ = await browser.post(
        f"/me/cards/{card}/controls",
        {"csrf": token, "kind": "per_transaction", "amount": "10.00", "action": "set"},
    )
    assert status == 303
    limited = await running.jit(jit_body("c-3", card, holder, "20.00"))
    assert limited[1]["jit_funding"]["decline_reason"] == "AMOUNT_LIMIT_EXCEEDED"

    # The standalone portal reads the gateway's latency from the gateway's /metrics.
    staff = await seeder.user("help@program.test", "support", totp=True)
    support = Browser(standalone)
    browsers.append(support)
    await support.sign_in(staff)
    status, page = await support.get("/admin")
    assert status == 200 and "p99 ≤" in page and "decisions since start" in page


async def test_a_holder_limit_cannot_loosen_the_company_limit(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    company = await seeder.company("Acme")
    admin = await seeder.user("admin@acme.test", "company_admin", company.company_id, totp=True)
    ann = await seeder.user("ann@acme.test", "employee", company.company_id)
    card = await seeder.card(ann, company)
    boss = Browser(running)
    employee = Browser(running)
    browsers.extend([boss, employee])
    await boss.sign_in(admin)
    await employee.sign_in(ann)

    status, _, _ = await boss.post(
        f"/company/cards/{card}/controls",
        {"csrf": await boss.csrf("/company"), "kind": "daily", "amount": "50", "action": "set"},
    )
    assert status == 303

    async def own_limit(amount: str) -> tuple[int, str]:
        token = await employee.csrf(f"/me/cards/{card}")
        status, page, _ = await employee.post(
            f"/me/cards/{card}/controls",
            {"csrf": token, "kind": "daily", "amount": amount, "action": "set"},
        )
        return status, page

    status, page = await own_limit("80")
    assert status == 400 and "cannot be above" in page
    assert (await own_limit("20"))[0] == 303
    holder = ann["holder_token"]
    assert (await running.jit(jit_body("d-1", card, holder, "15.00")))[0] == 200
    over = await running.jit(jit_body("d-2", card, holder, "10.00"))
    assert over[1]["jit_funding"]["decline_reason"] == "AMOUNT_LIMIT_EXCEEDED"

    status, _, _ = await boss.post(
        f"/company/cards/{card}/controls",
        {
            "csrf": await boss.csrf("/company"),
            "kind": "mcc_group",
            "value": "portal-gambling",
            "action": "set",
        },
    )
    assert status == 303
    blocked = await running.jit(jit_body("d-3", card, holder, "1.00", mcc="7995"))
    assert blocked[0] == 402


async def test_the_program_view_and_lookup(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    company = await seeder.company("Acme")
    ann = await seeder.user("ann@acme.test", "employee", company.company_id)
    card = await seeder.card(ann, company)
    staff = await seeder.user("help@program.test", "support", totp=True)
    await running.jit(jit_body("e-1", card, ann["holder_token"], "3.00"))
    await running.jit(jit_body("e-2", card, ann["holder_token"], "9999.00"))
    browser = Browser(running)
    browsers.append(browser)
    await browser.sign_in(staff)

    page: Any = ""
    for _ in range(100):
        status, page = await browser.get("/admin")
        if ">2</p>" in page:
            break
        await asyncio.sleep(0.05)
    assert status == 200 and "50.0 %" in page and "<svg" in page
    assert "Not enough money available" in page
    await running.pool.execute(
        "INSERT INTO webhook_states (object_token, object_kind, state, event_token, event_time)"
        " VALUES ($1, 'card', 'ACTIVE', 'ev-1', '2026-12-01T00:00:00Z')",
        card,
    )
    status, page = await browser.get(f"/admin/lookup?q={card}")
    assert status == 200 and "ann@acme.test" in page and "issue_card" in page
    assert f"card {card}: ACTIVE" in page
    async with running.session.get(f"{running.url}/metrics") as answer:
        exposition = await answer.text()
    assert 'pyjit_portal_request_seconds_count{method="GET",route="/admin"' in exposition


async def test_statuses_follow_the_hold_and_a_country_block_declines(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    company = await seeder.company("Acme")
    admin = await seeder.user("admin@acme.test", "company_admin", company.company_id, totp=True)
    ann = await seeder.user("ann@acme.test", "employee", company.company_id)
    card, holder = await seeder.card(ann, company), ann["holder_token"]

    async def decide(token: str, merchant: str, **extra: Any) -> int:
        status, _ = await running.jit(jit_body(token, card, holder, "10.00", merchant, **extra))
        return status

    assert await decide("s-a", "Alpha") == 200
    capture, reversal = "pgfs.authorization.capture", "pgfs.authorization.reversal"
    assert await decide("s-a2", "Alpha", method=capture, original="s-a") == 200
    assert await decide("s-b", "Bravo") == 200
    assert await decide("s-b2", "Bravo", method=reversal, original="s-b") == 200
    assert await decide("s-c", "Charlie") == 200
    boss = Browser(running)
    browsers.append(boss)
    await boss.sign_in(admin)
    status, _, _ = await boss.post(
        f"/company/cards/{card}/controls",
        {"csrf": await boss.csrf("/company"), "kind": "country", "value": "rus", "action": "set"},
    )
    assert status == 303
    assert await decide("s-d", "Delta", country="RUS") == 402

    employee = Browser(running)
    browsers.append(employee)
    await employee.sign_in(ann)
    statuses: dict[str, set[str]] = {}
    for _ in range(100):
        _, page = await employee.get("/me/transactions")
        statuses = {}
        for status, merchant in re.findall(
            r'<tr class="status-(\w+)">.*?class="merchant">([^<]*)<', page, re.S
        ):
            statuses.setdefault(merchant, set()).add(status)
        if len(statuses) == 4:
            break
        await asyncio.sleep(0.05)
    assert statuses == {
        "Alpha": {"cleared"},
        "Bravo": {"reversed"},
        "Charlie": {"pending"},
        "Delta": {"declined"},
    }
    # Spend counts each purchase once (not its clearing) and nothing reversed or declined.
    _, page = await boss.get("/company")
    assert 'id="spent">20.00 USD<' in page


async def test_a_person_opens_an_account_and_passes_kyc(
    running: Running, browsers: list[Browser]
) -> None:
    browser = Browser(running)
    browsers.append(browser)
    form = {
        "name": "Pat Payne",
        "email": "Pat@Home.test",
        "password": USER_PASSWORD,
        "confirm": USER_PASSWORD,
    }
    assert (await browser.post("/signup", form))[0] == 403
    status, page, _ = await browser.post(
        "/signup", {**form, "confirm": "other", "csrf": await browser.csrf("/signup")}
    )
    assert status == 400 and "differ" in page
    status, _, location = await browser.post(
        "/signup", {**form, "csrf": await browser.csrf("/signup")}
    )
    assert (status, location) == (303, "/me/kyc")
    status, page = await _kyc(browser, "Payne")
    assert 'id="kyc-status">approved' in page
    status, page = await browser.get("/me")
    assert status == 200 and "•••• " in page

    other = Browser(running)
    browsers.append(other)
    status, page, _ = await other.post(
        "/signup", {**form, "email": "pat@home.test", "csrf": await other.csrf("/signup")}
    )
    assert status == 409 and "already has an account" in page
