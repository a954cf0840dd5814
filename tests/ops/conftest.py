"""The gateway fixtures of tests/gateway, shared with the operations tests."""

from tests.gateway.conftest import gateway, session

__all__ = ["gateway", "session"]
