"""Several nodes on one PostgreSQL database and a Redis bus, each a real
server on its own port: what one node's users do reaches the others' in
the same order, with the same seqs, and nothing is lost when notices are."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from nexus.server.server import NexusServer
from tests.conftest import PASSWORD, Running, needs_postgresql
from tests.conftest import test_config as node_config
from tests.irc.conftest import IrcPeer
from tests.postgres import Cluster, cluster
from tests.procs import ServerProcess
from tests.redis_server import installed, redis_server
from tests.test_database_outage import said_once_back
from tests.test_haproxy import Balancer, free_port, require_haproxy
from tests.web.wspeer import WsPeer
from tests.wire import Peer

pytestmark = [
    needs_postgresql,
    pytest.mark.skipif(not installed(), reason="redis-server is not installed"),
]

StartNode = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[StartNode]:
    """Starts nodes of one cluster (one database, one bus); stops them after."""
    database = cluster().database_for(tmp_path / "cluster")
    nodes: list[Running] = []

    async def start(name: str | None = None, **overrides: Any) -> Running:
        name = name or f"n{len(nodes) + 1}"
        overrides.setdefault("database", database)
        config = node_config(
            tmp_path / f"{name}.pg",
            store="postgresql",
            bus=redis_server().url,
            node=name,
            **overrides,
        )
        node = Running(await NexusServer.start(config))
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        if node.server.listener is not None:
            await node.close()


async def test_a_message_said_on_one_node_reaches_a_member_on_another(
    start_node: StartNode,
) -> None:
    """An account made on node 1 logs in on node 2; what each says in a room
    reaches the other, with the seq both nodes give it."""
    one, two = await start_node(), await start_node()
    ana = await one.user("ana")
    bob = await two.user("bob")
    await ana.ok("join", room="general")
    await bob.ok("join", room="general")
    sent = await ana.ok("say", room="general", text="hello from one")
    heard = await bob.event("message", room="general")
    assert heard["text"] == "hello from one" and heard["seq"] == sent["seq"]
    answer = await bob.ok("say", room="general", text="and from two")
    assert answer["seq"] == sent["seq"] + 1
    back = await ana.event("message", room="general", text="and from two")
    assert back["seq"] == answer["seq"] and back["from"] == "bob"
    again = await two.user("ana", register=False)
    page = await again.ok("history", room="general")
    assert [m["text"] for m in page["messages"]][-2:] == ["hello from one", "and from two"]


async def test_a_dm_crosses_nodes(start_node: StartNode) -> None:
    """A DM from a user on node 1 reaches its recipient on node 2, and the
    recipient's answer comes back."""
    one, two = await start_node(), await start_node()
    ana = await one.user("ana")
    bob = await two.user("bob")
    await ana.ok("dm", to="bob", text="psst")
    got = await bob.event("dm", to="bob")
    assert got["from"] == "ana" and got["text"] == "psst"
    await bob.ok("dm", to="ana", text="yes?")
    assert (await ana.event("dm", to="ana"))["text"] == "yes?"


async def test_senders_on_every_node_at_once_get_one_order(start_node: StartNode) -> None:
    """Three nodes, a sender on each saying 40 messages as fast as it can
    into one room: every node's listener sees the same 120 messages, seqs
    gapless and in the same order, each once."""
    nodes = [await start_node() for _ in range(3)]
    senders = [await node.user(f"sender{i}") for i, node in enumerate(nodes)]
    listeners = [await node.user(f"listener{i}") for i, node in enumerate(nodes)]
    for peer in senders + listeners:
        await peer.ok("join", room="general")

    async def say(peer: Any, i: int) -> None:
        frames = [
            {"cmd": "say", "id": n, "room": "general", "text": f"{peer.name}-{n}"}
            for n in range(40)
        ]
        replies = await peer.pipeline(frames)
        assert all(reply.get("ok") for reply in replies), replies[:3]

    await asyncio.gather(*(say(peer, i) for i, peer in enumerate(senders)))
    seen: list[list[tuple[int, str]]] = []
    for listener in listeners:
        got: list[tuple[int, str]] = []
        while len(got) < 120:
            message = await listener.event("message", room="general")
            got.append((message["seq"], message["text"]))
        seen.append(got)
    first = [seq for seq, _ in seen[0]]
    assert first == list(range(first[0], first[0] + 120))
    assert len({text for _, text in seen[0]}) == 120
    assert seen[1] == seen[0] and seen[2] == seen[0]


