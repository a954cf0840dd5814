"""Every guarded handler with every role: a role outside a handler's list gets 403 and
nothing happens; a role inside it gets through (its answer may still be 400 or 404 for a
bad form or a card that is not theirs). The expected table is written out here, not read
from the code, and must name every route the portal registers. Also: a company admin
never reaches another company's employee or card, whatever id is typed."""

from typing import Any

import pytest
from portal_support import Browser, Running, Seeder

from portal.app import ROUTES

ADMIN, EMPLOYEE, HOLDER = "company_admin", "employee", "cardholder"
PROGRAM, SUPPORT, AUDITOR = "program_admin", "support", "auditor"
EVERYONE = {ADMIN, EMPLOYEE, HOLDER, PROGRAM, SUPPORT, AUDITOR}

EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/company"): {ADMIN},
    ("GET", "/company/employees"): {ADMIN},
    ("POST", "/company/employees"): {ADMIN},
    ("GET", "/company/employees/{employee_id}"): {ADMIN},
    ("POST", "/company/employees/{employee_id}/deactivate"): {ADMIN},
    ("POST", "/company/employees/{employee_id}/cards"): {ADMIN},
    ("POST", "/company/employees/{employee_id}/controls"): {ADMIN},
    ("GET", "/company/cards"): {ADMIN},
    ("GET", "/company/cards/{card_token}"): {ADMIN},
    ("POST", "/company/cards/{card_token}/state"): {ADMIN},
    ("POST", "/company/cards/{card_token}/controls"): {ADMIN},
    ("GET", "/company/groups"): {ADMIN},
    ("POST", "/company/groups"): {ADMIN},
    ("GET", "/company/groups/{group_id}"): {ADMIN},
    ("POST", "/company/groups/{group_id}/members"): {ADMIN},
    ("POST", "/company/groups/{group_id}/controls"): {ADMIN},
    ("GET", "/company/transactions"): {ADMIN},
    ("GET", "/company/reports"): {ADMIN},
    ("GET", "/company/reports.csv"): {ADMIN},
    ("GET", "/company/audit"): {ADMIN},
    ("GET", "/company/settings"): {ADMIN},
    ("POST", "/company/settings/admins"): {ADMIN},
    ("GET", "/me"): {EMPLOYEE, HOLDER},
    ("GET", "/me/transactions"): {EMPLOYEE, HOLDER},
    ("GET", "/me/cards/{card_token}"): {EMPLOYEE, HOLDER},
    ("POST", "/me/cards/{card_token}/state"): {EMPLOYEE, HOLDER},
    ("POST", "/me/cards/{card_token}/controls"): {EMPLOYEE, HOLDER},
    ("GET", "/me/kyc"): {HOLDER},
    ("POST", "/me/kyc"): {HOLDER},
    ("GET", "/me/topup"): {HOLDER},
    ("POST", "/me/topup"): {HOLDER},
    ("GET", "/admin"): {PROGRAM, SUPPORT, AUDITOR},
    ("GET", "/admin/lookup"): {PROGRAM, SUPPORT},
    ("GET", "/admin/audit"): {PROGRAM, AUDITOR},
    ("GET", "/admin/companies"): {PROGRAM, SUPPORT},
    ("POST", "/admin/companies"): {PROGRAM},
    # Signing out is last for each role: it ends the session the rest uses.
    ("POST", "/logout/everywhere"): EVERYONE,
    ("POST", "/logout"): EVERYONE,
}


async def _world(seeder: Seeder) -> dict[str, Any]:
    first = await seeder.company("First Co")
    second = await seeder.company("Second Co")
    people = {
        ADMIN: await seeder.user("admin@first.test", ADMIN, first.company_id, totp=True),
        EMPLOYEE: await seeder.user("ann@first.test", EMPLOYEE, first.company_id),
        HOLDER: await seeder.user("pat@personal.test", HOLDER),
        PROGRAM: await seeder.user("ops@program.test", PROGRAM, totp=True),
        SUPPORT: await seeder.user("help@program.test", SUPPORT, totp=True),
        AUDITOR: await seeder.user("audit@program.test", AUDITOR, totp=True),
    }
    spare = await seeder.user("spare@first.test", EMPLOYEE, first.company_id)
    other_admin = await seeder.user("admin@second.test", ADMIN, second.company_id, totp=True)
    other = await seeder.user("bob@second.test", EMPLOYEE, second.company_id)
    group = await seeder.running.pool.fetchval(
        "INSERT INTO portal_groups (company_id, name) VALUES ($1, 'Sales') RETURNING id",
        first.company_id,
    )
    return {
        "group": group,
        "people": people,
        "card": await seeder.card(people[EMPLOYEE], first),
        "spare": spare,
        "other_admin": other_admin,
        "other": other,
        "other_card": await seeder.card(other, second),
    }


