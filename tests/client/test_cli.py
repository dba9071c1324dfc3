"""The nexus-chat command line: flags, and failures that end in one line, never a traceback."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from nexus import __version__
from tests.client.conftest import PASSWORD


async def run_cli(*args: str, password: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEXUS_PASSWORD"}
    if password is not None:
        env["NEXUS_PASSWORD"] = password
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nexus.client",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode, out.decode(), err.decode()


async def test_version_and_help():
    """--version prints the package version; --help lists the flags."""
    code, out, _ = await run_cli("--version")
    assert (code, out.strip()) == (0, f"nexus-chat {__version__}")
    code, out, _ = await run_cli("--help")
    assert code == 0 and "--user NAME" in out and "--register" in out


async def test_refused_connection_is_one_line_and_exit_1():
    """Nothing listening on the port: one line on stderr, exit code 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = await run_cli("127.0.0.1", str(port), "--user", "ana", password=PASSWORD)
    assert code == 1
    assert err.strip() == f"nexus-chat: cannot connect to 127.0.0.1:{port}: connection refused"


async def test_wrong_password_is_one_line_and_exit_1(server, connect):
    """A wrong password from NEXUS_PASSWORD ends with `login failed` and no traceback."""
    await connect("carol")
    code, _, err = await run_cli(
        server.host, str(server.port), "--user", "carol", password="not the password"
    )
    assert code == 1
    assert err.startswith("nexus-chat: login failed:") and err.count("\n") == 1


async def test_asking_for_a_password_without_a_terminal_fails_cleanly(server):
    """--user without NEXUS_PASSWORD and no terminal to ask on: a hint, exit 1."""
    code, _, err = await run_cli(server.host, str(server.port), "--user", "dave")
    assert code == 1 and "NEXUS_PASSWORD" in err and "Traceback" not in err
