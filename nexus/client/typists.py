"""Typing notifications (protocol 3): who else is composing in each buffer, and
when to tell the server that I am.

Both sides take the time as an argument, so their rules can be tested
without waiting: another person shows as typing until their `on: false`,
their message, or TYPING_SHOWN seconds after their last `on`; I say `on`
at most every TYPING_EVERY seconds while a message is on my input line,
and `on: false` when the line is emptied without sending it (a message sent
ends my typing at the server by itself). A new message's `on` waits until
TYPING_TOLD seconds have passed since my last one there: the server tells
one a second for a place, even with an `off` or a message between, so an
earlier one would go unheard (a quick talker's every line would cost a
request for nothing).
"""

from __future__ import annotations

from collections.abc import Callable

TYPING_SHOWN = 6.0  # seconds someone shows as typing after their last `on` (protocol 3)
TYPING_EVERY = 3.0  # seconds between my `on`s while I type
TYPING_TOLD = 1.0  # the server's: seconds between two `on`s it tells for one place
# Commands whose text becomes a message: typing them is composing one.
COMPOSING = frozenset({"/me", "/reply", "/plain", "/say"})

Target = tuple[str, str]  # ("room", name) or ("with", username): where `typing` goes


class Typists:
    """Others typing, by buffer key (Buffer.key): each name with the time it expires."""

    def __init__(self) -> None:
        self._where: dict[str, dict[str, tuple[str, float]]] = {}

    def typing(self, where: str, user: str, on: bool, now: float) -> None:
        """`user` started (or goes on) typing in `where`, or stopped."""
        people = self._where.setdefault(where, {})
        if on:
            people[user.casefold()] = (user, now + TYPING_SHOWN)
        else:
            people.pop(user.casefold(), None)

    def stopped(self, where: str, user: str) -> None:
        """`user`'s message came: they are no longer typing it."""
        self._where.get(where, {}).pop(user.casefold(), None)

    def names(self, where: str, now: float) -> list[str]:
        """Who types in `where` now, in the order they started."""
        people = self._where.get(where, {})
        for key, (_, until) in list(people.items()):
            if until <= now:
                del people[key]
        return [name for name, _ in people.values()]


def typing_line(names: list[str]) -> str:
    """`ana is typing`, `ana and bob are typing`, `3 people are typing` ("" for nobody)."""
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]} is typing"
    if len(names) == 2:
        return f"{names[0]} and {names[1]} are typing"
    return f"{len(names)} people are typing"


def composes(text: str) -> bool:
    """Whether a line being typed is a message (not a command such as /join)."""
    if not text.strip():
        return False
    if not text.startswith("/") or text.startswith("//"):
        return True
    return text.split(None, 1)[0].lower() in COMPOSING


class Composer:
    """Says `typing` for my input line through `send(target, on)`; `enabled` False
    (client.toml's `typing = false`) says nothing, as WeeChat's typing plugin allows."""

    def __init__(self, send: Callable[[Target, bool], None], enabled: bool = True) -> None:
        self.send = send
        self.enabled = enabled
        self._target: Target | None = None  # where my last `on` went, while it holds
        self._told: dict[Target, float] = {}  # when my last `on` went, where it may still count

    def changed(self, target: Target | None, text: str, now: float) -> None:
        """The input line now holds `text`, typed for `target` (None: no room or DM)."""
        if not self.enabled:
            return
        typing = target is not None and composes(text)
        if self._target is not None and (not typing or target != self._target):
            self.send(self._target, False)
            self._target = None
        if not typing or target is None:
            return
        last = self._told.get(target)
        if last is None or now - last >= (TYPING_EVERY if target == self._target else TYPING_TOLD):
            self.send(target, True)
            self._target = target
            self._told = {place: at for place, at in self._told.items() if now - at < TYPING_EVERY}
            self._told[target] = now

    def sent(self) -> None:
        """The line went as a message: the server ends my typing there itself."""
        self._target = None
