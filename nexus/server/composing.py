"""Who is typing where: told to the others as it happens, never stored.

A client says `typing` as its user types; the others' clients show it and
stop on their own 6 s after the last `on`. The server tells at most one
`on` a second for a user and a place (a client may say it on every key),
counting from the last one told even when an `off` came between (a quick
talker's every message would otherwise cost an `on` and an `off` to every
member), always the `off` that follows one (the user stopped, sent their
message, or their last session went), and nothing for a place where the
user was not shown typing. A place is a room's name, or `@` and the other
party's key for a DM.
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
        # typer's key -> place -> when its last `on` was told: in _shown while
        # the others show it, in _ended for a second after its `off`.
        self._shown: dict[str, dict[str, float]] = {}
        self._ended: dict[str, dict[str, float]] = {}

    def typing(self, model: Model, key: str, place: str, on: bool) -> None:
        """`key` typed in `place` (`on`), or stopped."""
        if not on:
            if self._forget(key, place):
                self._tell(model, key, place, False)
            return
        now = self.clock.monotonic()
        told = _at(self._shown, key, place)
        if told is None:
            told = _at(self._ended, key, place)
        if told is not None and now - told < EVERY:
            return
        _drop(self._ended, key, place)
        self._shown.setdefault(key, {})[place] = now
        self._tell(model, key, place, True)

    def sent(self, model: Model, key: str, place: str) -> None:
        """`key` sent a message to `place`: its typing there is over. (On
        every message: a look-up in an empty dict when nobody types.)"""
        if key in self._shown and self._forget(key, place):
            self._tell(model, key, place, False)

    def gone(self, model: Model, key: str) -> None:
        """`key`'s last session went: it types nowhere any more."""
        self._ended.pop(key, None)
        for place in self._shown.pop(key, {}):
            self._tell(model, key, place, False)

    def _forget(self, key: str, place: str) -> bool:
        """Ends `key`'s typing in `place`: False if it was not shown."""
        told = _drop(self._shown, key, place)
        if told is None:
            return False
        if self.clock.monotonic() - told < EVERY:
            self._ended.setdefault(key, {})[place] = told
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
        self.hub.to_room_but(room, key, Frame(event))


def _at(times: dict[str, dict[str, float]], key: str, place: str) -> float | None:
    places = times.get(key)
    return places.get(place) if places is not None else None


def _drop(times: dict[str, dict[str, float]], key: str, place: str) -> float | None:
    """Removes and returns `times[key][place]`, and `key` once it has none."""
    places = times.get(key)
    if places is None:
        return None
    told = places.pop(place, None)
    if not places:
        del times[key]
    return told
