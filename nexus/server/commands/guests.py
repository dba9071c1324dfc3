"""Guests: IRC clients let in without an account (`nexus-server --irc-guests`).

A guest is a user the model marks `guest`, by the nick it asked for, from its
login to the end of its connection; the store never writes it (model.py says
which records are written). Here: the login, which only a front end asks for
(never on the wire), the departure, and what the others are told when a
reload after a failed write takes every guest away at once.
"""

from __future__ import annotations

import contextlib
import time

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server import records
from nexus.server.commands.context import Context
from nexus.server.commands.registry import ANONYMOUS, command
from nexus.server.commands.rooms import leave, tell_deleted
from nexus.server.hub import Hub
from nexus.server.model import Model, user_key
from nexus.server.store import StoreError

# Why a guest's session ends when the store reloads from disk.
GUESTS_LOST = "the server could not write its data and reloaded it; guests are not kept"


@command("guest", phases=ANONYMOUS, front_end=True, turn=False)
def guest(ctx: Context, req: p.Guest) -> p.LoginReply:
    """Logs the session in as a new guest named as asked, unless an account
    (`username_taken`) or a guest online (`nick_in_use`) has that name."""
    existing = ctx.model.user(req.username)
    if existing is not None:
        if existing.guest:
            raise NexusError("nick_in_use", f"{existing.username} is another guest's nick")
        raise NexusError("username_taken", f"{existing.username} is an account: log in as it")
    user = ctx.change(records.Guest(username=req.username, ts=time.time()))
    key = user_key(user.username)
    ctx.session.guest = True
    ctx.hub.attach(ctx.session, key)  # in no room yet: nobody to tell
    # A new guest is in no room and has no DM: nothing is unread.
    nothing: p.Unread = {"dms": {}, "rooms": {}, "mentions": 0}
    return {"user": ctx.profile(user), "rooms": [], "unread": nothing}


def depart(ctx: Context) -> None:
    """A guest's last session is gone: it goes offline and leaves every room,
    as anyone is seen to; a room of its own left empty goes too; then the
    guest itself, with its conversations."""
    user = ctx.model.users.get(ctx.key)
    if user is None or not user.guest:
        return  # the store reloaded a model without it
    with contextlib.suppress(StoreError):  # the server is stopping: it is not stored anyway
        ctx.hub.announce_presence(ctx.model, ctx.key, online=False)
        for name in sorted(user.rooms):
            leave(ctx, p.Leave(name))
        ctx.change(records.Depart(user=ctx.key))


def tell_lost(hub: Hub, before: Model) -> None:
    """After the store replaced `before` by what is on disk: whoever shared
    a room with a guest sees it go offline, and every ephemeral room is
    deleted (by its maker, if it still had one)."""
    for key, user in before.users.items():
        if user.guest:
            hub.announce_presence(before, key, online=False)
    for room in before.rooms.values():
        if room.ephemeral:
            by = before.display(room.owner) if room.owner is not None else ""
            tell_deleted(hub, before, room, by)
