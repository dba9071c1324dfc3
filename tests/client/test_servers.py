"""Several servers (a cluster's nodes): parsed from one setting, tried in
order, and moved between when one fails, catching up without gaps."""

from __future__ import annotations

import asyncio
import socket

import pytest

from nexus.client.config import ConfigError, resolve
from nexus.client.servers import Server, parse_servers
from nexus.client.session import ChatSession
from nexus.client.state import ChatState
from tests.client.conftest import PASSWORD, Proxy, until
from tests.client.test_script import chat, environment


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
    code, out, _ = await chat("ping", both, env=environment(password=None))
    assert code == 0 and out.startswith(f"{server.host}:{server.port}: nexus ")
    other = f"127.0.0.1:{refusing_port()}"
    code, out, err = await chat("ping", f"{dead},{other}", env=environment(password=None))
    assert code == 1 and err.startswith("nexus-chat: none of 2 servers answered; cannot connect")
