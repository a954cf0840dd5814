"""Security of the portal over real HTTP, Redis and PostgreSQL: CSRF on forms, a fresh
session id at each sign-in step (no fixation), idle and absolute session expiry, signing
out everywhere, the second factor and its one-time recovery codes, brute-force lockout,
rotating refresh tokens whose reuse revokes the family, cookie flags, and merchant names
carrying HTML rendered as text."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pyotp
import redis.asyncio as aioredis
from aiohttp import web
from portal_support import USER_PASSWORD, Browser, Running, Seeder, jit_body

from portal import users
from portal.sessions import Session
from portal.web import set_cookie


async def _admin(seeder: Seeder) -> tuple[Any, dict[str, Any]]:
    company = await seeder.company("Acme")
    admin = await seeder.user("admin@acme.test", "company_admin", company.company_id, totp=True)
    return company, admin


async def _signed_in(running: Running, browsers: list[Browser], user: dict[str, Any]) -> Browser:
    browser = Browser(running)
    browsers.append(browser)
    await browser.sign_in(user)
    return browser


async def _people(running: Running) -> int:
    return int(await running.pool.fetchval("SELECT count(*) FROM portal_users"))


async def test_a_form_without_its_csrf_token_is_refused(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    browser = await _signed_in(running, browsers, admin)
    form = {"name": "Eve", "email": "eve@acme.test"}
    before = await _people(running)

    missing = await browser.post("/company/employees", form)
    wrong = await browser.post("/company/employees", {**form, "csrf": "x" * 32})
    assert (missing[0], wrong[0]) == (403, 403)
    assert await _people(running) == before

    right = await browser.post(
        "/company/employees", {**form, "csrf": await browser.csrf("/company")}
    )
    assert right[0] == 201 and await _people(running) == before + 1


async def test_the_login_form_needs_its_csrf_token_too(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    browser = Browser(running)
    browsers.append(browser)
    await browser.csrf()
    status, _, _ = await browser.post(
        "/login", {"email": admin["email"], "password": USER_PASSWORD}
    )
    assert status == 403


async def test_each_sign_in_step_issues_a_new_session_id(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    browser = Browser(running)
    browsers.append(browser)
    await browser.csrf()
    planted = browser.cookie()
    await browser.sign_in(admin)
    signed_in = browser.cookie()
    assert planted and signed_in and planted != signed_in

    # Whoever kept the planted id holds nothing.
    attacker = Browser(running)
    browsers.append(attacker)
    attacker.session.cookie_jar.update_cookies({"pyjit_portal": planted})
    status, _ = await attacker.get("/company")
    assert status == 303
    assert (await browser.get("/company"))[0] == 200


async def test_an_idle_or_too_old_session_signs_out(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    idle = await _signed_in(running, browsers, admin)
    old = await _signed_in(running, browsers, admin)
    client = aioredis.from_url(running.redis_url)
    try:
        # Idle expiry is the key's time to live running out.
        await client.delete(f"{running.prefix}session:{idle.cookie()}")
        # The absolute lifetime counts from sign-in, whatever the activity since.
        key = f"{running.prefix}session:{old.cookie()}"
        created = int(await client.hget(key, "created_ms"))
        await client.hset(key, "created_ms", created - 12 * 3600 * 1000 - 1)
        assert (await idle.get("/company"))[0] == 303
        assert (await old.get("/company"))[0] == 303
        assert not await client.exists(key)
    finally:
        await client.aclose()


async def test_signing_out_everywhere_ends_every_session(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    laptop = await _signed_in(running, browsers, admin)
    phone = await _signed_in(running, browsers, admin)
    status, _, location = await laptop.post(
        "/logout/everywhere", {"csrf": await laptop.csrf("/company")}
    )
    assert (status, location) == (303, "/login")
    assert (await phone.get("/company"))[0] == 303
    action = await running.pool.fetchval("SELECT action FROM portal_audit ORDER BY id DESC")
    assert action == "sign_out_everywhere"


async def test_a_wrong_code_is_refused_and_a_recovery_code_works_once(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    codes = await users.finish_enrolment(running.pool, admin["id"], seeder.portal.ids)

    async def second_step(code: str) -> tuple[int, str]:
        browser = Browser(running)
        browsers.append(browser)
        token = await browser.csrf()
        await browser.post(
            "/login", {"csrf": token, "email": admin["email"], "password": USER_PASSWORD}
        )
        token = await browser.csrf("/login/second-factor")
        status, _, location = await browser.post(
            "/login/second-factor", {"csrf": token, "code": code}
        )
        return status, location

    current = pyotp.TOTP(admin["totp"]).now()
    assert (await second_step(str((int(current) + 1) % 1_000_000).zfill(6)))[0] == 401
    assert await second_step(codes[0]) == (303, "/")
    assert (await second_step(codes[0]))[0] == 401


async def test_repeated_failures_lock_the_account(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    _, admin = await _admin(seeder)
    browser = Browser(running)
    browsers.append(browser)
    statuses = []
    for attempt in range(6):
        token = await browser.csrf()
        password = USER_PASSWORD if attempt == 5 else f"wrong password {attempt}"
        status, _, _ = await browser.post(
            "/login", {"csrf": token, "email": admin["email"], "password": password}
        )
        statuses.append(status)
    assert statuses == [401, 401, 401, 401, 401, 429]
    token = await browser.csrf()
    api = await browser.session.post(
        f"{running.url}/api/v1/token",
        json={
            "email": admin["email"],
            "password": USER_PASSWORD,
            "code": pyotp.TOTP(admin["totp"]).now(),
        },
    )
    assert api.status == 429


async def test_a_reused_refresh_token_revokes_its_family(running: Running, seeder: Seeder) -> None:
    company, _ = await _admin(seeder)
    employee = await seeder.user("ann@acme.test", "employee", company.company_id)
    card = await seeder.card(employee, company)
    session = running.session

    async def post(path: str, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with session.post(running.url + path, json=body) as answer:
            return answer.status, await answer.json()

    status, first = await post(
        "/api/v1/token", {"email": "ann@acme.test", "password": USER_PASSWORD}
    )
    assert status == 200
    headers = {"Authorization": f"Bearer {first['access_token']}"}
    async with session.get(f"{running.url}/api/v1/me/cards", headers=headers) as answer:
        assert answer.status == 200
        assert [c["token"] for c in (await answer.json())["cards"]] == [card]

    status, second = await post("/api/v1/token/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    reused = await post("/api/v1/token/refresh", {"refresh_token": first["refresh_token"]})
    assert reused[0] == 401
    # The thief's reuse also ends the rightful holder's newer token.
    assert (await post("/api/v1/token/refresh", {"refresh_token": second["refresh_token"]}))[
        0
    ] == 401

    tampered = first["access_token"][:-2] + ("AA" if first["access_token"][-2:] != "AA" else "BB")
    async with session.get(
        f"{running.url}/api/v1/me/cards", headers={"Authorization": f"Bearer {tampered}"}
    ) as answer:
        assert answer.status == 401


def test_the_session_cookie_is_secure_httponly_and_same_site() -> None:
    portal: Any = SimpleNamespace(settings=SimpleNamespace(cookie_secure=True))
    response = web.Response()
    set_cookie(portal, response, Session("s" * 43, "c" * 32, 0))
    header = response.cookies["pyjit_portal"].OutputString()
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Strict" in header


async def test_html_in_a_merchant_name_is_shown_as_text(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    company, admin = await _admin(seeder)
    employee = await seeder.user("ann@acme.test", "employee", company.company_id)
    card = await seeder.card(employee, company)
    hostile = '<script>alert("x")</script><b onmouseover=alert(1)>Shop</b>'
    status, _ = await running.jit(
        jit_body("h-1", card, employee["holder_token"], "2.00", merchant=hostile)
    )
    assert status == 200
    browser = await _signed_in(running, browsers, admin)
    for _ in range(100):
        _, page = await browser.get("/company/transactions")
        if "Shop" in page:
            break
        await asyncio.sleep(0.05)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<script>" not in page and "<b onmouseover" not in page
