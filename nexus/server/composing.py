"""Who is typing where: told to the others as it happens, never stored.

A client says `typing` as its user types; the others' clients show it and
stop on their own 6 s after the last `on`. The server tells at most one
`on` a second for a user and a place (a client may say it on every key),
always the `off` that follows one (the user stopped, sent their message,
or their last session went), and nothing for a place where the user was
not shown typing. A place is a room's name, or `@` and the other party's
key for a DM.
"""

from __future__ import annotations

from nexus.protocol import TypingEvent
from nexus.server.clock import Clock
from nexus.server.frames import Frame
from nexus.server.hub import Hub
from nexus.server.model import Model, Room

EVERY = 1.0  # seconds between two `on`s told for the same user and place


def dm_place(other: str) -> str:
    return "@" + other


class Composing:
    """The one owner of who is typing where (see the module's note)."""

    def __init__(self, hub: Hub, clock: Clock) -> None:
        self.hub = hub
        self.clock = clock
        self._shown: dict[str, dict[str, float]] = {}  # typer's key -> place -> last `on` told

    def typing(self, model: Model, key: str, place: str, on: bool) -> None:
        """`key` typed in `place` (`on`), or stopped."""
        places = self._shown.get(key)
        told = places.get(place) if places is not None else None
        if on:
            now = self.clock.monotonic()
            if told is not None and now - told < EVERY:
                return
            self._shown.setdefault(key, {})[place] = now
        elif not self._forget(key, place):
            return
        self._tell(model, key, place, on)

    def sent(self, model: Model, key: str, place: str) -> None:
        """`key` sent a message to `place`: its typing there is over. (On
        every message: a look-up in an empty dict when nobody types.)"""
        if key in self._shown and self._forget(key, place):
            self._tell(model, key, place, False)

    def gone(self, model: Model, key: str) -> None:
        """`key`'s last session went: it types nowhere any more."""
        for place in self._shown.pop(key, {}):
            self._tell(model, key, place, False)

    def _forget(self, key: str, place: str) -> bool:
        places = self._shown.get(key)
        if places is None or places.pop(place, None) is None:
            return False
        if not places:
            del self._shown[key]
        return True

    def _tell(self, model: Model, key: str, place: str, on: bool) -> None:
        typer = model.users.get(key)
        if typer is None:
            return
        name = typer.username
        if place.startswith("@"):
            told: TypingEvent = {"event": "typing", "with": name, "user": name, "on": on}
            self.hub.to_user(place[1:], Frame(told))
            return
        room: Room | None = model.rooms.get(place)
        if room is None:
            return
        event: TypingEvent = {"event": "typing", "room": room.name, "user": name, "on": on}
        self.hub.to_users((member for member in room.members if member != key), Frame(event))
