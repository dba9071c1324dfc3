"""Guests (--irc-guests) over real sockets: NICK/USER alone logs in as a user that
lives as long as its connection, beside native and IRC account holders."""

from __future__ import annotations

import json
import re

from tests.conftest import PASSWORD, writes_failing
from tests.irc.conftest import IrcPeer, IrcServer
from tests.procs import ServerProcess
from tests.wire import Peer


async def test_a_guest_joins_general_and_talks_with_a_native_user_both_ways(
    irc_guests: IrcServer,
) -> None:
    """A guest's channel message and DM reach a nexus-chat user, marked as a
    guest's, and the native user's message and DM reach the guest."""
    ana = await irc_guests.running.user("ana")
    zed = await irc_guests.guest("zed")
    await zed.join("#general")
    await ana.event("joined", room="general", user="zed")
    await zed.send("PRIVMSG #general :hello from a guest")
    said = await ana.event("message", room="general", text="hello from a guest")
    assert said["from"] == "zed" and said["guest"] is True
    await ana.ok("say", room="general", text="hi zed")
    await zed.expect(r"^:ana!~ana@nexus PRIVMSG #general :hi zed$")
    await zed.send("PRIVMSG ana :psst")
    assert (await ana.event("dm", text="psst"))["from"] == "zed"
    await ana.ok("dm", to="zed", text="back at you")
    await zed.expect(r"^:ana!~ana@nexus PRIVMSG zed :back at you$")
    profile = (await ana.ok("whois", username="zed"))["user"]
    assert profile["guest"] is True and profile["online"] is True
    assert "guest" not in (await ana.ok("whois", username="ana"))["user"]


async def test_a_guest_nick_that_is_an_account_is_433_with_how_to_log_in(
    irc_guests: IrcServer,
) -> None:
    """NICK of a registered account is 433 saying how to log in as it; another NICK
    then logs the client in as a guest by that nick."""
    await irc_guests.account("ana")
    peer = await irc_guests.peer()
    await peer.send("NICK ana", "USER ana 0 * :A")
    refused = await peer.expect(r" 433 \* ana :Nickname is already in use: (.*)$")
    assert "SASL PLAIN" in refused.group(1) and "PASS ana:<password>" in refused.group(1)
    await peer.send("NICK ana_")
    await peer.expect(r" 001 ana_ ")


async def test_two_guests_cannot_share_a_nick(irc_guests: IrcServer) -> None:
    """A second guest asking for an online guest's nick is 433; an unfit nick is 432."""
    await irc_guests.guest("zed")
    peer = await irc_guests.peer()
    await peer.send("NICK zed", "USER zed 0 * :Z")
    await peer.expect(r" 433 \* zed :Nickname is already in use$")
    await peer.send("NICK zz")  # a username is 3-24 characters
    await peer.expect(r" 432 \* zz :Erroneous nickname: ")
    await peer.send("NICK zed2")
    await peer.expect(r" 001 zed2 ")


async def test_registering_an_online_guests_name_is_username_taken(irc_guests: IrcServer) -> None:
    """Nobody registers an account by an online guest's nick, nor logs in as it."""
    await irc_guests.guest("zed")
    peer = await irc_guests.running.peer()
    await peer.fails("username_taken", "register", username="ZED", password=PASSWORD)
    await peer.fails("auth_failed", "login", username="zed", password=PASSWORD)


async def test_a_guest_channel_goes_when_its_last_member_leaves(irc_guests: IrcServer) -> None:
    """A guest's JOIN creates #tmp; a native user joins and they talk; once both
    have left, #tmp is gone from LIST and `rooms`, and everyone was told."""
    ana = await irc_guests.running.user("ana")
    zed = await irc_guests.guest("zed")
    await zed.join("#tmp")
    created = await ana.event("room_created")
    assert created["room"]["name"] == "tmp" and created["room"]["ephemeral"] is True
    joined = await ana.ok("join", room="tmp")
    assert joined["room"]["owner"] == "zed" and joined["room"]["ephemeral"] is True
    await zed.expect(r"^:ana!~ana@nexus JOIN #tmp")
    await ana.ok("say", room="tmp", text="nice room")
    await zed.expect(r"^:ana!~ana@nexus PRIVMSG #tmp :nice room$")
    await zed.send("PRIVMSG #tmp :thanks")
    await ana.event("message", room="tmp", text="thanks")
    await zed.send("PART #tmp")
    await ana.event("left", room="tmp", user="zed")
    await ana.ok("leave", room="tmp")
    assert (await ana.event("room_deleted", room="tmp"))["by"] == "ana"
    assert "tmp" not in [room["name"] for room in (await ana.ok("rooms"))["rooms"]]
    await zed.send("LIST")
    listed = await zed.until(r" 323 zed ")
    assert any(" 322 zed #general " in line for line in listed)
    assert not any(" 322 zed #tmp " in line for line in listed)
    await ana.fails("no_such_room", "join", room="tmp")


