"""`nexus-chat send`, `tail`, `login` and `ping`: the real binary against a real server.

Every run has no terminal (stdin is a pipe or /dev/null) and must draw no
screen: the output is plain lines, the exit status says what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from nexus.client.tokens import TokenStore
from tests.client.conftest import PASSWORD, until


def chat_command() -> list[str]:
    """The installed `nexus-chat`, or the same program through `python -m`."""
    exe = shutil.which("nexus-chat")
    return [exe] if exe else [sys.executable, "-m", "nexus.client"]


def environment(password: str | None = PASSWORD, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_CHAT_")}
    env.pop("NEXUS_PASSWORD", None)
    if password is not None:
        env["NEXUS_PASSWORD"] = password
    env.update(extra)
    return env


_running: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def no_leftovers():
    """Programs a failed test left running are killed."""
    yield
    while _running:
        proc = _running.pop()
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *chat_command(),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or environment(),
    )
    _running.append(proc)
    return proc


async def chat(
    *args: str, stdin: str | bytes = "", env: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, str, str]:
    proc = await spawn(*args, env=env)
    data = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = await asyncio.wait_for(proc.communicate(data), timeout)
    assert b"\x1b[" not in out + err, "no screen and no terminal codes"
    assert b"Traceback" not in err, err.decode()
    return proc.returncode or 0, out.decode(), err.decode()


def at(server) -> tuple[str, str]:
    return server.host, str(server.port)


async def texts(peer, n: int, event: str = "message") -> list[str]:
    return [(await peer.event(event))["text"] for _ in range(n)]


async def test_send_text_is_acknowledged_and_delivered(server):
    """`send HOST PORT --user --room TEXT` exits 0 once the message is acknowledged."""
    await server.user("ana")
    watcher = await server.user("bob")
    code, out, err = await chat("send", *at(server), "--user", "ana", "--room", "general", "hi")
    assert (code, out, err) == (0, "", "")
    assert (await watcher.event("message"))["text"] == "hi"


async def test_send_sends_each_line_of_stdin_as_one_message(server):
    """Every non-blank stdin line is one message, in order; CRLF endings are trimmed."""
    await server.user("ana")
    watcher = await server.user("bob")
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general",
        stdin="one\n\ntwo\r\n  three  \n",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert await texts(watcher, 3) == ["one", "two", "  three  "]


async def test_send_to_a_user_is_a_dm_and_to_a_new_room_joins_it(server):
    """--to USER sends a DM; --room of a room the account is not in joins it first."""
    await server.user("ana")
    bob = await server.user("bob")
    assert (await chat("send", *at(server), "--user", "ana", "--to", "bob", "psst"))[0] == 0
    dm = await bob.event("dm")
    assert (dm["from"], dm["text"]) == ("ana", "psst")
    await bob.ok("join", room="tech")
    assert (await chat("send", *at(server), "--user", "ana", "--room", "#tech", "in"))[0] == 0
    assert (await bob.event("message", room="tech"))["text"] == "in"


async def test_send_plain_is_shown_as_typed(server):
    """--plain marks every message sent as not to be formatted (logs, program output)."""
    await server.user("ana")
    watcher = await server.user("bob")
    args = ("send", *at(server), "--user", "ana", "--room", "general", "--plain")
    assert (await chat(*args, stdin="**build** ok\n> 3 warnings\n"))[0] == 0
    for text in ("**build** ok", "> 3 warnings"):
        event = await watcher.event("message")
        assert (event["text"], event.get("plain")) == (text, True)


async def test_a_refused_line_is_reported_and_exits_1_while_the_rest_is_sent(server):
    """A message the server refuses, or a line that is not UTF-8: stderr names the line
    and why, the rest is sent, exit 1."""
    await server.user("ana")
    watcher = await server.user("bob")
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general",
        stdin=b"before\n" + b"x" * 4001 + b"\nbad \xff byte\nafter\n",
    )  # fmt: skip
    assert code == 1
    assert "line 2: not sent" in err and "too_long" in err
    assert "line 3: not sent: not valid UTF-8" in err
    assert await texts(watcher, 2) == ["before", "after"]


async def test_send_waits_out_flood_control_instead_of_failing(start_server):
    """Past the burst, `rate_limited` is waited out using retry_after: all acknowledged."""
    server = await start_server(rate_limit=True, message_burst=3, message_rate=10.0)
    await server.user("ana")
    watcher = await server.user("bob")
    lines = [f"m{i}" for i in range(12)]
    started = time.monotonic()
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general", stdin="\n".join(lines)
    )
    assert (code, err) == (0, "")
    assert time.monotonic() - started >= 0.5  # 9 past the burst at 10 a second
    assert await texts(watcher, 12) == lines


@pytest.mark.parametrize(
    "args",
    [
        ["--user", "ana"],  # neither --room nor --to
        ["--user", "ana", "--room", "general", "--to", "bob"],
        ["--room", "general"],  # no user
        ["--user", "ana", "--room", "general", "--password", "x"],  # never a password flag
        ["host", "notaport", "x", "--user", "ana", "--room", "general"],
        ["--user", "ana", "--room", "general", "--broadcast", "x"],  # not in a thread
        ["--user", "ana", "--room", "general", "--thread", "first", "x"],
    ],
)
async def test_usage_errors_exit_2(args):
    """Missing or contradictory arguments, or a password flag: exit 2, nothing sent."""
    code, _, err = await chat("send", *args)
    assert code == 2 and err


async def test_wrong_or_missing_credentials_exit_1_with_the_reason(server):
    """A wrong password: `login ... failed`; none at all: a hint to log in, exit 1."""
    await server.user("ana")
    args = ("send", *at(server), "--user", "ana", "--room", "general", "hi")
    code, _, err = await chat(*args, env=environment(password="not the password"))
    assert code == 1 and "login as ana" in err and "auth_failed" in err
    code, _, err = await chat(*args, env=environment(password=None))
    assert code == 1 and "nexus-chat login" in err and "NEXUS_PASSWORD" in err


async def test_a_refused_connection_exits_1():
    """Nothing listening: one line naming the address, exit 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    code, _, err = await chat("send", "127.0.0.1", port, "--user", "ana", "--to", "bob", "x")
    assert code == 1
    assert err.strip() == f"nexus-chat: cannot connect to 127.0.0.1:{port}: connection refused"


