"""Read markers and conversation lists over real sockets: `draft/read-marker`
(MARKREAD) both ways with native clients, and CHATHISTORY TARGETS."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from nexus.server.irc.history import irc_time
from tests.irc.conftest import IrcPeer, IrcServer
from tests.wire import Peer

READER = "draft/read-marker server-time batch"


def stamp(ts: float) -> str:
    return "timestamp=" + irc_time(ts)


async def said(peer: Peer, cmd: str, **args: Any) -> dict[str, Any]:
    """A message sent, in a millisecond of its own: IRC times have no finer grain."""
    await asyncio.sleep(0.002)
    return await peer.ok(cmd, **args)


async def test_join_burst_tells_the_read_marker_before_names_end(irc: IrcServer) -> None:
    """A read-marker client gets MARKREAD for each channel it is shown joining,
    before 366: the time of the last message it read; `*` without the cap none."""
    bob = await irc.running.user("bob")
    first = await bob.ok("say", room="general", text="m1")
    await irc.account("ana")  # joins with everything read: m1
    await bob.ok("say", room="general", text="m2")
    await bob.ok("say", room="general", text="m3")
    ana = await irc.peer()
    await ana.register("ana", caps=READER)
    lines = await ana.until(r" 366 ana #general ")
    assert lines[-2].startswith(":nexus 353 ")
    assert f":nexus MARKREAD #general {stamp(first['ts'])}" in lines
    await ana.send("MARKREAD #general")
    await ana.expect(rf"^:nexus MARKREAD #general {re.escape(stamp(first['ts']))}$")
    plain = await irc.irc_user("cyd")
    assert not any("MARKREAD" in line for line in plain.lines)


async def test_markread_from_irc_moves_the_accounts_marker(irc: IrcServer) -> None:
    """MARKREAD #room timestamp=T marks read up to the message at T: the native
    session of the same account gets `read` and its unread count drops; an older
    time than the marker is answered with the marker as it is; a bad time or a
    channel one is not in is FAIL."""
    ana = await irc.irc_user("ana", caps=READER)
    native = await irc.running.user("ana", register=False)
    bob = await irc.running.user("bob")
    sent = [await said(bob, "say", room="general", text=f"m{i}") for i in range(3)]
    for i in range(3):
        await ana.expect(rf" PRIVMSG #general :m{i}$")
    await ana.send(f"MARKREAD #general {stamp(sent[1]['ts'])}")
    await ana.expect(rf"^:nexus MARKREAD #general {re.escape(stamp(sent[1]['ts']))}$")
    event = await native.event("read", room="general")
    assert event["seq"] == sent[1]["seq"]
    rooms = await native.ok("rooms")
    assert next(r for r in rooms["rooms"] if r["name"] == "general")["unread"] == 1
    await ana.send(f"MARKREAD #general {stamp(sent[0]['ts'])}")
    await ana.expect(rf"^:nexus MARKREAD #general {re.escape(stamp(sent[1]['ts']))}$")
    await ana.send(
        "MARKREAD", "MARKREAD #general yesterday", "MARKREAD #no#such", "MARKREAD #elsewhere"
    )
    await ana.expect(r"^:nexus FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters$")
    await ana.expect(r"^:nexus FAIL MARKREAD INVALID_PARAMS yesterday :")
    await ana.expect(r"^:nexus FAIL MARKREAD INVALID_PARAMS #no#such :")
    await ana.expect(r"^:nexus FAIL MARKREAD INVALID_PARAMS #elsewhere :You're not on that")


async def test_reading_in_a_native_client_reaches_irc_as_markread(irc: IrcServer) -> None:
    """The account's marker moved from nexus-chat (`read`) arrives as MARKREAD with
    the time of the message read up to."""
    ana = await irc.irc_user("ana", caps=READER)
    native = await irc.running.user("ana", register=False)
    bob = await irc.running.user("bob")
    said = await bob.ok("say", room="general", text="read me")
    await native.ok("read", room="general", seq=said["seq"])
    await ana.expect(rf"^:nexus MARKREAD #general {re.escape(stamp(said['ts']))}$")


async def test_markread_of_a_dm_conversation(irc: IrcServer) -> None:
    """MARKREAD nick timestamp=T marks the DM conversation read up to the DM at T;
    the native session sees `read` with the partner; asking tells the marker."""
    ana = await irc.irc_user("ana", caps=READER)
    native = await irc.running.user("ana", register=False)
    bob = await irc.running.user("bob")
    first = await said(bob, "dm", to="ana", text="one")
    await said(bob, "dm", to="ana", text="two")
    await ana.expect(r" PRIVMSG ana :two$")
    await ana.send(f"MARKREAD bob {stamp(first['ts'])}")
    await ana.expect(rf"^:nexus MARKREAD bob {re.escape(stamp(first['ts']))}$")
    event = await native.event("read")
    assert event["with"] == "bob" and event["seq"] == first["seq"]
    await ana.send("MARKREAD bob", "MARKREAD nobody")
    await ana.expect(rf"^:nexus MARKREAD bob {re.escape(stamp(first['ts']))}$")
    await ana.expect(r"^:nexus MARKREAD nobody \*$")


async def targets(peer: IrcPeer, command: str) -> list[str]:
    """The CHATHISTORY TARGETS lines of the batch answering `command`."""
    await peer.send(command)
    ref = (await peer.expect(r":nexus BATCH \+(\S+) draft/chathistory-targets$")).group(1)
    lines = await peer.until(rf":nexus BATCH -{ref}$")
    return [line.split(" ", 2)[2] for line in lines[:-1]]


async def test_chathistory_targets_lists_channels_and_dm_partners(irc: IrcServer) -> None:
    """TARGETS lists each channel and DM partner whose latest message is in the
    range, with its time, oldest first (a DM conversation this connection never
    showed too); the limit keeps the side the first bound names; the bounds are
    excluded; a range with nothing is an empty batch."""
    carl = await irc.running.user("carl")
    await irc.account("ana")
    native = await irc.running.user("ana", register=False)
    early = await said(native, "dm", to="carl", text="from before")  # read: never replayed
    await native.ok("quit")
    await carl.ok("quit")
    ana = await irc.peer()
    await ana.register("ana", caps="batch server-time draft/chathistory")
    await ana.send("JOIN #tech")
    await ana.expect(r" 366 ana #tech ")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="tech")
    await said(bob, "say", room="general", text="old news")
    tech = await said(bob, "say", room="tech", text="build is green")
    general = await said(bob, "say", room="general", text="lunch?")
    dm = await said(bob, "dm", to="ana", text="psst")
    await ana.expect(r" PRIVMSG ana :psst$")
    past, future = "timestamp=2000-01-01T00:00:00.000Z", "timestamp=2100-01-01T00:00:00.000Z"
    assert await targets(ana, f"CHATHISTORY TARGETS {past} {future} 10") == [
        f"CHATHISTORY TARGETS carl {irc_time(early['ts'])}",
        f"CHATHISTORY TARGETS #tech {irc_time(tech['ts'])}",
        f"CHATHISTORY TARGETS #general {irc_time(general['ts'])}",
        f"CHATHISTORY TARGETS bob {irc_time(dm['ts'])}",
    ]
    assert await targets(ana, f"CHATHISTORY TARGETS {future} {past} 1") == [
        f"CHATHISTORY TARGETS bob {irc_time(dm['ts'])}"
    ]
    assert await targets(ana, f"CHATHISTORY TARGETS {past} {future} 1") == [
        f"CHATHISTORY TARGETS carl {irc_time(early['ts'])}"
    ]
    # #general had a message before this range ends, but its latest is after it.
    assert await targets(
        ana, f"CHATHISTORY TARGETS {stamp(early['ts'])} {stamp(general['ts'])} 10"
    ) == [f"CHATHISTORY TARGETS #tech {irc_time(tech['ts'])}"]
    assert await targets(ana, f"CHATHISTORY TARGETS {future} {future} 10") == []
    await ana.send(f"CHATHISTORY TARGETS * {future} 10")
    await ana.expect(r"^:nexus FAIL CHATHISTORY INVALID_PARAMS TARGETS :")


async def test_chathistory_of_a_channel_not_joined_is_an_invalid_target(irc: IrcServer) -> None:
    """CHATHISTORY of a channel the client is not in (or that does not exist)
    is FAIL INVALID_TARGET, as on IRC servers; of a nick, the conversation."""
    ana = await irc.irc_user("ana", caps="batch draft/chathistory")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="tech")
    await bob.ok("say", room="tech", text="not for outsiders' scrollback")
    await bob.ok("dm", to="ana", text="hello")
    for target in ("#tech", "#nowhere"):
        await ana.send(f"CHATHISTORY LATEST {target} * 10")
        await ana.expect(rf"^:nexus FAIL CHATHISTORY INVALID_TARGET LATEST {target} :")
    await ana.send("CHATHISTORY LATEST bob * 10")
    await ana.expect(r"^:nexus BATCH \+\S+ chathistory bob$")
    await ana.expect(r"PRIVMSG ana :hello$")
