"""The real binaries on a real terminal: a nexus-server process and tmux panes of nexus-chat."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "e2e password"
TMUX = shutil.which("tmux")
CHAT = shutil.which("nexus-chat")
SERVER = shutil.which("nexus-server")
WIDTH, HEIGHT = 100, 30


def start_server(tmp_path: Path, *flags: str) -> Iterator[int]:
    """A nexus-server process on a free port (yielded), with extra `flags`; stopped afterwards."""
    proc, port = launch(tmp_path, *flags)
    try:
        yield port
    finally:
        stop(proc)


def launch(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], int]:
    """A nexus-server process (its data in `tmp_path`) and the port it listens on, once it
    does: a free one, unless `flags` give `--port`; `stop()` it afterwards."""
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
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 15
    line = ""
    while "listening on" not in line:
        ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        if not ready or proc.poll() is not None:
            stop(proc)
            pytest.fail(f"nexus-server did not start: {line!r}")
        line = proc.stdout.readline()
    return proc, int(line.rsplit(":", 1)[1].split()[0])


def stop(proc: subprocess.Popen[str]) -> None:
    """Ends a server `launch` started, if it is still running."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


class Tmux:
    """A private tmux server (its own socket), so tests never touch the user's sessions.

    Every client started gets its own XDG state directory under `home`, so
    input history never reaches the real one.
    """

    def __init__(self, home: Path) -> None:
        self.socket = f"nexus-test-{uuid.uuid4().hex[:12]}"
        self.path = ""
        self.home = home

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=True, timeout=10
        )
        return result.stdout

    def start(self, name: str, *command: str, env: dict[str, str] | None = None) -> None:
        env = {
            "XDG_STATE_HOME": str(self.home / name / "state"),
            "NEXUS_KNOWN_HOSTS": str(self.home / name / "known_hosts"),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            **(env or {}),
        }
        flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        self("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", name, *flags, *command)
        self.path = self("display-message", "-p", "#{socket_path}").strip()

    def chat(self, name: str, port: int, *flags: str, user: str | None = None) -> None:
        """nexus-chat logged in (registered with --register) as `user` (by default `name`,
        the pane's name), with no questions."""
        user = user or name
        self.start(
            name,
            CHAT,
            "127.0.0.1",
            str(port),
            "--user",
            user,
            *flags,
            env={"NEXUS_PASSWORD": PASSWORD},
        )
        self.wait_for(name, f"{user}@#general")

    def kill(self) -> None:
        """Ends the tmux server and removes its socket file."""
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        if self.path:
            Path(self.path).unlink(missing_ok=True)

    def screen(self, name: str, colours: bool = False) -> str:
        return self("capture-pane", "-p", *(["-e"] if colours else []), "-t", name)

    def keys(self, name: str, text: str, enter: bool = True) -> None:
        self("send-keys", "-t", name, "-l", text)
        if enter:
            self("send-keys", "-t", name, "Enter")

    def press(self, name: str, *keys: str) -> None:
        """Named keys, as tmux spells them: `M-2`, `C-l`, `End`."""
        self("send-keys", "-t", name, *keys)

    def wait_for(
        self,
        name: str,
        text: str | re.Pattern[str] | Callable[[str], object],
        timeout: float = 15,
    ) -> str:
        """Polls the screen until `text` is on it (a pattern matches, a test passes)."""
        deadline = time.monotonic() + timeout
        if isinstance(text, re.Pattern):
            found: Callable[[str], object] = text.search
        elif isinstance(text, str):
            found = lambda screen: text in screen  # noqa: E731
        else:
            found = text
        while not found(screen := self.screen(name)):
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never appeared on {name}'s screen:\n{screen}")
            time.sleep(0.05)
        return screen

    def tty(self, name: str) -> str:
        return self("display-message", "-p", "-t", name, "#{pane_tty}").strip()


def tmux_for(tmp_path: Path) -> Iterator[Tmux]:
    if TMUX is None:
        pytest.skip("tmux is not installed")
    if CHAT is None:
        pytest.skip("nexus-chat is not installed (pip install -e .)")
    server = Tmux(tmp_path)
    try:
        yield server
    finally:
        server.kill()


class Raw:
    """Another client on a plain socket, speaking the wire protocol by hand: what it
    sends is exactly what a test says, and it keeps the events it reads."""

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.lines = self.sock.makefile("r", encoding="utf-8")
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.lines.readline()  # hello
        self.ok("register", username=name, password=PASSWORD)

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """The reply to `cmd` (events read before it are kept)."""
        rid = next(self._ids)
        self.sock.settimeout(10)  # event() may have shortened it
        self.sock.sendall(json.dumps({"id": rid, "cmd": cmd, **args}).encode() + b"\n")
        while True:
            frame = json.loads(self.lines.readline())
            if frame.get("id") == rid:
                return frame  # type: ignore[no-any-return]
            self.events.append(frame)

    def ok(self, cmd: str, **args: Any) -> dict[str, Any]:
        reply = self.request(cmd, **args)
        assert reply["ok"], reply
        return reply

    def event(self, name: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The next `name` event not taken yet with the fields `match` (others are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, frame in enumerate(self.events):
                fits = all(frame.get(key) == value for key, value in match.items())
                if frame.get("event") == name and fits:
                    return self.events.pop(index)
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.lines.readline()))
            except TimeoutError:
                pytest.fail(f"no {name} event came to {self.name}")

    def close(self) -> None:
        self.lines.close()
        self.sock.close()
