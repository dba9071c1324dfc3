"""Several servers (a cluster's nodes): parsed from one setting, tried in
order, and moved between when one fails, catching up without gaps."""

from __future__ import annotations

import asyncio
import socket

import pytest

from nexus.client.config import ConfigError, resolve
from nexus.client.follow import Follow
from nexus.client.servers import Server, parse_servers
from nexus.client.session import ChatSession
from nexus.client.state import ChatState
from tests.client.conftest import PASSWORD, Proxy, until
from tests.client.test_script import chat, environment, spawn


@pytest.mark.parametrize(
    ("text", "servers"),
    [
        ("chat.example", [Server("chat.example", 9999)]),
        ("a.example, b.example:9998", [Server("a.example", 9999), Server("b.example", 9998)]),
        ("[::1]:7000,10.0.0.2", [Server("::1", 7000), Server("10.0.0.2", 9999)]),
        ("[fe80::1]", [Server("fe80::1", 9999)]),
    ],
)
def test_a_server_setting_names_one_or_several(text, servers):
    assert parse_servers(text, 9999) == servers


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a.example,,b.example", "an empty server name"),
        ("a.example:http", "not a TCP port: 'http'"),
        ("a.example:70000", "not a TCP port: '70000'"),
        (":9999", "no host"),
        ("[::1", "not a server"),
        ("[::1]9999", "not a server"),
    ],
)
def test_a_server_setting_that_names_no_server_says_why(text, why, tmp_path):
    with pytest.raises(ValueError, match=why):
        parse_servers(text, 9999)
    (tmp_path / "client.toml").write_text(f"server = {text!r}\n")
    with pytest.raises(ConfigError, match=why):
        resolve({}, environ={}, path=tmp_path / "client.toml")


def test_client_toml_lists_servers_as_an_array_or_one_string(tmp_path):
    """`server = ["a:7000", "b"]` reads as "a:7000,b" does; anything else in the
    array is refused by name."""
    path = tmp_path / "client.toml"
    path.write_text('server = ["a.example:7000", "b.example"]\nport = 7001\n')
    listed = resolve({}, environ={}, path=path)
    assert listed.servers() == [Server("a.example", 7000), Server("b.example", 7001)]
    path.write_text('server = "a.example:7000, b.example"\nport = 7001\n')
    assert resolve({}, environ={}, path=path).servers() == listed.servers()
    path.write_text('server = ["a.example", 7000]\n')
    with pytest.raises(ConfigError, match="'server' must be a list of non-empty strings"):
        resolve({}, environ={}, path=path)


async def test_a_session_moves_to_the_next_server_at_once_and_misses_nothing(server, connect):
    """Two nodes (proxies to one server): the first fails, the session is on
    the second at once (its backoff is a minute: no wait), with everything
    said meanwhile in order; then back to the first when the second fails."""
    nodes = [Proxy((server.host, server.port)), Proxy((server.host, server.port))]
    for node in nodes:
        await node.mend()
    bob, _ = await connect()
    conn, login = await connect(port=nodes[0].port)
    state = ChatState(login["user"]["username"], f"127.0.0.1:{nodes[0].port}")
    servers = [Server("127.0.0.1", node.port) for node in nodes]
    session = ChatSession(state, servers, PASSWORD, backoff=(60.0, 60.0))
    task = asyncio.create_task(session.run(conn, login))
    try:
        await until(lambda: state.connected, what="connected")

        async def fail_over(round_: int, down: int, up: int) -> None:
            await nodes[down].cut()
            for i in range(30):
                await bob.request("say", room="general", text=f"round {round_} missed {i}")
            await until(lambda: state.connected and session.server == servers[up], what="moved")
            assert state.server == str(servers[up])
            moved = f"moved to {servers[up]}: {servers[down]} was lost"
            assert any(e.plain.endswith(moved) for e in state.pane.entries)

            def said() -> list[str]:
                entries = state.rooms["general"].lines.entries
                return [e.text for e in entries if e.text.startswith(f"round {round_} ")]

            await until(lambda: len(said()) >= 30, what="caught up")
            assert said() == [f"round {round_} missed {i}" for i in range(30)]
            await nodes[down].mend()

        await fail_over(0, 0, 1)
        await fail_over(1, 1, 0)
    finally:
        await session.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for node in nodes:
            await node.close()


async def test_a_conversation_read_elsewhere_meanwhile_is_still_filled_in_whole(
    server, connect, proxy
):
    """While the link is down bob writes 60 DMs, which another terminal of the
    account reads, then 2 more: 2 are unread, yet all 62 are filled in."""
    conn, login = await connect(port=proxy.port)
    me = login["user"]["username"]
    bob, bob_login = await connect()
    peer = bob_login["user"]["username"].casefold()
    state = ChatState(me, f"127.0.0.1:{proxy.port}")
    session = ChatSession(state, [Server("127.0.0.1", proxy.port)], PASSWORD, backoff=(0.1, 0.2))
    task = asyncio.create_task(session.run(conn, login))
    try:
        await until(lambda: state.connected, what="connected")
        await bob.request("dm", to=me, text="hello")
        await until(lambda: peer in state.dms and state.dms[peer].last_seq, what="the DM")
        await proxy.cut()
        await until(lambda: not state.connected, what="offline")
        away = [f"away {i}" for i in range(60)] + ["after 0", "after 1"]
        for text in away[:60]:
            await bob.request("dm", to=me, text=text)
        elsewhere, _ = await connect(me, register=False)
        await elsewhere.request("dms", with_=bob_login["user"]["username"], limit=100)
        for text in away[60:]:
            await bob.request("dm", to=me, text=text)
        await proxy.mend()
        await until(lambda: state.connected, what="back")
        entries = state.dms[peer].lines.entries
        assert [e.text for e in entries if e.seq] == ["hello", *away]
    finally:
        await session.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_session_starts_on_the_first_server_that_answers(server, connect, proxy):
    """The first node is down when the session starts: it logs in on the next."""
    dead = Proxy((server.host, server.port))
    await dead.mend()
    await dead.cut()  # a port that refuses
    conn, login = await connect()
    await conn.close()
    state = ChatState(login["user"]["username"], "")
    servers = [Server("127.0.0.1", dead.port), Server("127.0.0.1", proxy.port)]
    session = ChatSession(state, servers, PASSWORD, backoff=(60.0, 60.0))
    task = asyncio.create_task(session.run())
    try:
        await until(lambda: state.connected, what="connected")
        assert session.server == servers[1]
    finally:
        await session.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dead.close()