def _path(template: str, world: dict[str, Any]) -> str:
    return (
        template.replace("{employee_id}", str(world["spare"]["id"]))
        .replace("{card_token}", world["card"])
        .replace("{group_id}", str(world["group"]))
    )


def test_the_table_names_every_route() -> None:
    assert {(route.method, route.path) for route in ROUTES} == set(EXPECTED)
    for route in ROUTES:
        assert {role.value for role in route.roles} == EXPECTED[(route.method, route.path)]


@pytest.mark.parametrize("role", sorted(EVERYONE))
async def test_every_handler_with_every_role(
    role: str, running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    world = await _world(seeder)
    browser = Browser(running)
    browsers.append(browser)
    await browser.sign_in(world["people"][role])
    csrf = await browser.csrf(world["people"][role] and _home(role))
    audit_rows = await running.pool.fetchval("SELECT count(*) FROM portal_audit")
    for (method, template), allowed in EXPECTED.items():
        path = _path(template, world)
        if method == "GET":
            status, _ = await browser.get(path)
        else:
            status, _, _ = await browser.post(path, {"csrf": csrf})
        if role in allowed:
            assert status != 403, f"{role} {method} {path} refused"
            assert status < 500, f"{role} {method} {path} failed with {status}"
        else:
            assert status == 403, f"{role} {method} {path} answered {status}, not 403"
    if role not in (ADMIN, PROGRAM, EMPLOYEE, HOLDER):
        # Read-only roles changed nothing but their own sign-out.
        actions = await running.pool.fetch(
            "SELECT action FROM portal_audit ORDER BY id OFFSET $1", audit_rows
        )
        assert [row["action"] for row in actions] == ["sign_out_everywhere"]


async def test_without_a_session_every_handler_sends_to_sign_in(
    running: Running, browsers: list[Browser]
) -> None:
    browser = Browser(running)
    browsers.append(browser)
    world = {"spare": {"id": 1}, "card": "card-x", "group": 1}
    for method, template in EXPECTED:
        path = _path(template, world)
        if method == "GET":
            async with browser.session.get(running.url + path, allow_redirects=False) as answer:
                status, location = answer.status, answer.headers.get("Location", "")
        else:
            status, _, location = await browser.post(path, {})
        assert (status, location) == (303, "/login"), f"{method} {path}"


def _home(role: str) -> str:
    return {ADMIN: "/company", EMPLOYEE: "/me", HOLDER: "/me"}.get(role, "/admin")


async def test_a_company_admin_never_reaches_another_company(
    running: Running, seeder: Seeder, browsers: list[Browser]
) -> None:
    world = await _world(seeder)
    browser = Browser(running)
    browsers.append(browser)
    await browser.sign_in(world["people"][ADMIN])
    csrf = await browser.csrf("/company")
    other, card = world["other"], world["other_card"]

    for path in (f"/company/employees/{other['id']}", f"/company/cards/{card}"):
        status, page = await browser.get(path)
        assert status == 404 and "bob@second.test" not in page
    status, _, _ = await browser.post(
        f"/company/cards/{card}/state", {"csrf": csrf, "action": "freeze"}
    )
    assert status == 404
    status, _, _ = await browser.post(
        f"/company/employees/{other['id']}/deactivate", {"csrf": csrf}
    )
    assert status == 404

    state = await running.pool.fetchval(
        "SELECT state FROM portal_cards WHERE card_token = $1", card
    )
    active = await running.pool.fetchval(
        "SELECT active FROM portal_users WHERE id = $1", other["id"]
    )
    assert (state, active) == ("ACTIVE", True)
    status, page = await browser.get("/company/cards")
    assert status == 200 and card not in page and world["card"] in page
