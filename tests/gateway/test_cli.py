"""Proves that `pyjit replay` refuses rates and concurrencies it cannot honour before it sends
anything: zero once made it wait forever, NaN and tiny rates crashed it, and huge
concurrencies exhausted the client's sockets and were reported as gateway errors."""

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