async def test_a_guests_disconnect_is_seen_and_it_is_then_no_such_user(
    irc_guests: IrcServer,
) -> None:
    """When a guest's connection ends, native members see it go offline and leave,
    IRC members see QUIT; WHOIS, `whois` and a DM then find no such user, and the
    room it made and left behind stays, with no owner."""
    ana = await irc_guests.running.user("ana")
    bob = await irc_guests.irc_user("bob")
    zed = await irc_guests.guest("zed")
    await zed.join("#general", "#tmp")
    await ana.ok("join", room="tmp")
    await bob.expect(r"^:zed!~zed@nexus JOIN #general")
    await zed.close()
    assert (await ana.event("presence", user="zed"))["online"] is False
    await ana.event("left", room="general", user="zed")
    await ana.event("left", room="tmp", user="zed")
    await bob.expect(r"^:zed!~zed@nexus QUIT :Quit: guest left$")
    await bob.send("WHOIS zed")
    await bob.expect(r" 401 bob zed ")
    await ana.fails("no_such_user", "whois", username="zed")
    await ana.fails("no_such_user", "dm", to="zed", text="still there?")
    tmp = await ana.ok("join", room="tmp")
    assert tmp["room"]["owner"] is None and tmp["room"]["members"] == 1


async def test_moderators_kick_mute_and_ban_guests_but_never_op_them(
    irc_guests: IrcServer,
) -> None:
    """A room's owner mutes (404), kicks and bans (474) a guest; making a guest a
    moderator or inviting it to a stored room is not_for_guests; the guest's
    ban goes with the guest."""
    ana = await irc_guests.running.user("ana")
    await ana.ok("create", room="den")
    zed = await irc_guests.guest("zed")
    await zed.join("#general", "#den")
    await ana.fails("not_for_guests", "op", room="den", username="zed")
    await ana.fails("not_for_guests", "invite", room="general", username="zed")
    await ana.ok("mute", room="den", username="zed")
    await zed.expect(r"MODE #den \+q zed$")
    await zed.send("PRIVMSG #den :can you hear me")
    await zed.expect(r" 404 zed #den :Cannot send to channel")
    await ana.ok("kick", room="den", username="zed", reason="out")
    await zed.expect(r"^:ana!~ana@nexus KICK #den zed :out$")
    await ana.ok("ban", room="den", username="zed")
    await zed.send("JOIN #den")
    await zed.expect(r" 474 zed #den ")
    assert [ban["user"] for ban in (await ana.ok("bans", room="den"))["bans"]] == ["zed"]
    await zed.send("QUIT :bye")
    await zed.closed()
    await ana.event("presence", user="zed")
    assert (await ana.ok("bans", room="den"))["bans"] == []
    den = (await ana.ok("join", room="den"))["room"]
    assert den["muted"] == [] and den["members"] == 1


async def test_a_guest_cannot_erase_its_messages_nor_an_account_a_guests(
    irc_guests: IrcServer,
) -> None:
    """Guests may not edit or erase (REDACT is forbidden); an account named like a
    departed guest cannot edit the guest's messages either: they are nobody's."""
    ana = await irc_guests.running.user("ana")
    zed = await irc_guests.guest("zed", caps="draft/message-redaction message-tags")
    await zed.join("#general")
    await zed.send("PRIVMSG #general :mine")
    await zed.send("REDACT #general general.1")
    await zed.expect(r"^:nexus FAIL REDACT REDACT_FORBIDDEN #general general.1 :guests cannot")
    await zed.close()
    await ana.event("left", room="general", user="zed")  # the guest is gone
    zed_now = await irc_guests.running.user("zed")
    message = (await zed_now.ok("history", room="general"))["messages"][0]
    assert message["from"] == "zed" and message["guest"] is True
    await zed_now.fails("not_allowed", "edit", room="general", seq=1, text="not mine")


async def test_guest_login_is_unknown_over_tcp(irc_guests: IrcServer) -> None:
    """`guest` is no command of the wire protocol: a TCP client is told
    unknown_command, before and after logging in, even with --irc-guests."""
    stranger = await irc_guests.running.peer()
    await stranger.fails("unknown_command", "guest", username="sneaky")
    member = await irc_guests.running.user("ana")
    await member.fails("unknown_command", "guest", username="sneaky")
    await stranger.fails("auth_failed", "login", username="sneaky", password=PASSWORD)


async def test_a_failed_write_ends_guest_sessions(irc_guests: IrcServer, monkeypatch) -> None:
    """After a failed write the store reloads from disk, where no guest is: each
    guest gets ERROR and is disconnected, the others see it go and its room
    deleted, and accounts carry on."""
    ana = await irc_guests.running.user("ana")
    zed = await irc_guests.guest("zed")
    await zed.join("#general", "#tmp")
    await ana.ok("join", room="tmp")
    with writes_failing(irc_guests.running.server.store, monkeypatch):
        await ana.fails("internal", "say", room="general", text="lost")
    online = (await ana.ok("online"))["users"]  # at once: the guest's socket may still be open
    assert [user["username"] for user in online] == ["ana"]
    await zed.expect(r"^ERROR :Closing link: the server could not write its data")
    await zed.closed()
    assert (await ana.event("presence", user="zed"))["online"] is False
    await ana.event("room_deleted", room="tmp")
    await ana.fails("no_such_user", "whois", username="zed")
    assert (await ana.ok("say", room="general", text="after"))["seq"] == 1


