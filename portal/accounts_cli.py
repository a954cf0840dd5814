"""`pyjit user create`: portal accounts from the command line, for the first program admin
and for tests. The password comes from PYJIT_USER_PASSWORD or a prompt, never an argument
(arguments show in the process list)."""

import argparse
import asyncio
import getpass
import os
import sys

from portal import users
from portal.passwords import password_problem
from portal.roles import COMPANY_ROLES, HOLDER_ROLES, Role
from pyjit.clock import SystemIds
from pyjit.config import load_config
from pyjit.database import create_pool, open_database

PASSWORD_VARIABLE = "PYJIT_USER_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    user = commands.add_parser("user", help="manage portal accounts")
    actions = user.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a portal account")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True, help="the person's full name")
    create.add_argument("--company", help="business token of the company (company roles)")
    create.add_argument("--config", help="TOML configuration file (or PYJIT_CONFIG)")
    create.set_defaults(handler=run_create)


def run_create(args: argparse.Namespace) -> int:
    role = Role(args.role)
    if (role in COMPANY_ROLES) != (args.company is not None):
        print(
            f"pyjit user: --company is {'needed' if role in COMPANY_ROLES else 'not used'} "
            f"for {role}",
            file=sys.stderr,
        )
        return 2
    password = os.environ.get(PASSWORD_VARIABLE) or getpass.getpass("Password: ")
    problem = password_problem(password)
    if problem is not None:
        print(f"pyjit user: {problem}", file=sys.stderr)
        return 2
    config = load_config(args.config, demo=True, ids=SystemIds())
    database = open_database(config.database_url, config.home)
    try:
        return asyncio.run(_create(database.url, args, role, password))
    finally:
        database.release()


async def _create(url: str, args: argparse.Namespace, role: Role, password: str) -> int:
    from pyjit import migrations

    pool = await create_pool(url)
    try:
        async with pool.acquire() as connection:
            await migrations.migrate(connection)
            company_id = None
            if args.company is not None:
                company_id = await connection.fetchval(
                    "SELECT id FROM portal_companies WHERE business_token = $1", args.company
                )
                if company_id is None:
                    print(f"pyjit user: no company {args.company}", file=sys.stderr)
                    return 1
            holder = "h-" + SystemIds().token(20) if role in HOLDER_ROLES else None
            try:
                user_id = await users.create_user(
                    connection, args.email, args.name, role, password, company_id, holder
                )
            except users.UserError as error:
                print(f"pyjit user: {error}", file=sys.stderr)
                return 1
    finally:
        await pool.close()
    print(f"created {role} {users.normal_email(args.email)} (id {user_id})")
    return 0
