"""Who may act on a message other than by being its author: one table.

A handler asks `may(action, model, room, key)`; the table says which roles
may. Moderation adds its roles (room moderators, server admins) here, and
every command that asks gets them at once.
"""

from __future__ import annotations

import enum

from nexus.server.model import Model, Room


class Role(enum.Enum):
    OWNER = "owner"  # the room's creator


# Actions on others' room messages -> the roles that may take them.
RULES: dict[str, frozenset[Role]] = {
    "erase": frozenset({Role.OWNER}),
}


def roles(model: Model, room: Room, key: str) -> set[Role]:
    """The roles a user (by key) holds in a room. (The model is for the
    server-wide roles moderation adds: an admin holds them in every room.)"""
    held = set()
    if room.owner == key:
        held.add(Role.OWNER)
    return held


def may(action: str, model: Model, room: Room, key: str) -> bool:
    return not RULES[action].isdisjoint(roles(model, room, key))
