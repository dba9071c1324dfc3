"""End to end: nexus-chat (in tmux) and `tail`, given several nodes, move from
one that fails to the next by themselves and miss nothing: two nexus-server
processes on one PostgreSQL database one after the other, then two nodes of a
live cluster (`--bus`) side by side."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.client.test_servers import refusing_port
from tests.client.tmux import CHAT, PASSWORD, Tmux, launch, stop
from tests.postgres import binaries, cluster
from tests.redis_server import installed, redis_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.long,
    pytest.mark.skipif(binaries() is None, reason="PostgreSQL is not installed"),
]


def node(
    tmp_path: Path, name: str, database: str, port: int = 0, *flags: str
) -> tuple[subprocess.Popen[str], int]:
    """A server on `database`, its own files under tmp_path/name, listening on `port`."""
    (tmp_path / name).mkdir(exist_ok=True)
    return launch(tmp_path / name, "--store", "postgresql", "--database", database,
                  "--port", str(port), *flags)  # fmt: skip


def environment(password: str | None) -> dict[str, str]:
    """This test's environment, with `password` as $NEXUS_PASSWORD (None: none)."""
    env = {k: v for k, v in os.environ.items() if k != "NEXUS_PASSWORD"}
    return env if password is None else {**env, "NEXUS_PASSWORD": password}


def chat(*args: str) -> subprocess.CompletedProcess[str]:
    """A script mode of nexus-chat run to its end, with the password."""
    return subprocess.run(
        [CHAT, *args], env=environment(PASSWORD), capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def once_in_order(screen: str, texts: list[str]) -> bool:
    """Whether each of `texts` is on the screen once, in this order."""
    rows = [row for row in screen.splitlines() if any(text in row for text in texts)]
    return [next(t for t in texts if t in row) for row in rows] == texts


def test_the_client_and_tail_move_to_the_next_node_and_miss_nothing(tmux: Tmux, tmp_path):
    """ana's client and bob's tail are given [A, B]; carol's [B, A], with B down at
    first, so she starts on A. A is killed: with both down the client says so; B
    comes up on the same database and carol says something through it at once.
    Both clients and tail are on B by themselves, with each message once, in order."""
    database = cluster().database_for(tmp_path / "nodes")
    port_b = refusing_port()
    a, port_a = node(tmp_path, "a", database)
    b: subprocess.Popen[str] | None = None
    try:
        first, second = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
        both = f"{first},{second}"
        env = {"NEXUS_PASSWORD": PASSWORD}
        tmux.start("ana", CHAT, "--server", both, "--user", "ana", "--register", env=env)
        tmux.wait_for("ana", "ana@#general")
        tmux.start(
            "carol", CHAT, "--server", second, "--server", first, "--user", "carol",
            "--register", env=env,
        )  # fmt: skip
        tmux.wait_for("carol", re.compile(rf"carol@#general.*{re.escape(first)}"))
        login = chat("login", "--server", both, "--user", "bob", "--register")
        assert login.returncode == 0, login.stderr
        tail = subprocess.Popen(
            [CHAT, "tail", "--server", first, "--server", second, "--user", "bob", "--count", "3"],
            env=environment(None),  # logs in with the token `login` saved, on either node
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            tmux.wait_for("ana", "People (3/3)")  # bob too: his tail is in
            tmux.keys("ana", "before the move")
            tmux.wait_for("carol", "ana │ before the move")

            os.kill(a.pid, signal.SIGKILL)
            a.wait(10)
            tmux.wait_for("ana", f"none of {first}, {second} answers")
            b, _ = node(tmp_path, "b", database, port_b)
            said = chat("send", second, "--user", "carol", "--room", "general", "said while moving")
            assert said.returncode == 0, said.stderr

            for name in ("ana", "carol"):
                tmux.wait_for(name, f"moved to {second}: {first} was lost", timeout=30)
                tmux.wait_for(name, re.compile(rf"@#general.*{re.escape(second)}"))
            tmux.keys("ana", "after the move")
            texts = ["before the move", "said while moving", "after the move"]
            for name in ("ana", "carol"):
                tmux.wait_for(name, lambda screen: once_in_order(screen, texts))
            out, err = tail.communicate(timeout=30)
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.communicate()
        assert tail.returncode == 0, err
        assert out.splitlines() == [
            "#general ana: before the move",
            "#general carol: said while moving",
            "#general ana: after the move",
        ]
        assert f"moved to {second}" in err
    finally:
        stop(a)
        if b is not None:
            stop(b)


@pytest.mark.skipif(not installed(), reason="redis-server is not installed")
def test_on_a_live_cluster_the_client_moves_to_the_other_node(tmux: Tmux, tmp_path):
    """Two nodes of one cluster, both up: ana's client is on A, carol's on B.
    A is SIGKILLed while carol goes on talking through B: ana's client moves
    to B by itself and shows each message once, in order."""
    database = cluster().database_for(tmp_path / "live")
    bus = ("--bus", redis_server().url)
    a, port_a = node(tmp_path, "a", database, 0, *bus, "--node", "a")
    b, port_b = node(tmp_path, "b", database, 0, *bus, "--node", "b")
    try:
        first, second = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
        env = {"NEXUS_PASSWORD": PASSWORD}
        tmux.start("ana", CHAT, "--server", f"{first},{second}", "--user", "ana", "--register",
                   env=env)  # fmt: skip
        tmux.wait_for("ana", re.compile(rf"ana@#general.*{re.escape(first)}"))
        tmux.start("carol", CHAT, "--server", second, "--user", "carol", "--register", env=env)
        tmux.wait_for("carol", "carol@#general")
        tmux.keys("ana", "from a")
        tmux.wait_for("carol", "ana │ from a")
        os.kill(a.pid, signal.SIGKILL)
        a.wait(10)
        tmux.keys("carol", "while ana moves")
        tmux.wait_for("ana", f"moved to {second}: {first} was lost", timeout=30)
        tmux.keys("ana", "from b")
        texts = ["from a", "while ana moves", "from b"]
        for name in ("ana", "carol"):
            tmux.wait_for(name, lambda screen: once_in_order(screen, texts))
    finally:
        stop(a)
        stop(b)
