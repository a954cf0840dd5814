"""Proves that `pyjit replay` refuses rates and concurrencies it cannot honour before it sends
anything: zero once made it wait forever, NaN and tiny rates crashed it, and huge
concurrencies exhausted the client's sockets and were reported as gateway errors; and that
`pyjit migrate` needs no gateway credentials and names a database it cannot use instead of
showing a driver's traceback."""

import asyncio
import os
import sys
from asyncio.subprocess import PIPE

import pytest

from pyjit.cli import main


@pytest.mark.parametrize(
    "option",
    [
        ["--concurrency", "0"],
        ["--concurrency", "-1"],
        ["--concurrency", "100000"],
        ["--concurrency", "two"],
        ["--rate", "0"],
        ["--rate", "-5"],
        ["--rate", "nan"],
        ["--rate", "inf"],
        ["--rate", "1e-300"],
    ],
)
def test_replay_refuses_rates_and_concurrency_out_of_range(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "no-such-file.csv", *option])
    assert exited.value.code == 2
    assert f"argument {option[0]}" in capsys.readouterr().err


async def _pyjit(*args: str, database_url: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYJIT_GATEWAY_")}
    env["DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pyjit", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_migrate_needs_no_gateway_credentials(database_url: str) -> None:
    code, out, err = await _pyjit("migrate", database_url=database_url)

    assert code == 0, err
    assert "0001_journal" in out


async def test_a_missing_database_is_named_without_a_traceback(database_url: str) -> None:
    missing = database_url.replace("pyjit_test_", "pyjit_missing_")

    code, _, err = await _pyjit("migrate", database_url=missing)

    assert code == 1
    assert "pyjit migrate: cannot use the database" in err
    assert "does not exist" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--json", "--answers"])
def test_replay_refuses_an_output_it_could_not_write_before_sending(
    option: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYJIT_GATEWAY_USERNAME", "processor")
    monkeypatch.setenv("PYJIT_GATEWAY_PASSWORD", "Test-Secret-Password-123!")
    # Port 9 on loopback answers nothing: reaching the network would be another error.
    arguments = ["replay", "no-such-file.csv", "--url", "http://127.0.0.1:9"]

    code = main([*arguments, option, "/no/such/directory/report.json"])

    assert code == 1
    assert f"{option} /no/such/directory/report.json" in capsys.readouterr().out
