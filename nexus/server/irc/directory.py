"""What a server's IRC side knows that Nexus does not keep, shared by its IRC
connections: what each client said at registration (USER's username and real
name), and what a line carried that its request cannot (that a message was a
NOTICE, its client-only tags, a PART's or a QUIT's reason, who set a topic
and when). The other IRC clients show them as an IRC server would.

A request carries what Nexus keeps, and its event reaches every member with
that only, so the line's sender notes the rest here before its request goes
to the core, and each translator that shows the event looks it up: they all
run in the server's process, and a sender's line is always read before the
event it causes is written. Native clients never see any of it.

Everything here is bounded: a message's extras are kept by its seq for the
last `_MESSAGES_KEPT` messages (the same lines for every member that
translates the event, however late its turn in the flush); a reason is used
only within `_FRESH` seconds of its line (it says why this PART or QUIT
happened, not the next one); a registration goes with its connection, after
the events its departure causes are written.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nexus.server.irc.formatting import bare

USERLEN = 20  # characters of a username, its `~` included (ISUPPORT USERLEN)


_FRESH = 10.0  # seconds a PART or QUIT reason (or a gone client's name) stays usable


_MESSAGES_KEPT = 4096


_REASONS_KEPT = 4096


_QUOTED = 40  # characters of a root's text a plain client's thread reply quotes


@dataclass(slots=True, eq=False)  # each one is a connection's own: found by identity
class Registration:
    """What one IRC connection said at registration."""

    nick: str
    username: str  # as the mask shows it: `~` and what USER sent (an ident is never checked)
    realname: str
    invisible: bool = False  # user mode +i: WHO masks list it only to those who share a channel
    gone: float | None = None  # when the connection ended


@dataclass(slots=True, eq=False)
class Extras:
    """What a message's line said that the message does not keep."""

    notice: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # client-only tags (`+name`)


_K = TypeVar("_K")


Said = tuple[str, str, str]  # (scope, the author in lower case, text): a message not yet stored