async def test_a_node_that_was_down_catches_up(start_node: StartNode) -> None:
    """Messages said while a node was stopped are in its history when it
    starts again, and what is said after reaches its users."""
    one, two = await start_node("one"), await start_node("two")
    ana = await one.user("ana")
    await ana.ok("join", room="general")
    await two.close()
    for n in range(5):
        await ana.ok("say", room="general", text=f"while away {n}")
    two = await start_node("two")
    bob = await two.user("bob")
    await bob.ok("join", room="general")
    page = await bob.ok("history", room="general")
    assert [m["text"] for m in page["messages"]][-5:] == [f"while away {n}" for n in range(5)]
    await ana.ok("say", room="general", text="welcome back")
    assert (await bob.event("message", room="general"))["text"] == "welcome back"


async def test_without_the_bus_changes_still_arrive(start_node: StartNode) -> None:
    """Redis killed: a message still reaches the other node (each looks for
    changes on its own); Redis back: delivery goes on as before."""
    one, two = await start_node(), await start_node()
    ana, bob = await one.user("ana"), await two.user("bob")
    for peer in (ana, bob):
        await peer.ok("join", room="general")
    broker = redis_server()
    broker.kill()
    try:
        await ana.ok("say", room="general", text="no bus")
        assert (await bob.event("message", room="general"))["text"] == "no bus"
    finally:
        broker.start()
    await ana.ok("say", room="general", text="bus again")
    assert (await bob.event("message", room="general"))["text"] == "bus again"


async def test_a_ban_on_one_node_holds_on_another(start_node: StartNode) -> None:
    """An owner on node 1 bans a member on node 2: the member hears it there,
    and node 2 refuses what it says in the room from then on."""
    one, two = await start_node(), await start_node()
    ana = await one.user("ana")
    bob = await two.user("bob")
    await ana.ok("create", room="ops", topic="", private=False)
    await bob.ok("join", room="ops")
    await ana.event("joined", room="ops", user="bob")
    await ana.ok("ban", room="ops", username="bob", reason="spam")
    kicked = await bob.event("kicked", room="ops")
    assert kicked["by"] == "ana" and kicked["banned"] is True
    await bob.fails("banned", "join", room="ops")
    await bob.fails("not_member", "say", room="ops", text="still here?")


async def test_a_password_change_ends_the_sessions_on_every_node(
    start_node: StartNode,
) -> None:
    """A password changed on node 1 closes the account's session on node 2,
    which is told why, and the old password no longer logs in there."""
    one, two = await start_node(), await start_node()
    ana = await one.user("ana")
    elsewhere = await two.user("ana", register=False)
    await ana.ok("password", old=PASSWORD, new="another horse")
    assert await elsewhere.closed()
    told = [frame for frame in elsewhere.events if frame.get("ok") is False]
    assert told and told[-1]["error"]["code"] == "auth_required"
    late = await two.peer()
    await late.fails("auth_failed", "login", username="ana", password=PASSWORD)
    await late.ok("login", username="ana", password="another horse")


async def _online_on(peer: Any) -> set[str]:
    return {user["username"] for user in (await peer.ok("online"))["users"]}


async def test_who_is_online_counts_every_node(start_node: StartNode) -> None:
    """A user connected to node 2 is online for node 1's users (in `online`,
    `members` and `whois`), and comes and goes for them as on one node."""
    one, two = await start_node(), await start_node()
    ana = await one.user("ana")
    bob = await two.user("bob")
    await bob.ok("join", room="general")
    came = await ana.event("presence", user="bob")
    assert came["online"] is True
    for _ in range(100):
        if "bob" in await _online_on(ana):
            break
        await asyncio.sleep(0.05)
    assert await _online_on(ana) == {"ana", "bob"}
    members = (await ana.ok("members", room="general"))["members"]
    assert {m["username"]: m["online"] for m in members}["bob"] is True
    assert (await ana.ok("whois", username="bob"))["user"]["online"] is True
    await bob.close()
    went = await ana.event("presence", user="bob")
    assert went["online"] is False
    for _ in range(100):
        if "bob" not in await _online_on(ana):
            break
        await asyncio.sleep(0.05)
    assert await _online_on(ana) == {"ana"}