async def test_sigkill_with_guests_connected_leaves_no_guest_in_the_data(tmp_path) -> None:
    """The real server killed while a guest talks: after a restart no guest and no
    ephemeral room is in the files or the server, the guest's #general messages
    keep their seq, and the account's own state is intact."""
    data = tmp_path / "nexus_data.json"
    flags = ("--irc-port", "0", "--irc-guests", "on", "--rate-limit", "off")
    with ServerProcess(data, *flags) as server:
        irc_port = int(re.search(r"IRC on \S+:(\d+)", server.listening).group(1))  # type: ignore[union-attr]
        ana = await Peer.connect("127.0.0.1", server.port)
        await ana.frame()
        await ana.ok("register", username="ana", password=PASSWORD)
        await ana.ok("join", room="random")
        await ana.ok("bio", text="kept")
        zed = await IrcPeer.connect("127.0.0.1", irc_port)
        await zed.send("NICK zed", "USER zed 0 * :Z")
        await zed.expect(r" 001 zed ")
        zed.nick = "zed"
        await zed.join("#general", "#tmp")
        await zed.send("PRIVMSG #general :one", "PRIVMSG #general :two", "PRIVMSG ana :psst")
        await ana.event("dm", text="psst")
        await ana.ok("join", room="tmp")
        await ana.ok("say", room="tmp", text="ephemeral words")
        assert (await ana.ok("say", room="general", text="three"))["seq"] == 3
        server.kill()
        await zed.close()
        await ana.close()
    journal = data.with_name(data.name + ".journal").read_text()
    records = [json.loads(line[9:]) for line in journal.splitlines()]
    assert {record["op"] for record in records} == {"register", "join", "bio", "token", "say"}
    assert not [r for r in records if r.get("room") == "tmp" or "psst" in str(r)]
    assert [r["guest"] for r in records if "guest" in r] == ["zed", "zed"]
    with ServerProcess(data, *flags) as server:
        ana = await Peer.connect("127.0.0.1", server.port)
        await ana.frame()
        reply = await ana.ok("login", username="ana", password=PASSWORD)
        assert reply["rooms"] == ["general", "random"] and reply["user"]["bio"] == "kept"
        assert "tmp" not in [room["name"] for room in (await ana.ok("rooms"))["rooms"]]
        await ana.fails("no_such_user", "whois", username="zed")
        general = (await ana.ok("history", room="general"))["messages"]
        assert [(m["seq"], m["from"], m["text"], m.get("guest")) for m in general] == [
            (1, "zed", "one", True),
            (2, "zed", "two", True),
            (3, "ana", "three", None),
        ]
        assert (await ana.ok("say", room="general", text="four"))["seq"] == 4
        await ana.close()
        assert server.stop() == 0
    snapshot = json.loads(data.read_text())
    assert [user["username"] for user in snapshot["users"]] == ["ana"]
    assert "tmp" not in [room["name"] for room in snapshot["rooms"]] and snapshot["dms"] == []


async def test_a_guest_has_no_account_in_account_tag_or_extended_join(
    irc_guests: IrcServer,
) -> None:
    """An account's client with account-tag and extended-join sees a guest's JOIN
    with `*` for the account (and the real name its USER gave) and no account
    tag, an account's JOIN with its name; the members request marks the guest."""
    ana = await irc_guests.irc_user("ana", caps="account-tag extended-join")
    zed = await irc_guests.guest("zed")
    await zed.join("#general")
    await ana.expect(r"^:zed!~zed@nexus JOIN #general \* :?guest$")
    bob = await irc_guests.running.user("bob")
    await bob.ok("join", room="random")
    await ana.send("JOIN #random")
    await ana.expect(r" 366 ana #random ")
    await bob.ok("say", room="random", text="hi")
    await ana.expect(r"^@account=bob :bob!~bob@nexus PRIVMSG #random :hi$")
    members = (await bob.ok("members", room="general"))["members"]
    guests = {m["username"]: m["guest"] for m in members}
    assert guests["zed"] is True and guests["ana"] is False


async def test_a_guests_quit_reason_reaches_the_others(irc_guests: IrcServer) -> None:
    """A guest's QUIT reason is what the others see in its QUIT, from the mask
    its lines had (one that drops its connection without QUIT: `guest left`)."""
    ana = await irc_guests.irc_user("ana")
    zed = await irc_guests.peer()
    await zed.send("NICK zed", "USER zedsuser 0 * :Zed")
    await zed.expect(r" 001 zed ")
    zed.nick = "zed"
    await zed.join("#general")
    await ana.expect(r"^:zed!~zedsuser@nexus JOIN #general$")
    await zed.send("QUIT :zed out")
    await ana.expect(r"^:zed!~zedsuser@nexus QUIT :Quit: zed out$")
    yan = await irc_guests.guest("yan")
    await yan.join("#general")
    await yan.close()
    await ana.expect(r"^:yan!~yan@nexus QUIT :Quit: guest left$")
