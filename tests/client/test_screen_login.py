"""What the full-screen `nexus-chat --user NAME` logs in with, and what it leaves in tokens.json.

$NEXUS_PASSWORD, when set, is the one used, even with a token saved by
`nexus-chat login`, so a wrong one exits 1 before the screen opens; the
token is used only without it. The screen writes tokens.json only to
replace a token `login` saved. The real binary, against a real server,
with the test's own HOME and XDG_CONFIG_HOME.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from nexus.client.tokens import TokenStore
from tests.client import tmux as terminal
from tests.client.conftest import PASSWORD


def chat_command() -> list[str]:
    """The installed `nexus-chat`, or the same program through `python -m`."""
    exe = shutil.which("nexus-chat")
    return [exe] if exe else [sys.executable, "-m", "nexus.client"]


def private_home(tmp_path: Path, password: str | None) -> dict[str, str]:
    """The test's own HOME and config directory, and NEXUS_PASSWORD as given (or unset)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_CHAT_")}
    env.pop("NEXUS_PASSWORD", None)
    if password is not None:
        env["NEXUS_PASSWORD"] = password
    return env | {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def saved_tokens(tmp_path: Path) -> list[Path]:
    """Every tokens.json a run could have written under the test's home or config directory."""
    places = [tmp_path / "config" / "nexus", tmp_path / "home" / ".config" / "nexus"]
    return [place / "tokens.json" for place in places if (place / "tokens.json").exists()]


async def run_chat(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The program with no terminal: stdin is /dev/null, so it cannot ask anything."""
    proc = await asyncio.create_subprocess_exec(
        *chat_command(),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_a_wrong_password_exits_1_even_with_a_token_saved_by_login(server, tmp_path):
    """`nexus-chat --user ana` with a wrong NEXUS_PASSWORD logs in with that password, not
    with the token `nexus-chat login` saved: one line saying so, exit 1, no screen, and
    tokens.json left as it was."""
    await server.user("ana")
    where = (server.host, str(server.port))
    code, _, err = await run_chat(
        "login", *where, "--user", "ana", env=private_home(tmp_path, PASSWORD)
    )
    assert code == 0, err
    [saved] = saved_tokens(tmp_path)
    kept = saved.read_text()
    code, _, err = await run_chat(
        *where, "--user", "ana", env=private_home(tmp_path, "not the password")
    )
    assert code == 1, f"the screen opened on the saved token instead (exit {code}): {err}"
    assert err.startswith("nexus-chat: login failed: wrong username or password")
    assert "NEXUS_PASSWORD" in err and "saved token" in err
    assert err.count("\n") == 1 and "not a terminal" not in err
    assert saved_tokens(tmp_path) == [saved] and saved.read_text() == kept


@pytest.mark.e2e
def test_the_screen_saves_no_token_and_replaces_only_the_one_login_saved(tmux, tmp_path):
    """A password login on the screen writes no tokens.json; after `nexus-chat login`,
    NEXUS_PASSWORD still comes first and its token replaces the saved one; without
    NEXUS_PASSWORD the saved token opens the screen and is kept."""
    servers = terminal.start_server(tmp_path)
    port = next(servers)
    try:
        command = (terminal.CHAT or "nexus-chat", "127.0.0.1", str(port), "--user", "ana")
        env = private_home(tmp_path, terminal.PASSWORD)
        keep = ("HOME", "XDG_CONFIG_HOME", "NEXUS_PASSWORD")
        tmux.start("ana", *command, "--register", env={k: env[k] for k in keep})
        tmux.wait_for("ana", "ana@#general")
        tmux.keys("ana", "/quit")
        assert saved_tokens(tmp_path) == []

        login = asyncio.run(run_chat("login", *command[1:], env=env))
        assert login[0] == 0, login[2]
        [saved] = saved_tokens(tmp_path)
        store = TokenStore(saved)
        first = store.get("127.0.0.1", port, "ana")
        tmux.start("ana2", *command, env={k: env[k] for k in keep})
        tmux.wait_for("ana2", "ana@#general")
        tmux.keys("ana2", "/quit")
        second = store.get("127.0.0.1", port, "ana")
        assert second not in (None, first)  # the password logged in, its token replaced

        tmux.start("ana3", *command, env={**{k: env[k] for k in keep}, "NEXUS_PASSWORD": ""})
        screen = tmux.wait_for("ana3", "ana@#general")
        assert "Password" not in screen
        tmux.keys("ana3", "/quit")
        assert store.get("127.0.0.1", port, "ana") == second
        assert saved_tokens(tmp_path) == [saved]
    finally:
        next(servers, None)
