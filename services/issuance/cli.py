"""`python -m services.issuance`: serve the issuance and KYC service.

Settings come from the environment: DATABASE_URL (its tables), MARQETA_URL with
MARQETA_APPLICATION_TOKEN and MARQETA_ADMIN_ACCESS_TOKEN (the processor), PYJIT_URL with
PYJIT_ADMIN_USERNAME and PYJIT_ADMIN_PASSWORD (the gateway to mirror into),
PYJIT_ISSUANCE_CARD_PRODUCT (a JIT-funded card product), PYJIT_ISSUANCE_KEYS
(`kid:base64key,...`, the first sealing new values) and PYJIT_ISSUANCE_USERNAME /
PYJIT_ISSUANCE_PASSWORD (what callers of this service send).
"""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import aiohttp
import asyncpg
from aiohttp import web

from services.issuance.app import create_app
from services.issuance.service import GatewayMirror, Issuance
from services.issuance.vault import Vault, VaultError
from services.marqeta import MarqetaClient
from services.marqeta.auth import basic_authorization

REQUIRED = (
    "DATABASE_URL",
    "MARQETA_URL",
    "MARQETA_APPLICATION_TOKEN",
    "MARQETA_ADMIN_ACCESS_TOKEN",
    "PYJIT_URL",
    "PYJIT_ADMIN_USERNAME",
    "PYJIT_ADMIN_PASSWORD",
    "PYJIT_ISSUANCE_CARD_PRODUCT",
    "PYJIT_ISSUANCE_KEYS",
    "PYJIT_ISSUANCE_USERNAME",
    "PYJIT_ISSUANCE_PASSWORD",
)


async def build(env: Mapping[str, str], session: aiohttp.ClientSession) -> web.Application:
    """The application with its connections opened and the card product mirrored."""
    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=8)
    processor = MarqetaClient(
        env["MARQETA_URL"], env["MARQETA_APPLICATION_TOKEN"], env["MARQETA_ADMIN_ACCESS_TOKEN"]
    )
    gateway_auth = basic_authorization(env["PYJIT_ADMIN_USERNAME"], env["PYJIT_ADMIN_PASSWORD"])
    mirror = GatewayMirror(session, env["PYJIT_URL"], gateway_auth)
    issuance = Issuance(pool, processor, mirror, Vault.from_setting(env["PYJIT_ISSUANCE_KEYS"]))
    await issuance.prepare(env["PYJIT_ISSUANCE_CARD_PRODUCT"], env.get("PYJIT_PROGRAM", "pyjit"))
    callers = basic_authorization(env["PYJIT_ISSUANCE_USERNAME"], env["PYJIT_ISSUANCE_PASSWORD"])
    app = create_app(issuance, callers)

    async def close(_: web.Application) -> None:
        await processor.close()
        await pool.close()

    app.on_cleanup.append(close)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.issuance", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    options = parser.parse_args(argv)
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        print(f"issuance: set {', '.join(missing)}", file=sys.stderr)
        return 2

    async def application() -> web.Application:
        session = aiohttp.ClientSession()
        try:
            app = await build(os.environ, session)
        except VaultError as error:
            await session.close()
            raise SystemExit(f"issuance: {error}") from None

        async def close_session(_: web.Application) -> None:
            await session.close()

        app.on_cleanup.append(close_session)
        return app

    web.run_app(application(), host=options.host, port=options.port, print=None)
    return 0