async def test_a_second_session_on_another_node_is_no_new_arrival(
    start_node: StartNode,
) -> None:
    """A user online on node 1 who also logs in on node 2 is not announced
    again; leaving node 2 while still on node 1 does not take them offline."""
    one, two = await start_node(), await start_node()
    ana = await one.user("ana")
    await one.user("bob")
    await ana.event("presence", user="bob")
    carol = await two.user("carol")
    await ana.event("presence", user="carol")
    for _ in range(100):  # node 2 hears of bob's session on node 1
        if "bob" in await _online_on(carol):
            break
        await asyncio.sleep(0.05)
    again = await two.user("bob", register=False)
    await ana.no_event("presence", wait=0.5)
    await again.close()
    await ana.no_event("presence", wait=0.5)
    assert "bob" in await _online_on(ana)


async def test_a_database_outage_refuses_changes_on_every_node_and_heals(
    start_node: StartNode, tmp_path: Path
) -> None:
    """PostgreSQL stopped: a change on either node is refused with `internal`
    and not kept; started again: both nodes take changes by themselves, and
    what is said reaches the other node."""
    own = Cluster()  # stopping the shared one would cut every other test's store
    try:
        url = own.database_for(tmp_path / "own")
        one, two = await start_node(database=url), await start_node(database=url)
        ana, bob = await one.user("ana"), await two.user("bob")
        for peer in (ana, bob):
            await peer.ok("join", room="general")
        await ana.ok("say", room="general", text="before")
        await bob.event("message", text="before")
        own.halt()
        for peer in (ana, bob):
            refused = await peer.request("say", room="general", text="not kept")
            assert refused["ok"] is False and refused["error"]["code"] == "internal"
        own.start()
        assert (await said_once_back(ana, "after"))["ok"] is True
        assert (await bob.event("message", text="after"))["from"] == "ana"
        texts = [m["text"] for m in (await bob.ok("history", room="general"))["messages"]]
        assert texts[-2:] == ["before", "after"] and "not kept" not in texts
    finally:
        own.stop()


