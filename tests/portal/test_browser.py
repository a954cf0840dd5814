"""The portal in a real headless Chromium against a real running gateway: a program admin
created by `pyjit user create` signs in with password and TOTP (enrolled from the QR
page's key), onboards a company; its admin accepts the invitation, enrols, invites an
employee, issues a card and sets a per-purchase limit; the gateway approves a purchase
under the limit and declines one over it, and the page says why; a frozen card's next
authorization is declined; the month's report exports as CSV; a merchant name carrying
HTML shows as text. Screenshots of the main pages are kept as test artifacts."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect
from portal_support import USER_PASSWORD, Running, artifacts_dir, jit_body

CHROMIUM = "/usr/bin/chromium"
HOSTILE = '<img src=x onerror="window.pwned=1">Evil & Co'


def _require_chromium() -> None:
    assert os.path.exists(CHROMIUM), "scripts/test installs Debian's chromium"


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    _require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


def _create_program_admin(running: Running) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": running.database_url,
        "PYJIT_USER_PASSWORD": USER_PASSWORD,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyjit",
            "user",
            "create",
            "--role",
            "program_admin",
            "--email",
            "Ops@Program.test",
            "--name",
            "Olga Ops",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "created program_admin ops@program.test" in result.stdout


AXE = Axe()
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


async def _shot(page: Page, name: str) -> None:
    """Keep a screenshot, and check the page against WCAG 2.1 A and AA with axe-core."""
    await page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)
    results = await AXE.run(page, options=WCAG_AA)
    problems = [
        f"{rule['id']}: {rule['help']} ({len(rule['nodes'])}: {rule['nodes'][0]['html'][:80]})"
        for rule in results.response["violations"]
    ]
    assert not problems, f"{name}: {problems}"


async def _sign_in_enrolling(page: Page, url: str, email: str) -> None:
    await page.goto(f"{url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(USER_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    await expect(
        page.get_by_role("img", name="QR code to scan with an authenticator app")
    ).to_be_visible()
    await _shot(page, "enrol-second-factor")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.get_by_label("Code shown by the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await page.get_by_role("link", name="Continue").click()


async def _accept_invite(page: Page, link: str) -> None:
    await page.goto(link)
    await page.get_by_label("New password (at least 12 characters)").fill(USER_PASSWORD)
    await page.get_by_label("The same again").fill(USER_PASSWORD)
    await page.get_by_role("button", name="Save and sign in").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def _projected(running: Running, tokens: set[str]) -> None:
    for _ in range(200):
        found = await running.pool.fetchval(
            "SELECT count(*) FROM transactions WHERE token = ANY($1::text[])", list(tokens)
        )
        if found == len(tokens):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"transactions {tokens} never reached the read model")


async def _onboard(page: Page, running: Running) -> str:
    """The program admin creates a company; the link its admin receives."""
    _create_program_admin(running)
    await _sign_in_enrolling(page, running.url, "ops@program.test")
    await expect(page.get_by_role("heading", name="Program")).to_be_visible()
    await _shot(page, "admin-overview")
    await page.get_by_role("link", name="Companies").click()
    await page.get_by_label("Company name").fill("Acme Field Services")
    await page.get_by_label("Admin's full name").fill("Carla Admin")
    await page.get_by_label("Admin's email").fill("carla@acme.test")
    await page.get_by_role("button", name="Create").click()
    link = (await page.locator("#invite-link").inner_text()).strip()
    await page.get_by_role("button", name="Sign out", exact=True).click()
    return link


async def _issue_limited_card(page: Page, running: Running) -> tuple[str, str, str]:
    """Company admin: invite an employee, issue a card, limit each purchase to 50.00."""
    await page.get_by_role("link", name="Employees").click()
    await page.get_by_label("Full name").fill("Ann Lee")
    await page.get_by_label("Email").fill("ann@acme.test")
    await page.get_by_role("button", name="Invite").click()
    employee_link = (await page.locator("#invite-link").inner_text()).strip()
    await _shot(page, "company-employees")
    await page.get_by_role("link", name="Ann Lee").click()
    await page.get_by_role("button", name="Issue a card").click()
    card = (await page.locator("#card-token").inner_text()).strip()
    await page.get_by_label("Limit").select_option("per_transaction")
    await page.get_by_label("Amount (USD)").fill("50.00")
    await page.get_by_role("button", name="Set limit").click()
    await expect(page.get_by_text("Per purchase:")).to_contain_text("50.00")
    holder = await running.pool.fetchval(
        "SELECT holder_token FROM portal_users WHERE email = 'ann@acme.test'"
    )
    return card, str(holder), employee_link


async def test_company_flow_in_a_real_browser(running: Running, chromium: Browser) -> None:
    page = await chromium.new_page(accept_downloads=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    admin_link = await _onboard(page, running)

    await _accept_invite(page, admin_link)
    await _sign_in_enrolling(page, running.url, "carla@acme.test")
    await expect(page.get_by_role("heading", name="Acme Field Services")).to_be_visible()
    card, holder, employee_link = await _issue_limited_card(page, running)

    approved = await running.jit(jit_body("p-1", card, holder, "20.00"))
    declined = await running.jit(jit_body("p-2", card, holder, "75.00"))
    hostile = await running.jit(jit_body("p-3", card, holder, "1.00", merchant=HOSTILE))
    assert approved[0] == 200 and hostile[0] == 200
    assert declined[0] == 402
    assert declined[1]["jit_funding"]["decline_reason"] == "AMOUNT_LIMIT_EXCEEDED"
    await _projected(running, {"p-1", "p-2", "p-3"})

    await page.get_by_role("link", name="Transactions").click()
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.filter(has_text="75.00")).to_contain_text("Over a spending limit")
    await expect(rows.filter(has_text="20.00 USD")).to_contain_text("pending")
    await expect(page.get_by_text(HOSTILE)).to_be_visible()
    assert await page.evaluate("window.pwned") is None and dialogs == []
    await _shot(page, "company-transactions")

    await page.get_by_role("link", name="Cards").click()
    await page.get_by_role("link", name="•••• ").first.click()
    await page.get_by_role("button", name="Freeze card").click()
    await expect(page.locator("#card-state")).to_have_text("frozen")
    frozen = await running.jit(jit_body("p-4", card, holder, "5.00"))
    assert frozen[0] == 402
    assert frozen[1]["jit_funding"]["decline_reason"] == "CARD_NOT_ACTIVE"
    await _shot(page, "company-card")

    await page.get_by_role("link", name="Overview").click()
    await expect(page.locator("#spent")).to_contain_text("21.00 USD")
    await _shot(page, "company-overview")
    await page.get_by_role("link", name="Reports").click()
    await _shot(page, "company-reports")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export CSV").click()
    download = await download_info.value
    exported = await asyncio.to_thread(Path(await download.path()).read_text)
    assert exported.splitlines()[0] == "month,employee,category,purchases,amount,currency"
    assert "Ann Lee,Groceries,2,21.00,USD" in exported

    await page.get_by_role("link", name="Settings").click()
    await page.get_by_label("Full name").fill("Dan Deputy")
    await page.get_by_label("Email").fill("dan@acme.test")
    await page.get_by_role("button", name="Invite an admin").click()
    await expect(page.locator("#invite-link")).to_contain_text("/invite/")
    await _shot(page, "company-settings")
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await _employee_unfreezes(chromium, running, employee_link, card, holder)


async def _employee_unfreezes(
    chromium: Browser, running: Running, link: str, card: str, holder: str
) -> None:
    """The employee, on a phone-sized screen, sees the frozen card and unfreezes it."""
    phone = await chromium.new_page(viewport={"width": 390, "height": 844})
    await _accept_invite(phone, link)
    await phone.get_by_label("Email").fill("ann@acme.test")
    await phone.get_by_label("Password").fill(USER_PASSWORD)
    await phone.get_by_role("button", name="Sign in").click()
    await expect(phone.get_by_role("heading", name="My cards")).to_be_visible()
    await expect(phone.locator(".card .state")).to_have_text("frozen")
    await _shot(phone, "me-dashboard-phone")
    await phone.get_by_role("button", name="Unfreeze card ending").click()
    await expect(phone.locator(".card .state")).to_have_text("active")
    answer: Any = await running.jit(jit_body("p-5", card, holder, "5.00"))
    assert answer[0] == 200
    await phone.get_by_role("link", name="Transactions", exact=True).click()
    await phone.get_by_label("Status").select_option("declined")
    await phone.get_by_role("button", name="Filter").click()
    await expect(phone.locator("tbody tr")).to_have_count(2)
    await _shot(phone, "me-transactions-phone")
    await phone.close()
