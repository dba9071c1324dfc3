"""What an IRC line costs the server, over real sockets: each command asks the
core for what its answer needs (a page as long as the CHATHISTORY limit, one
message a channel for an empty TARGETS window, nothing for a TOPIC of a channel
already shown), never for a whole history or every room. Counted, not timed:
the messages and profiles the core encodes for each IRC connection's requests,
and the requests it is asked."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from nexus.server.irc.history import irc_time
from nexus.server.irc.state import IrcState
from nexus.server.irc.translator import Translator
from tests.irc.conftest import IrcPeer, IrcServer

HISTORY = "batch server-time message-tags draft/chathistory"

# Probes a search by time may take: about log2 of the 500 messages a room keeps.
SEARCH = 12


@dataclass
class Ledger:
    """What one IRC connection's requests cost: the core's answers, counted."""

    asked: Counter[str] = field(default_factory=Counter)  # requests by command
    messages: int = 0  # messages in the replies (history pages)
    profiles: int = 0  # users in the replies (`online`, `whois`)

    def clear(self) -> None:
        self.asked.clear()
        self.messages = self.profiles = 0


@pytest.fixture
def ledgers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Ledger]]:
    """Each IRC connection's Ledger, by nick."""
    books: dict[str, Ledger] = {}
    take_requests = IrcState.take_requests
    server_event = Translator.server_event

    def counted_requests(self: IrcState) -> list[dict[str, Any]]:
        asked = take_requests(self)
        book = books.setdefault(self.nick.lower(), Ledger())
        for request in asked:
            book.asked[request["cmd"]] += 1
        return asked

    def counted_event(self: Translator, obj: Any) -> None:
        if "id" in obj and obj.get("ok"):
            book = books.setdefault(self.nick.lower(), Ledger())
            book.messages += len(obj.get("messages", ()))
            book.profiles += len(obj.get("users", ())) + ("user" in obj)
        server_event(self, obj)

    monkeypatch.setattr(IrcState, "take_requests", counted_requests)
    monkeypatch.setattr(Translator, "server_event", counted_event)
    yield books


async def said(peer: Any, room: str, count: int) -> list[dict[str, Any]]:
    """`count` messages said in `room`, each in a millisecond of its own."""
    sent = []
    for i in range(1, count + 1):
        await asyncio.sleep(0.002)
        reply = await peer.ok("say", room=room, text=f"m{i}")
        sent.append(reply)
    return sent


async def page(peer: IrcPeer, command: str) -> list[str]:
    """The texts of the chathistory batch answering `command`."""
    await peer.send(command)
    ref = (await peer.expect(r":nexus BATCH \+(\S+) chathistory \S+$")).group(1)
    lines = await peer.until(rf"^:nexus BATCH -{ref}$")
    return [line.rsplit(" :", 1)[1] for line in lines[:-1]]


def stamp(ts: float) -> str:
    return "timestamp=" + irc_time(ts)


