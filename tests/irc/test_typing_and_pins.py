"""Typing over IRC (IRCv3 `+typing` on TAGMSG), both ways, and pins as notices;
clients that take no tags are told nothing of typing."""

from __future__ import annotations

from tests.irc.conftest import IrcServer


async def test_typing_reaches_irc_clients_that_take_tags(irc: IrcServer) -> None:
    tagged = await irc.irc_user("ana", caps="message-tags")
    plain = await irc.irc_user("pat")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("typing", room="general")
    await tagged.expect(r"^@\+typing=active :bob!\S+ TAGMSG #general$")
    await bob.ok("say", room="general", text="there")
    await tagged.expect(r"^@\+typing=done :bob!\S+ TAGMSG #general$")
    await plain.expect(r"PRIVMSG #general :there")
    assert not [line for line in plain.lines if "TAGMSG" in line]
    await bob.ok("typing", **{"with": "ana"})
    await tagged.expect(r"^@\+typing=active :bob!\S+ TAGMSG ana$")


async def test_an_irc_clients_typing_reaches_the_others(irc: IrcServer) -> None:
    ana = await irc.irc_user("ana", caps="message-tags")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    await ana.send("@+typing=active TAGMSG #general")
    assert await bob.event("typing") == {
        "event": "typing",
        "room": "general",
        "user": "ana",
        "on": True,
    }
    await ana.send("@+typing=done TAGMSG #general")
    assert (await bob.event("typing"))["on"] is False
    await ana.send("@+typing=active TAGMSG bob")
    assert (await bob.event("typing"))["with"] == "ana"


async def test_a_pin_is_a_notice_in_its_channel(irc: IrcServer) -> None:
    """IRC has no pins: a pin (and an unpin) is told as a notice naming the
    message the Nexus way, `#room/seq`."""
    ana = await irc.irc_user("ana")
    root = await irc.running.user("root", register=False)  # the store's first account: an admin
    await root.ok("say", room="general", text="the plan")
    seq = (await root.ok("history", room="general"))["messages"][-1]["seq"]
    await root.ok("pin", room="general", seq=seq)
    await ana.expect(rf"^:\S+ NOTICE #general :root pinned #general/{seq}$")
    await root.ok("pin", room="general", seq=seq, on=False)
    await ana.expect(rf"^:\S+ NOTICE #general :root unpinned #general/{seq}$")


async def test_formatting_crosses_as_irc_codes_both_ways(irc: IrcServer) -> None:
    """The protocol's bold and italic become IRC's codes, strike and code
    stay as typed (a code block a line per code line, a link "label
    <url>"); a plain message goes as typed; an
    IRC client's bold, italic, strike and monospace come back as the
    protocol's delimiters, its colours go."""
    ana = await irc.irc_user("ana")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("say", room="general", text="**ship** it _now_, see [docs](https://x.org)")
    await ana.expect(r"PRIVMSG #general :\x02ship\x02 it \x1dnow\x1d, see docs <https://x\.org>$")
    await bob.ok("say", room="general", text="~~old~~ `v2` **~~both~~**")
    await ana.expect(r"PRIVMSG #general :~~old~~ `v2` ~~\x02both\x02~~$")  # as irssi reads them
    await bob.ok("say", room="general", text="run:\n```sh\nmake test\nmake lint\n```")
    await ana.expect(r"PRIVMSG #general :run:$")
    await ana.expect(r"PRIVMSG #general :make test$")
    await ana.expect(r"PRIVMSG #general :make lint$")
    await bob.ok("say", room="general", text="**as typed**", plain=True)
    await ana.expect(r"PRIVMSG #general :\*\*as typed\*\*$")
    await ana.send("PRIVMSG #general :\x02bold\x02 \x1dit\x1d \x1egone\x1e \x11code\x11 \x0304red")
    said = await bob.event("message", room="general", **{"from": "ana"})
    assert said["text"] == "**bold** *it* ~~gone~~ `code` red"