class Directory:
    """One server's IRC connections' shared knowledge (see the module's docs)."""

    def __init__(self) -> None:
        self.people: dict[str, list[Registration]] = {}  # lower-case nick -> its connections
        self.usernames: dict[str, str] = {}  # lower-case nick -> the username its mask shows
        self.leaving: deque[tuple[float, str]] = deque()  # when a connection went, its nick
        self.pending: dict[Said, deque[Extras]] = {}
        self.messages: OrderedDict[tuple[str, int], Extras] = OrderedDict()  # (scope, seq)
        self.parts: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self.quits: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.topics: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # (by, topic, when)
        # Messages shown lately, (scope, seq) -> (author, text): what a plain
        # client's line of a thread reply quotes of its root.
        self.shown: OrderedDict[tuple[str, int], tuple[str, str]] = OrderedDict()

    # -- who is connected over IRC ----------------------------------------

    def register(self, nick: str, username: str, realname: str) -> Registration:
        self._let_go()
        entry = Registration(nick, username, realname)
        key = nick.lower()
        self.people.setdefault(key, []).append(entry)
        self.usernames[key] = username
        return entry

    def unregister(self, entry: Registration) -> None:
        """`entry`'s connection ended: its name still shows in the lines its
        departure causes (a QUIT), for a while."""
        entry.gone = now = time.monotonic()
        self.leaving.append((now, entry.nick.lower()))
        self._let_go()

    def _let_go(self) -> None:
        """Forgets the connections gone for a while; a nick shows the username
        of its newest connection left, else its own."""
        leaving = self.leaving
        now = time.monotonic()
        while leaving and now - leaving[0][0] > _FRESH:
            _, key = leaving.popleft()
            kept = [e for e in self.people.get(key, ()) if e.gone is None]
            if kept:
                self.people[key] = kept
                self.usernames[key] = kept[-1].username
            else:
                self.people.pop(key, None)
                self.usernames.pop(key, None)

    def registration(self, nick: str) -> Registration | None:
        """The newest registration by `nick` still connected, else the newest one."""
        entries = self.people.get(nick.lower())
        if not entries:
            return None
        for entry in reversed(entries):
            if entry.gone is None:
                return entry
        return entries[-1]

    def username(self, nick: str) -> str:
        """`nick`'s username in its mask: what its IRC client sent, else its nick."""
        return self.usernames.get(nick.lower()) or user_part(nick)

    # -- what a message's line said ---------------------------------------

    def said(self, scope: str, author: str, text: str, extras: Extras) -> None:
        """A message about to be asked for: its extras, until it is stored."""
        self.pending.setdefault((scope, author.lower(), text), deque()).append(extras)

    def stored(self, scope: str, seq: int, extras: Extras) -> None:
        """The message `extras` came with is `seq` (its sender's reply)."""
        self._unpend(extras)
        if (scope, seq) not in self.messages:
            self._keep(scope, seq, extras)

    def refused(self, extras: Extras) -> None:
        """The message `extras` came with was refused: no event will come."""
        self._unpend(extras)

    def extras(self, scope: str, message: Mapping[str, Any]) -> Extras | None:
        """What the line of `message` (an event's) said beyond the message."""
        seq: int = message["seq"]
        found = self.messages.get((scope, seq))
        if found is not None:
            return found
        key = (scope, str(message["from"]).lower(), str(message["text"]))
        waiting = self.pending.get(key)
        if not waiting:
            return None
        found = waiting.popleft()
        if not waiting:
            del self.pending[key]
        self._keep(scope, seq, found)
        return found

    def _keep(self, scope: str, seq: int, extras: Extras) -> None:
        self.messages[(scope, seq)] = extras
        if len(self.messages) > _MESSAGES_KEPT:
            self.messages.popitem(last=False)

    def _unpend(self, extras: Extras) -> None:
        for key, waiting in self.pending.items():
            if extras in waiting:
                waiting.remove(extras)
                if not waiting:
                    del self.pending[key]
                return

    # -- what a thread reply quotes --------------------------------------------

    def seen(self, scope: str, seq: int, author: str, text: str, plain: bool) -> None:
        """A message was shown: a reply in its thread may quote it."""
        shown = self.shown
        if (scope, seq) not in shown:
            shown[scope, seq] = (author, text if plain else bare(text))
            if len(shown) > _MESSAGES_KEPT:
                shown.popitem(last=False)

    def quote(self, scope: str, root: int, link: str) -> str:
        """The short quote a thread reply starts with for a client that
        takes no tags: its root's author and first words when they were
        shown lately, else the root's link (`#room/seq`)."""
        found = self.shown.get((scope, root))
        if found is None:
            return f"(thread {link}) "
        author, text = found
        words = " ".join(text.split())
        if len(words) > _QUOTED:
            words = words[: _QUOTED - 1] + "\u2026"
        return f'(thread: {author} "{words}") '

    # -- reasons and topics -------------------------------------------------

    def parting(self, room: str, nick: str, reason: str) -> None:
        _note(self.parts, (room, nick.lower()), reason)

    def part_reason(self, room: str, nick: str) -> str | None:
        return _fresh(self.parts, (room, nick.lower())) or None

    def joined(self, room: str, nick: str) -> None:
        """`nick` is in `room` again: a PART's reason is that PART's only."""
        self.parts.pop((room, nick.lower()), None)

    def quitting(self, nick: str, reason: str) -> None:
        _note(self.quits, nick.lower(), reason)

    def quit_reason(self, nick: str) -> str | None:
        return _fresh(self.quits, nick.lower())

    def topic_set(self, room: str, by: str, topic: str) -> None:
        """`room`'s topic is `topic`, set by `by` now (told once for each
        member that sees it: the first keeps its time)."""
        if self.topics.get(room, ("", "", 0.0))[:2] != (by, topic):
            self.topics.pop(room, None)
            self.topics[room] = (by, topic, time.time())
            if len(self.topics) > _REASONS_KEPT:
                self.topics.popitem(last=False)

    def topic_setter(self, room: str, topic: str) -> tuple[str, float] | None:
        """Who set `room`'s topic `topic` and when, if an IRC client saw it set."""
        found = self.topics.get(room)
        if found is None or found[1] != topic:
            return None
        return found[0], found[2]


def user_part(nick: str) -> str:
    """The username of someone whose IRC client told none (or who has none)."""
    return ("~" + nick)[:USERLEN]


def _note(kept: OrderedDict[_K, tuple[str, float]], key: _K, text: str) -> None:
    kept.pop(key, None)
    kept[key] = (text, time.monotonic())
    if len(kept) > _REASONS_KEPT:
        kept.popitem(last=False)


def _fresh(kept: OrderedDict[_K, tuple[str, float]], key: _K) -> str | None:
    found = kept.get(key)
    if found is None or time.monotonic() - found[1] > _FRESH:
        return None
    return found[0]