async def test_chathistory_reads_the_page_it_answers_not_the_history(
    irc: IrcServer, ledgers: dict[str, Ledger]
) -> None:
    """Each CHATHISTORY asks the core for about as many messages as it answers
    with (by msgid: those, and the newest first for a page read forward; by
    time: those and a search of a dozen one-message probes), never for the
    room's whole history, and still selects the same messages."""
    bob = await irc.running.user("bob")
    sent = await said(bob, "general", 60)
    ana = await irc.irc_user("ana", caps=HISTORY)
    book = ledgers["ana"]
    cases = [
        ("CHATHISTORY LATEST #general * 1", ["m60"], 0),
        ("CHATHISTORY LATEST #general * 5", ["m56", "m57", "m58", "m59", "m60"], 0),
        ("CHATHISTORY LATEST #general msgid=general.58 5", ["m59", "m60"], 0),
        ("CHATHISTORY BEFORE #general msgid=general.30 3", ["m27", "m28", "m29"], 0),
        ("CHATHISTORY AFTER #general msgid=general.30 3", ["m31", "m32", "m33"], 1),
        ("CHATHISTORY AROUND #general msgid=general.30 4", ["m28", "m29", "m30", "m31"], 1),
        (
            "CHATHISTORY BETWEEN #general msgid=general.10 msgid=general.14 9",
            ["m11", "m12", "m13"],
            1,
        ),
        ("CHATHISTORY BETWEEN #general msgid=general.40 msgid=general.10 2", ["m38", "m39"], 0),
        (f"CHATHISTORY LATEST #general {stamp(sent[57]['ts'])} 5", ["m59", "m60"], 1),
        (f"CHATHISTORY BEFORE #general {stamp(sent[29]['ts'])} 2", ["m28", "m29"], SEARCH),
        (f"CHATHISTORY AFTER #general {stamp(sent[29]['ts'])} 2", ["m31", "m32"], SEARCH + 1),
        (f"CHATHISTORY AROUND #general {stamp(sent[29]['ts'])} 2", ["m29", "m30"], SEARCH + 1),
    ]
    for command, texts, search in cases:
        book.clear()
        assert await page(ana, command) == texts, command
        assert book.messages <= len(texts) + search, (command, book.messages)
        assert book.asked["history"] <= 2 + search, (command, book.asked)


async def test_chathistory_of_a_dm_conversation_reads_its_page(
    irc: IrcServer, ledgers: dict[str, Ledger]
) -> None:
    """CHATHISTORY of a nick reads the page asked for (and the newest DM, which
    reading the conversation marks read), not the conversation."""
    ana = await irc.irc_user("ana", caps=HISTORY)
    bob = await irc.running.user("bob")
    for i in range(1, 41):
        await bob.ok("dm", to="ana", text=f"d{i}")
    await ana.expect(r" PRIVMSG ana :d40$")
    book = ledgers["ana"]
    book.clear()
    assert await page(ana, "CHATHISTORY BEFORE bob msgid=ana+bob.20 2") == ["d18", "d19"]
    assert book.messages <= 3, book.messages


async def test_targets_reads_a_message_a_channel_not_their_histories(
    irc: IrcServer, ledgers: dict[str, Ledger]
) -> None:
    """CHATHISTORY TARGETS over a window with no message reads one message a
    channel (its newest), and over a window with messages still lists them."""
    ana = await irc.irc_user("ana", caps=HISTORY)
    bob = await irc.running.user("bob")
    rooms = [f"r{i}" for i in range(6)]
    for room in rooms:
        await bob.ok("create", room=room)
        await ana.send(f"JOIN #{room}")
        await ana.expect(rf" 366 ana #{room} ")
        await said(bob, room, 20)
    newest = (await said(bob, "general", 20))[-1]
    book = ledgers["ana"]
    book.clear()
    future, later = "timestamp=2100-01-01T00:00:00.000Z", "timestamp=2100-01-02T00:00:00.000Z"
    await ana.send(f"CHATHISTORY TARGETS {future} {later} 50")
    ref = (await ana.expect(r":nexus BATCH \+(\S+) draft/chathistory-targets$")).group(1)
    assert await ana.until(rf":nexus BATCH -{ref}$") == [f":nexus BATCH -{ref}"]
    channels = len(rooms) + 1
    assert book.messages <= channels, book.messages
    book.clear()
    await ana.send(f"CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z {future} 50")
    ref = (await ana.expect(r":nexus BATCH \+(\S+) draft/chathistory-targets$")).group(1)
    lines = await ana.until(rf":nexus BATCH -{ref}$")
    assert lines[-2].endswith(f"CHATHISTORY TARGETS #general {irc_time(newest['ts'])}")
    assert len(lines) == channels + 1
    assert book.messages <= channels, book.messages