async def test_login_saves_a_private_token_that_send_uses_without_a_password(server, tmp_path):
    """`login` stores a token (0600 file, 0700 directory); `send` then needs no password."""
    await server.user("ana")
    code, out, _ = await chat("login", *at(server), "--user", "ana")
    assert code == 0 and "logged in as ana" in out
    saved = tmp_path / "config" / "nexus" / "tokens.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert PASSWORD not in saved.read_text()
    watcher = await server.user("bob")
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general", "by token",
        env=environment(password=None),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert (await watcher.event("message"))["text"] == "by token"


async def test_login_register_creates_the_account(server):
    """`login --register` makes the account and saves its token."""
    code, _, err = await chat("login", *at(server), "--user", "newbie", "--register")
    assert code == 0, err
    assert TokenStore().get(server.host, server.port, "newbie")


async def test_a_password_logs_in_past_a_stale_token_and_only_login_replaces_it(server):
    """A stale saved token with NEXUS_PASSWORD set: the password logs in and the file is
    left alone; `nexus-chat login` is what saves a fresh token that works."""
    await server.user("ana")
    store = TokenStore()
    store.put(server.host, server.port, "ana", "stale-token")
    code, _, err = await chat("send", *at(server), "--user", "ana", "--room", "general", "x")
    assert (code, err) == (0, "")
    assert store.get(server.host, server.port, "ana") == "stale-token"
    assert (await chat("login", *at(server), "--user", "ana"))[0] == 0
    fresh = store.get(server.host, server.port, "ana")
    assert fresh and fresh != "stale-token"
    peer = await server.peer()
    await peer.ok("login", username="ana", token=fresh)


async def test_a_refused_token_without_a_password_says_to_log_in_again(server):
    """A stale token and no password: exit 1, telling how to get a new one."""
    await server.user("ana")
    TokenStore().put(server.host, server.port, "ana", "stale-token")
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general", "x",
        env=environment(password=None),
    )  # fmt: skip
    assert code == 1 and "token" in err and "nexus-chat login" in err


