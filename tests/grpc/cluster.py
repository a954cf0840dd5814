"""Real `pyjit serve` processes on loopback for the gRPC tests: deciders, standbys and edges,
each against its own fresh database, reached over real gRPC and HTTP.

(The fixtures in conftest.py use these; test files import them from here.)"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.gateway.conftest import AUTH, PASSWORD, USERNAME, jit_body, program

__all__ = ["AUTH", "jit_body", "program"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    """One `pyjit serve` process."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    grpc_addr: str = ""
    http_url: str = ""
    database_url: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


@dataclass
class Cluster:
    """Starts processes and stops every one of them at the end of a test."""

    tmp: Path
    started: list[Served] = field(default_factory=list)

    def start(
        self,
        role: str,
        database_url: str,
        *,
        standby: bool = False,
        shards: str = "",
        grpc_port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Served:
        grpc_addr = f"127.0.0.1:{grpc_port or free_port()}"
        http_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PYJIT_HTTP_ADDR": f"127.0.0.1:{http_port}",
            "PYJIT_GRPC_ADDR": grpc_addr,
            "PYJIT_GATEWAY_USERNAME": USERNAME,
            "PYJIT_GATEWAY_PASSWORD": PASSWORD,
            "PYJIT_EXPIRY_INTERVAL_S": "3600",
            "PYJIT_LOG_LEVEL": "INFO",
            "PYJIT_SHARDS": shards,
            **(extra_env or {}),
        }
        log_path = self.tmp / f"{role}-{len(self.started)}.log"
        command = [sys.executable, "-m", "pyjit", "serve", "--role", role]
        if standby:
            command.append("--standby")
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        served = Served(
            role, process, log_path, grpc_addr, f"http://127.0.0.1:{http_port}", database_url
        )
        self.started.append(served)
        return served

    def stop_all(self) -> None:
        for served in self.started:
            if served.process.poll() is None:
                served.process.kill()
                served.process.wait(10)


async def wait_serving(served: Served, timeout_s: float = 60) -> None:
    """Wait until the decider's gRPC health service says SERVING."""
    async with grpc.aio.insecure_channel(served.grpc_addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if served.process.poll() is not None:
                raise AssertionError(f"{served.role} exited:\n{served.log()}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{served.role} never served:\n{served.log()}")
            await asyncio.sleep(0.05)


async def wait_http(served: Served, timeout_s: float = 60) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if served.process.poll() is not None:
                raise AssertionError(f"{served.role} exited:\n{served.log()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{served.http_url}/health") as response:
                    if response.status == 200:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{served.role} never answered:\n{served.log()}")
            await asyncio.sleep(0.05)


async def post_jit(
    session: aiohttp.ClientSession, url: str, body: bytes, auth: str = AUTH
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "Authorization": auth}
    async with session.post(f"{url}/jit", data=body, headers=headers) as response:
        return response.status, await response.read()


async def post_program(session: aiohttp.ClientSession, url: str, document: Any) -> Any:
    async with session.post(
        f"{url}/admin/program", data=orjson.dumps(document), headers={"Authorization": AUTH}
    ) as response:
        payload = orjson.loads(await response.read())
        assert response.status == 200, payload
        return payload


async def decision_tokens(database_url: str) -> set[str]:
    """The JIT tokens with a decision in the journal of `database_url`."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT token FROM journal WHERE kind = 'decision'")
    finally:
        await connection.close()
    return {row["token"] for row in rows}