async def test_read_markers_read_a_few_messages_not_the_history(
    irc: IrcServer, ledgers: dict[str, Ledger]
) -> None:
    """A draft/read-marker client's join burst, MARKREAD asked and MARKREAD set
    each read a few messages (and a search's probes), not a room's history."""
    bob = await irc.running.user("bob")
    await irc.account("ana")
    first = await said(bob, "general", 5)
    native = await irc.running.user("ana", register=False)
    await native.ok("read", room="general", seq=first[2]["seq"])
    await native.ok("quit")
    await said(bob, "general", 55)
    ana = await irc.peer()
    # As senpai and gamja do, it fetches history itself: no lines replayed on JOIN.
    await ana.register("ana", caps="draft/read-marker draft/chathistory server-time batch")
    lines = await ana.until(r" 366 ana #general ")
    assert any(line.startswith(":nexus MARKREAD #general timestamp=") for line in lines)
    book = ledgers["ana"]
    assert book.messages <= 4, book.messages
    book.clear()
    await ana.send(f"MARKREAD #general {stamp(first[2]['ts'])}")
    await ana.expect(rf"^:nexus MARKREAD #general {re.escape(stamp(first[2]['ts']))}$")
    assert book.messages <= 2 + SEARCH, book.messages
    book.clear()
    await ana.send("MARKREAD #general")
    await ana.expect(rf"^:nexus MARKREAD #general {re.escape(stamp(first[2]['ts']))}$")
    assert book.messages <= 4, book.messages


async def test_topic_and_modes_of_a_channel_shown_ask_for_no_room_list(
    irc: IrcServer, ledgers: dict[str, Ledger]
) -> None:
    """TOPIC, MODE and MODE q of a channel the client is in answer from what it
    was shown (kept current by the server's events), without listing every room;
    ISON asks about the nicks it names, not about everyone online; JOIN of a
    channel already joined shows its NAMES without joining (and reading) again."""
    ana = await irc.irc_user("ana")
    bob = await irc.running.user("bob")
    for name in ("cyd", "dan", "eve"):
        await irc.running.user(name)
    await ana.send("JOIN #den")
    await ana.expect(r" 366 ana #den ")
    await bob.ok("join", room="den")
    await ana.send("TOPIC #den :plans", "MODE #den +q bob")
    await ana.expect(r" TOPIC #den :plans$")
    await ana.expect(r" MODE #den \+q bob$")
    book = ledgers["ana"]
    book.clear()
    await ana.send("TOPIC #den", "MODE #den", "MODE #den q", "ISON bob nobody")
    await ana.expect(r" 332 ana #den :plans$")
    await ana.expect(r" 324 ana #den \+nt$")
    await ana.expect(r" 728 ana #den q :?bob!\*@\*$")
    await ana.expect(r" 729 ana #den q :")
    await ana.expect(r" 303 ana :bob$")
    assert book.asked["rooms"] == 0 and book.asked["online"] == 0, book.asked
    assert book.profiles <= 2, book.profiles
    await ana.send("JOIN #den")
    names = (await ana.expect(r" 353 ana = #den :(.*)$")).group(1).split()
    assert sorted(names) == ["@ana", "bob"]
    await ana.expect(r" 366 ana #den ")
    assert book.asked["join"] == 0, book.asked


async def test_a_channel_not_joined_is_listed_only_when_it_can_be_seen(
    irc: IrcServer, ledgers: dict[str, Ledger]
) -> None:
    """TOPIC and MODE of a channel that does not exist, or is private and not
    the account's, are answered after a one-message read, not a list of every
    room; a public channel not joined is looked up in that list."""
    ana = await irc.irc_user("ana")
    cyd = await irc.running.user("cyd")
    await cyd.ok("create", room="vault", private=True)
    await cyd.ok("create", room="pub", topic="open to all")
    book = ledgers["ana"]
    book.clear()
    await ana.send("TOPIC #nosuch", "MODE #nosuch", "TOPIC #vault", "MODE #vault q")
    await ana.expect(r" 403 ana #nosuch :No such channel$")
    await ana.expect(r" 403 ana #nosuch :No such channel$")
    await ana.expect(r" 403 ana #vault :No such channel$")
    await ana.expect(r" 729 ana #vault q :")
    assert book.asked["rooms"] == 0, book.asked
    await ana.send("TOPIC #pub")
    await ana.expect(r" 332 ana #pub :open to all$")
    assert book.asked["rooms"] == 1, book.asked