async def test_a_node_killed_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Three real `nexus-server` nodes, writers on two of them: node 1 is
    SIGKILLed mid-stream. Every message any node acknowledged is in the room's
    history on the others, at the seq it was acknowledged with, seqs without
    gaps; the killed node's writer goes on through another node, fetching
    what it missed after its last seq, in order."""
    database = cluster().database_for(tmp_path / "killed")
    flags = ("--store", "postgresql", "--database", database, "--bus", redis_server().url)
    flags += ("--rate-limit", "off", "--registrations-per-hour", "0")
    nodes = [ServerProcess(tmp_path / f"n{i}.pg", *flags, "--node", f"n{i}") for i in range(3)]
    acked: list[tuple[int, str]] = []
    try:
        for node in nodes:
            node.start()
        writers = []
        for i, node in enumerate(nodes[:2]):
            peer = await Peer.connect("127.0.0.1", node.port)
            await peer.frame()
            await peer.ok("register", username=f"writer{i}", password=PASSWORD)
            await peer.ok("join", room="general")
            writers.append(peer)

        under_way = asyncio.Event()  # node 1's writer has had 100 messages acknowledged

        async def write(peer: Peer, name: str, count: int) -> None:
            with contextlib.suppress(EOFError, ConnectionError, TimeoutError):
                for n in range(count):
                    reply = await peer.request("say", room="general", text=f"{name} {n}")
                    assert reply["ok"], reply
                    acked.append((reply["seq"], f"{name} {n}"))
                    if n == 99 and name == "writer0":
                        under_way.set()

        killed = asyncio.create_task(write(writers[0], "writer0", 10_000))
        survivor = asyncio.create_task(write(writers[1], "writer1", 300))
        await under_way.wait()
        nodes[0].kill()
        await asyncio.gather(killed, survivor)
        last = max(seq for seq, text in acked if text.startswith("writer0"))
        back = await Peer.connect("127.0.0.1", nodes[1].port)  # where the client goes next
        await back.frame()
        await back.ok("login", username="writer0", password=PASSWORD)
        after = await back.ok("history", room="general", after=last, limit=100)
        assert [m["seq"] for m in after["messages"]] == list(
            range(last + 1, last + 1 + len(after["messages"]))
        )
        acked.append(
            ((await back.ok("say", room="general", text="writer0 back"))["seq"], "writer0 back")
        )
        reader = await Peer.connect("127.0.0.1", nodes[2].port)
        await reader.frame()
        await reader.ok("register", username="reader", password=PASSWORD)
        stored: dict[int, str] = {}
        before = None
        while True:
            page = await reader.ok("history", room="general", limit=100, before=before)
            stored.update((m["seq"], m["text"]) for m in page["messages"])
            if not page["more"]:
                break
            before = page["messages"][0]["seq"]
        assert all(stored.get(seq) == text for seq, text in acked)
        assert sorted(stored) == list(range(1, max(stored) + 1))
        for peer in (*writers, back, reader):
            await peer.close()
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()


async def test_every_front_end_reaches_every_node(start_node: StartNode) -> None:
    """An IRC client on node 1 and a WebSocket client on node 2 talk in one
    room, each hearing the other as on one node."""
    one = await start_node(irc_port=0)
    two = await start_node(web_port=0)
    await (await one.user("ana")).ok("quit")  # an account for the IRC client
    irc = await IrcPeer.connect(*one.server.irc_address())
    await irc.register("ana")
    await irc.expect(r" 366 ana #general ")
    host, port = two.server.web_address  # type: ignore[misc]
    web = await WsPeer.open(f"ws://{host}:{port}/ws")
    assert (await web.frame())["event"] == "hello"
    await web.ok("register", username="bob", password=PASSWORD)
    await irc.expect(r"^:bob!\S+ JOIN #general")
    await web.ok("say", room="general", text="hello from the page")
    await irc.expect(r"^:bob!\S+ PRIVMSG #general :hello from the page$")
    await irc.send("PRIVMSG #general :hello from irssi")
    heard = await web.event("message", room="general", text="hello from irssi")
    assert heard["from"] == "ana"
    await irc.close()
    await web.close()


async def test_behind_haproxy_clients_spread_over_the_nodes_and_move_on(
    start_node: StartNode,
) -> None:
    """contrib/haproxy.cfg in front of three nodes (127.0.0.1-3, the same
    ports): clients through it land on different nodes and talk; the node of
    one stops, and that client, reconnecting through HAProxy, reaches another
    node and reads what was said meanwhile after its last seq."""
    require_haproxy()
    chat, web, irc = free_port(), free_port(), free_port()
    nodes = [
        await start_node(
            host=f"127.0.0.{n}", port=chat, web_port=web, irc_port=irc, proxy_from=("127.0.0.0/8",)
        )
        for n in (1, 2, 3)
    ]
    balancer = Balancer(nodes[0])
    try:
        await balancer.listening()
        peers = []
        for name in ("ana", "bob", "cyd"):
            peer = await Peer.connect("127.0.0.1", balancer.chat)
            await peer.frame()
            await peer.ok("register", username=name, password=PASSWORD)
            await peer.ok("join", room="general")
            peers.append(peer)
        ana, bob, cyd = peers
        homes = {
            name: i
            for i, node in enumerate(nodes)
            for name in ("ana", "bob", "cyd")
            if node.connections(name)
        }
        assert sorted(homes.values()) == [0, 1, 2]  # leastconn: one client a node
        last = (await ana.ok("say", room="general", text="from ana"))["seq"]
        for peer in (bob, cyd):
            assert (await peer.event("message", text="from ana"))["seq"] == last
        await nodes[homes["ana"]].close()
        assert await ana.closed()
        await bob.ok("say", room="general", text="while ana moves")
        back = await Peer.connect("127.0.0.1", balancer.chat)
        await back.frame()
        await back.ok("login", username="ana", password=PASSWORD)
        missed = await back.ok("history", room="general", after=last, limit=50)
        assert [m["text"] for m in missed["messages"]] == ["while ana moves"]
        await back.ok("say", room="general", text="ana again")
        assert (await cyd.event("message", text="ana again"))["from"] == "ana"
    finally:
        balancer.stop()


async def test_a_change_that_does_not_apply_makes_the_node_read_the_database_again(
    start_node: StartNode, tmp_path: Path
) -> None:
    """A row of changes no node can apply (a message to a room that is not
    there): each node says so, reads its model again from the database, and
    goes on taking and telling changes."""
    one, two = await start_node(), await start_node()
    ana, bob = await one.user("ana"), await two.user("bob")
    for peer in (ana, bob):
        await peer.ok("join", room="general")
    database = cluster().database_for(tmp_path / "cluster")
    bad = [["record", {"op": "say", "user": "ana", "room": "nowhere", "text": "?", "ts": 1.0}]]
    with psycopg.connect(database, autocommit=True) as db:
        db.execute(
            "INSERT INTO changes (node, items) VALUES ('elsewhere', %s)", (orjson.dumps(bad),)
        )
    said = await said_once_back(ana, "after the bad row")
    assert said["ok"] is True
    heard = await bob.event("message", text="after the bad row", timeout=10)
    assert heard["seq"] == said["seq"]
