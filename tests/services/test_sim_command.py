"""`pyjit sim` serves the processor simulator: it proves the subcommand hands its whole
command line to the simulator (its own --help included) and that the server answers the
processor's REST API with the credentials given on that command line."""

import asyncio
import socket
import subprocess
import sys

import aiohttp

from services.marqeta.auth import basic_authorization


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_sim_help_is_the_simulators() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyjit", "sim", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "usage: pyjit sim" in done.stdout
    assert "--webhook-backoff-scale" in done.stdout


def test_unknown_options_of_other_commands_are_still_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyjit", "migrate", "--no-such-option"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-option" in done.stderr


async def test_sim_serves_the_rest_api() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "pyjit", "sim", "--addr", f"127.0.0.1:{port}"]
    command += ["--application-token", "app-x", "--admin-access-token", "admin-y"]
    process = await asyncio.create_subprocess_exec(*command)
    try:
        url = f"http://127.0.0.1:{port}/v3/users"
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    headers = {"Authorization": basic_authorization("app-x", "admin-y")}
                    async with session.get(url, headers=headers) as response:
                        assert response.status == 200
                        assert (await response.json())["data"] == []
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("pyjit sim never answered")
            async with session.get(url) as response:
                assert response.status == 401
    finally:
        process.terminate()
        await process.wait()
