"""Fixtures of the gRPC tests: a cluster of real processes and extra fresh databases."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database
from tests.grpc.cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
async def second_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async for url in fresh_database(postgres_admin_url):
        yield url


@pytest.fixture
async def third_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async for url in fresh_database(postgres_admin_url):
        yield url
