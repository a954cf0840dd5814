"""The gateway and cluster fixtures of tests/gateway and tests/grpc, shared with the
operations tests."""

from tests.gateway.conftest import gateway, session
from tests.grpc.conftest import cluster, second_database_url

__all__ = ["cluster", "gateway", "second_database_url", "session"]
