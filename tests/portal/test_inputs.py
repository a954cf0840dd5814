"""Bad input answers a precise 4xx and changes nothing: control forms with a wrong amount,
category or country, oversized forms, and `pyjit user create` with a missing company, a
short password or a taken address."""

import os
import subprocess
import sys

from portal_support import USER_PASSWORD, Browser, Running, Seeder


async def test_bad_control_forms_change_nothing(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    company = await seeder.company("Acme")
    admin = await seeder.user("admin@acme.test", "company_admin", company.company_id, totp=True)
    ann = await seeder.user("ann@acme.test", "employee", company.company_id)
    card = await seeder.card(ann, company)
    boss = Browser(running)
    browsers.append(boss)
    await boss.sign_in(admin)
    path = f"/company/cards/{card}/controls"
    forms = [
        ({"kind": "daily", "amount": "abc"}, "is not an amount"),
        ({"kind": "daily", "amount": "-5"}, "above zero"),
        ({"kind": "daily", "amount": "1.005"}, "at most 2 decimal places"),
        ({"kind": "mcc_group", "value": "portal-nonsense"}, "listed categories"),
        ({"kind": "country", "value": "U1"}, "three-letter country code"),
        ({"kind": "weekly", "amount": "5"}, "Choose a kind"),
    ]
    for form, message in forms:
        status, page, _ = await boss.post(
            path, {"csrf": await boss.csrf("/company"), "action": "set", **form}
        )
        assert status == 400 and message in page, (form, status)
    assert await running.pool.fetchval("SELECT count(*) FROM portal_controls") == 0

    huge = {"csrf": await boss.csrf("/company"), "name": "x" * 70_000, "email": "a@b.c"}
    status, page, _ = await boss.post("/company/employees", huge)
    assert status == 413 and "over 64 kB" in page


def _create(database_url: str, *arguments: str, password: str = USER_PASSWORD) -> tuple[int, str]:
    environment = {**os.environ, "DATABASE_URL": database_url, "PYJIT_USER_PASSWORD": password}
    result = subprocess.run(
        [sys.executable, "-m", "pyjit", "user", "create", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr


def test_user_create_refuses_bad_input(database_url: str) -> None:
    person = ["--email", "a@b.test", "--name", "A B"]
    assert _create(database_url, "--role", "company_admin", *person)[0] == 2
    assert _create(database_url, "--role", "auditor", "--company", "co-x", *person)[0] == 2
    code, error = _create(database_url, "--role", "auditor", *person, password="short")
    assert code == 2 and "at least 12" in error
    code, error = _create(database_url, "--role", "company_admin", "--company", "co-x", *person)
    assert code == 1 and "no company co-x" in error
    assert _create(database_url, "--role", "auditor", *person)[0] == 0
    code, error = _create(database_url, "--role", "support", *person)
    assert code == 1 and "already has an account" in error
