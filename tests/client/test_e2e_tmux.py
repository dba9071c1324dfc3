"""End to end: the installed nexus-server and two nexus-chat screens in tmux."""

from __future__ import annotations

import select
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "e2e password"
TMUX = shutil.which("tmux")
CHAT = shutil.which("nexus-chat")
SERVER = shutil.which("nexus-server")


@pytest.fixture
def server_port(tmp_path: Path) -> Iterator[int]:
    """A nexus-server process on a free port; stopped after the test."""
    if SERVER is None:
        pytest.skip("nexus-server is not installed (pip install -e .)")
    proc = subprocess.Popen(
        [
            SERVER,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            str(tmp_path / "data.json"),
            "--log",
            str(tmp_path / "server.log"),
            "--rate-limit",
            "off",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        line = ""
        while "listening on" not in line:
            ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
            if not ready or proc.poll() is not None:
                pytest.fail(f"nexus-server did not start: {line!r}")
            line = proc.stdout.readline()
        yield int(line.rsplit(":", 1)[1].split()[0])
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


class Tmux:
    """A private tmux server (its own socket), so tests never touch the user's sessions."""

    def __init__(self) -> None:
        self.socket = f"nexus-test-{uuid.uuid4().hex[:12]}"
        self.path = ""

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=True, timeout=10
        )
        return result.stdout

    def start(self, name: str, *command: str, env: dict[str, str] | None = None) -> None:
        flags = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        self("new-session", "-d", "-x", "100", "-y", "30", "-s", name, *flags, *command)
        self.path = self("display-message", "-p", "#{socket_path}").strip()

    def kill(self) -> None:
        """Ends the tmux server and removes its socket file."""
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        if self.path:
            Path(self.path).unlink(missing_ok=True)

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name)

    def keys(self, name: str, text: str, enter: bool = True) -> None:
        self("send-keys", "-t", name, "-l", text)
        if enter:
            self("send-keys", "-t", name, "Enter")

    def wait_for(self, name: str, text: str, timeout: float = 15) -> str:
        """Polls the screen until `text` is on it."""
        deadline = time.monotonic() + timeout
        while text not in (screen := self.screen(name)):
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never appeared on {name}'s screen:\n{screen}")
            time.sleep(0.05)
        return screen


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if TMUX is None:
        pytest.skip("tmux is not installed")
    if CHAT is None:
        pytest.skip("nexus-chat is not installed (pip install -e .)")
    server = Tmux()
    try:
        yield server
    finally:
        server.kill()


def test_two_users_chat_and_dm_in_two_terminals(tmux, server_port):
    """ana starts scripted, bob registers at the prompts; each sees the other's words."""
    port = str(server_port)
    tmux.start(
        "ana",
        CHAT,
        "127.0.0.1",
        port,
        "--user",
        "ana",
        "--register",
        env={"NEXUS_PASSWORD": PASSWORD},
    )
    tmux.wait_for("ana", "ana@#general")

    tmux.start("bob", CHAT, "127.0.0.1", port)
    tmux.wait_for("bob", "Log in or register?")
    tmux.keys("bob", "r")
    tmux.wait_for("bob", "Username:")
    tmux.keys("bob", "bob")
    tmux.wait_for("bob", "Password (not shown):")
    tmux.keys("bob", PASSWORD)
    screen = tmux.wait_for("bob", "Password again:")
    assert PASSWORD not in screen and "*" not in screen  # not echoed, not even its length
    tmux.keys("bob", PASSWORD)
    tmux.wait_for("bob", "bob@#general")

    tmux.keys("ana", "hello bob, [bold]not bold[/]")
    tmux.wait_for("bob", "ana: hello bob, [bold]not bold[/]")
    tmux.keys("bob", "/dm ana psst")
    tmux.wait_for("ana", "DM <- bob: psst")
    tmux.wait_for("bob", "DM -> ana: psst")

    tmux.keys("bob", "/quit")
    deadline = time.monotonic() + 10
    while "bob" in tmux("list-sessions", "-F", "#{session_name}").split():
        assert time.monotonic() < deadline, "bob's client did not exit on /quit"
        time.sleep(0.05)
    tmux.wait_for("ana", "bob is offline")
