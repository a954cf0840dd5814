"""Proves the main job end to end on real data: `pyjit replay` of
../shared/data/card_transactions_multicard_sample.csv (30,000 transactions, 2,750 cards)
against a real `pyjit serve` process reconciles every account to the cent, and a second
replay of the same file changes nothing and receives the same answers. Skipped only when the
data file is absent (a user's machine without ../shared)."""

import asyncio
from pathlib import Path

import orjson
import pytest

from tests.gateway.test_faults import (
    REPO,
    free_port,
    read_answers,
    replay,
    server_env,
    serving,
)

DATA = REPO.parent / "shared" / "data" / "card_transactions_multicard_sample.csv"


@pytest.mark.timeout(600)
@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is absent")
async def test_replay_of_the_multicard_file_reconciles(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, free_port(), tmp_path)
    with serving(env, tmp_path / "server.log", stop_within_s=60):
        first = replay(env, DATA, tmp_path / "a1.jsonl", tmp_path / "r1.json")
        assert await asyncio.to_thread(first.wait, 500) == 0
        second = replay(env, DATA, tmp_path / "a2.jsonl", tmp_path / "r2.json")
        assert await asyncio.to_thread(second.wait, 500) == 0

    report = orjson.loads((tmp_path / "r1.json").read_bytes())
    assert report["transactions"] == 30_000
    assert report["reconciliation"]["ok"] and report["reconciliation"]["accounts"] > 1000
    assert report["errors"] == 0
    assert report["declines_by_reason"]  # the profile's controls and balances do decline
    assert read_answers(tmp_path / "a1.jsonl") == read_answers(tmp_path / "a2.jsonl")