async def start_tail(server, user: str, *args: str, room: str | None = None):
    """`nexus-chat tail` as `user`, once its session is up (and, if given, in `room`)."""
    before = len(server.connections(user))
    proc = await spawn("tail", *at(server), "--user", user, *args)
    await until(lambda: len(server.connections(user)) > before, timeout=20, what=f"tail as {user}")
    if room is not None:
        rooms = server.server.store.model.rooms
        await until(lambda: user in rooms[room].members, what=f"{user} in #{room}")
    return proc


async def test_tail_prints_messages_and_dms_and_exits_after_count(server):
    """`#room nick: text` and `@peer nick: text` lines as they arrive; --count N ends it."""
    ana = await server.user("ana")
    await server.user("bob")
    proc = await start_tail(server, "bob", "--count", "3")
    await ana.ok("say", room="general", text="hello")
    await ana.ok("dm", to="bob", text="psst")
    await ana.ok("say", room="general", text="two\nlines")
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        "#general ana: hello",
        "@ana ana: psst",
        "#general ana: two",
        "    lines",
    ]


async def test_send_replies_in_a_thread_and_tail_marks_thread_replies(server):
    """`send --thread SEQ` replies in the thread of message SEQ (`--broadcast`: in the
    room too); tail prints a reply at its root's address, `#room/SEQ`."""
    ana = await server.user("ana")
    await server.user("bob")
    root = (await ana.ok("say", room="general", text="release?"))["seq"]
    await ana.ok("dm", to="bob", text="a word?")
    proc = await start_tail(server, "ana", "--count", "3")
    base = ("send", *at(server), "--user", "bob")
    assert (await chat(*base, "--room", "general", "--thread", str(root), "soon"))[0] == 0
    args = ("--room", "general", "--thread", str(root), "--broadcast", "today")
    assert (await chat(*base, *args))[0] == 0
    assert (await chat(*base, "--to", "ana", "--thread", "1", "sure"))[0] == 0
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        f"#general/{root} bob: soon",
        f"#general/{root} bob: today",
        "@bob/1 bob: sure",
    ]
    code, _, err = await chat(*base, "--room", "general", "--thread", "999", "lost")
    assert code == 1 and "no_such_message" in err


async def test_tail_json_of_chosen_rooms_only(server):
    """--json prints each event as one JSON object; --room limits to those rooms (joined)."""
    ana = await server.user("ana")
    await ana.ok("join", room="tech")
    await server.user("bob")
    proc = await start_tail(server, "bob", "--room", "tech", "--json", "--count", "2", room="tech")
    await ana.ok("say", room="general", text="not this")
    await ana.ok("dm", to="bob", text="nor this")
    await ana.ok("say", room="tech", text="this")
    await ana.ok("say", room="tech", text="and this")
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert [(e["event"], e["room"], e["from"], e["text"]) for e in events] == [
        ("message", "tech", "ana", "this"),
        ("message", "tech", "ana", "and this"),
    ]
    assert all(isinstance(e["seq"], int) and isinstance(e["ts"], float) for e in events)


async def test_tail_exits_1_when_the_server_goes_away(start_server):
    """The connection closing ends tail with exit 1 and the reason."""
    server = await start_server()
    await server.user("bob")
    proc = await start_tail(server, "bob")
    await server.close()
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1 and "connection closed" in err.decode()


async def test_ping_needs_no_account(server):
    """`ping` answers 0 with the server's version; nothing listening is exit 1."""
    code, out, _ = await chat("ping", *at(server), env=environment(password=None))
    assert code == 0 and out.startswith(f"{server.host}:{server.port}: nexus ")


