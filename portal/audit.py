"""The audit log: every action that changes something, with who, what, when and from where."""

from datetime import UTC, datetime
from typing import Any

import orjson

from portal.roles import Viewer
from pyjit.clock import Clock


async def record(
    connection: Any,
    clock: Clock,
    viewer: Viewer,
    action: str,
    target: str,
    address: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await connection.execute(
        """INSERT INTO portal_audit
           (at, actor_id, actor_email, actor_role, company_id, action, target, detail, address)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)""",
        datetime.fromtimestamp(clock.now_ms() / 1000, UTC),
        viewer.user_id,
        viewer.email,
        viewer.role.value,
        viewer.company_id,
        action,
        target,
        orjson.dumps(detail or {}).decode(),
        address,
    )
