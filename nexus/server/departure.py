"""What a user's going means, whatever connection carried it: out of core.py,
which only keeps count of connections.

A user goes when its last session does: a guest departs for good (its rooms
and conversations with it), anyone else is seen last then and shown
offline. And when the store reloads its model after a failed write, every
guest goes at once, as guests are never on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from nexus.errors import NexusError
from nexus.protocol import error
from nexus.server.commands import Context
from nexus.server.commands.context import in_turn
from nexus.server.commands.guests import GUESTS_LOST, depart, tell_lost
from nexus.server.frames import Frame
from nexus.server.hub import Hub
from nexus.server.model import Model
from nexus.server.outbox import Outbox
from nexus.server.records import Seen
from nexus.server.session import Session
from nexus.server.store import Store

# Departures waiting for this node's turn (several nodes), kept until done.
_departing: set[asyncio.Task[None]] = set()


def user_gone(ctx: Context, store: Store, now: float) -> None:
    """`ctx`'s session was its user's last (`Hub.detach` said so)."""
    ctx.composing.gone(store.model, ctx.key)
    if ctx.session.guest:
        depart(ctx)
        return
    key, hub = ctx.key, ctx.hub

    def seen() -> None:
        if hub.is_online(key):  # back meanwhile
            return
        store.record(Seen(user=key, ts=now))
        hub.announce_presence(store.model, key, online=False)

    if store.has_turn():
        seen()
        return
    # Several nodes: in this node's turn, so that the offline reaches every
    # node with the last seen it tells of.
    task = asyncio.get_running_loop().create_task(in_turn(store.turn(), seen))
    _departing.add(task)
    task.add_done_callback(_departing.discard)


def guests_lost(sessions: Iterable[Session], outbox: Outbox, hub: Hub, before: Model) -> None:
    """The store replaced `before` by what is on disk: each guest's session
    ends (it may connect again), and the others see the guests and their
    rooms go."""
    gone = Frame(error(None, NexusError("internal", GUESTS_LOST)))
    for session in sessions:
        if session.guest and session.open:
            outbox.send(session.outlet, gone)
            session.close()
            # Offline at once, not when its socket closes: its user is no
            # longer in the model that `online` and the rest read.
            hub.detach(session)
    tell_lost(hub, before)