def test_help_names_every_mode_and_the_credentials(tmp_path: Path):
    """`nexus-chat send --help` explains credentials and where settings come from."""
    import subprocess

    out = subprocess.run(
        [*chat_command(), "send", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    assert "NEXUS_PASSWORD" in out and "client.toml" in out and "--room" in out


async def test_tail_into_a_pipe_that_closes_ends_quietly(server):
    """`nexus-chat tail | head -1`: once head is gone, tail ends with status 0, silently."""
    ana = await server.user("ana")
    await server.user("bob")
    before = len(server.connections("bob"))
    tail = " ".join(shlex.quote(part) for part in [*chat_command(), "tail", *at(server)])
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", f"{tail} --user bob | head -1; echo status=${{PIPESTATUS[0]}}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment(),
    )  # fmt: skip
    _running.append(proc)
    await until(lambda: len(server.connections("bob")) > before, timeout=20, what="tail")
    for i in range(200):  # head takes the first; tail must notice the pipe is gone
        await ana.ok("say", room="general", text=f"line {i}")
        if len(server.connections("bob")) <= before:
            break
        await asyncio.sleep(0.02)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert out.decode().splitlines() == ["#general ana: line 0", "status=0"]
    assert err == b""


# -- only `login` keeps a token; a password given is the one used ---------------------------


def private_home(tmp_path: Path, password: str | None = PASSWORD) -> dict[str, str]:
    """The environment of a run whose home and config directory are the test's own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return environment(password, HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "config"))


def saved_tokens(tmp_path: Path) -> list[Path]:
    """Every tokens.json a run could have written under the test's home or config directory."""
    places = [tmp_path / "config" / "nexus", tmp_path / "home" / ".config" / "nexus"]
    return [place / "tokens.json" for place in places if (place / "tokens.json").exists()]


async def test_send_with_a_password_saves_no_token(server, tmp_path):
    """`send` with NEXUS_PASSWORD logs in with it and writes no tokens.json: only
    `nexus-chat login` keeps a token."""
    await server.user("ana")
    watcher = await server.user("bob")
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general", "by password",
        env=private_home(tmp_path),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert (await watcher.event("message"))["text"] == "by password"
    assert saved_tokens(tmp_path) == []


async def test_tail_with_a_password_saves_no_token(server, tmp_path):
    """`tail` with NEXUS_PASSWORD writes no tokens.json either."""
    ana = await server.user("ana")
    await server.user("bob")
    before = len(server.connections("bob"))
    proc = await spawn(
        "tail", *at(server), "--user", "bob", "--count", "1", env=private_home(tmp_path)
    )
    await until(lambda: len(server.connections("bob")) > before, timeout=20, what="tail as bob")
    await ana.ok("say", room="general", text="seen")
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert (proc.returncode, out.decode(), err.decode()) == (0, "#general ana: seen\n", "")
    assert saved_tokens(tmp_path) == []


async def test_a_wrong_password_is_refused_even_with_a_saved_token(server, tmp_path):
    """After `login` saved a token, `send` with a wrong NEXUS_PASSWORD uses that password:
    exit 1 saying so, nothing sent, and the saved token is left as it was."""
    await server.user("ana")
    code, _, err = await chat("login", *at(server), "--user", "ana", env=private_home(tmp_path))
    assert code == 0, err
    [saved] = saved_tokens(tmp_path)
    kept = saved.read_text()
    watcher = await server.user("bob")
    code, out, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general", "should not arrive",
        env=private_home(tmp_path, password="not the password"),
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert "login as ana" in err and "auth_failed" in err and "NEXUS_PASSWORD" in err
    assert saved.read_text() == kept
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general", "by token",
        env=private_home(tmp_path, password=None),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert (await watcher.event("message"))["text"] == "by token"  # the first to arrive


async def test_without_a_password_send_logs_in_with_the_token_login_saved(server, tmp_path):
    """No NEXUS_PASSWORD: the token saved by `login`, and only such a token, logs `send` in.
    A password send before it leaves nothing to log in with; after `login` the token
    does, and stays the one saved."""
    await server.user("ana")
    watcher = await server.user("bob")
    args = ("send", *at(server), "--user", "ana", "--room", "general")
    code, _, err = await chat(*args, "by password", env=private_home(tmp_path))
    assert (code, err) == (0, "")
    code, _, err = await chat(*args, "no credentials", env=private_home(tmp_path, password=None))
    assert code == 1 and "nexus-chat login" in err and "NEXUS_PASSWORD" in err
    code, _, err = await chat("login", *at(server), "--user", "ana", env=private_home(tmp_path))
    assert code == 0, err
    [saved] = saved_tokens(tmp_path)
    kept = saved.read_text()
    for text in ("first", "second"):
        code, _, err = await chat(*args, text, env=private_home(tmp_path, password=None))
        assert (code, err) == (0, "")
    assert await texts(watcher, 3) == ["by password", "first", "second"]
    assert saved.read_text() == kept
