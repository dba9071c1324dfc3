"""Threads over IRC: a reply carries `+draft/reply` with its root's msgid to
clients that take tags, and a short quote of its root to those that take
none; an IRC client's `+draft/reply` stays a quoted reply (docs/irc.md)."""

from __future__ import annotations

import pytest

from nexus.server.irc.directory import Directory
from tests.irc.conftest import IrcServer


async def test_a_thread_reply_names_its_root(irc: IrcServer) -> None:
    tagged = await irc.irc_user("ana", caps="message-tags")
    plain = await irc.irc_user("pat")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    root = await bob.ok("say", room="general", text="who is up for   lunch\non friday?")
    seq = root["seq"]
    await plain.expect(r"PRIVMSG #general :who is up for   lunch$")
    await bob.ok("say", room="general", text="me", thread=seq)
    await tagged.expect(rf"^@\S*\+draft/reply=general\.{seq}\S* :bob!\S+ PRIVMSG #general :me$")
    await plain.expect(r'PRIVMSG #general :\(thread: bob "who is up for lunch on friday\?"\) me$')
    long = "x" * 80
    await bob.ok("say", room="general", text=long)
    await bob.ok("say", room="general", text="ok", thread=seq + 2, broadcast=True)
    await plain.expect(rf'PRIVMSG #general :\(thread: bob "{"x" * 39}\u2026"\) ok$')
    # A quoted reply (reply_to) is told as before: the tag, and no quote.
    await bob.ok("say", room="general", text="answer", reply_to=seq)
    await tagged.expect(rf"^@\S*\+draft/reply=general\.{seq}\S* :bob!\S+ PRIVMSG #general :answer$")
    await plain.expect(r"PRIVMSG #general :answer$")


async def test_a_root_shown_on_joining_is_quoted(irc: IrcServer) -> None:
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    root = await bob.ok("say", room="general", text="before anyone came")
    plain = await irc.irc_user("pat")  # its JOIN shows the root from history
    await bob.ok("say", room="general", text="late reply", thread=root["seq"])
    await plain.expect(r'PRIVMSG #general :\(thread: bob "before anyone came"\) late reply$')


def test_a_root_not_shown_lately_is_named_by_its_link_else_quoted_in_words() -> None:
    directory = Directory()
    assert directory.quote("general", 5, "#general/5") == "(thread #general/5) "
    directory.seen("general", 5, "ana", "hi **there**", plain=False)
    assert directory.quote("general", 5, "#general/5") == '(thread: ana "hi there") '
    directory.seen("general", 6, "ana", "hi **there**", plain=True)  # as typed
    assert directory.quote("general", 6, "#general/6") == '(thread: ana "hi **there**") '


async def test_an_irc_clients_reply_stays_a_quoted_reply(irc: IrcServer) -> None:
    ana = await irc.irc_user("ana", caps="message-tags")
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    root = await bob.ok("say", room="general", text="question")
    await ana.send(f"@+draft/reply=general.{root['seq']} PRIVMSG #general :answer")
    said = await bob.event("message", room="general", **{"from": "ana"})
    assert said["reply_to"] == root["seq"] and "thread" not in said


async def test_a_threads_marker_is_not_the_channels(irc: IrcServer) -> None:
    """A thread's read marker moving elsewhere sends no MARKREAD (IRC has
    no thread markers); the room's marker still does."""
    ana = await irc.irc_user("ana", caps="draft/read-marker")
    other = await irc.running.user("ana", register=False)
    bob = await irc.running.user("bob")
    await bob.ok("join", room="general")
    root = await bob.ok("say", room="general", text="root")
    reply = await bob.ok("say", room="general", text="reply", thread=root["seq"])
    await ana.expect(r"PRIVMSG #general :.*reply$")
    await other.ok("read", room="general", seq=reply["seq"], thread=root["seq"])
    await other.ok("read", room="general", seq=root["seq"])
    await ana.expect(r"^:nexus MARKREAD #general timestamp=")
    with pytest.raises(AssertionError):  # one MARKREAD: the room's
        await ana.expect(r"^:nexus MARKREAD ", timeout=0.5)