async def test_a_session_with_every_server_down_says_so_once_and_keeps_trying(server, connect):
    """No node answers: one line names them all, the status bar counts down to the
    next round, and the first node back is logged in to."""
    nodes = [Proxy((server.host, server.port)), Proxy((server.host, server.port))]
    for node in nodes:
        await node.mend()
        await node.cut()
    conn, login = await connect()
    await conn.close()
    state = ChatState(login["user"]["username"], "")
    servers = [Server("127.0.0.1", node.port) for node in nodes]
    session = ChatSession(state, servers, PASSWORD, backoff=(0.1, 0.2))
    task = asyncio.create_task(session.run())
    said = f"none of {servers[0]}, {servers[1]} answers: retrying until one does"
    try:
        await until(lambda: state.connection.startswith("offline, retrying"), what="offline")
        await asyncio.sleep(0.5)  # a few rounds more
        assert sum(said in e.plain for e in state.pane.entries) == 1
        await nodes[1].mend()
        await until(lambda: state.connected, what="connected")
        assert session.server == servers[1]
    finally:
        await session.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for node in nodes:
            await node.close()


def refusing_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_scripts_use_the_first_server_that_answers(server):
    """`send` and `ping` given a dead node first: the message goes through
    the next; with every node dead, one line says none answered."""
    await server.user("ana")
    watcher = await server.user("bob")
    dead = f"127.0.0.1:{refusing_port()}"
    both = f"{dead},{server.host}:{server.port}"
    code, out, err = await chat("send", both, "--user", "ana", "--room", "general", "via two")
    assert (code, out, err) == (0, "", "")
    assert (await watcher.event("message"))["text"] == "via two"
    flags = ["--server", dead, "--server", f"{server.host}:{server.port}"]
    code, out, err = await chat("send", *flags, "--user", "ana", "--room", "general", "flags")
    assert (code, out, err) == (0, "", "")
    assert (await watcher.event("message"))["text"] == "flags"
    code, _, err = await chat("send", both, *flags, "--user", "ana", "--room", "general", "x")
    assert code == 2 and "either as HOST or with --server" in err
    code, out, _ = await chat("ping", both, env=environment(password=None))
    assert code == 0 and out.startswith(f"{server.host}:{server.port}: nexus ")
    other = f"127.0.0.1:{refusing_port()}"
    code, out, err = await chat("ping", f"{dead},{other}", env=environment(password=None))
    assert code == 1 and err.startswith("nexus-chat: none of 2 servers answered; cannot connect")


async def test_tail_moves_to_the_next_server_and_prints_what_it_missed_once(server):
    """tail given two nodes loses both; what is said meanwhile, in a room, in a
    thread (which a room's timeline leaves out) and in a DM, it prints once the
    second is back, in order, and nothing twice (a message said as it returns
    comes both live and in the catch-up)."""
    ana = await server.user("ana")
    await (await server.user("bob")).close()
    nodes = [Proxy((server.host, server.port)), Proxy((server.host, server.port))]
    for node in nodes:
        await node.mend()
    both = ",".join(f"127.0.0.1:{node.port}" for node in nodes)
    proc = await spawn("tail", both, "--user", "bob", "--count", "6")
    try:
        assert proc.stdout is not None
        await until(lambda: server.connections("bob"), timeout=20, what="tail")
        root = (await ana.ok("say", room="general", text="before"))["seq"]
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line == b"#general ana: before\n"
        for node in nodes:
            await node.cut()
        await until(lambda: not server.connections("bob"), what="tail cut off")
        await ana.ok("say", room="general", text="missed 1")
        await ana.ok("say", room="general", text="missed reply", thread=root)
        await ana.ok("dm", to="bob", text="missed dm")
        await ana.ok("say", room="general", text="missed 2")
        await nodes[1].mend()
        await until(lambda: server.connections("bob"), timeout=20, what="tail back")
        await ana.ok("say", room="general", text="after")
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
        for node in nodes:
            await node.close()
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        "#general ana: missed 1",
        f"#general/{root} ana: missed reply",
        "@ana ana: missed dm",
        "#general ana: missed 2",
        "#general ana: after",
    ]
    assert f"moved to 127.0.0.1:{nodes[1].port}" in err.decode()


async def test_what_tail_caught_up_on_is_not_printed_again_when_it_comes_live(server, connect):
    """Messages said after tail's login come twice, as events and in the catch-up:
    each counts once, the catch-up's copy first."""
    ana = await server.user("ana")
    conn, login = await connect("bob")
    follow = Follow("bob", set())
    await follow.start(conn, login)
    await ana.ok("say", room="general", text="one")
    await ana.ok("dm", to="bob", text="two")
    missed = await follow.missed(conn)
    assert [(m["event"], m["text"]) for m in missed] == [("message", "one"), ("dm", "two")]
    live = [await anext(aiter(conn)) for _ in range(2)]
    assert [m["text"] for m in live] == ["one", "two"]
    assert not any(follow.fresh(m) for m in live)
