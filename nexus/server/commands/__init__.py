"""Every command, registered once in one table (`registry.COMMANDS`).

A handler gets a typed request (already validated by protocol.parse) and a
`Context`; it checks the rules that need the model, applies its change with
`ctx.change`, fans events out through `ctx.hub` and returns its reply's
fields. It never sees bytes or sockets, and the outbox holds every frame
until the store has written the changes before it.
"""

from nexus import protocol as p
from nexus.server.commands import (  # noqa: F401 (they register)
    accounts,
    guests,
    messages,
    moderation,
    profiles,
    reading,
    rooms,
    threads,
)
from nexus.server.commands.context import Context
from nexus.server.commands.registry import COMMANDS, dispatch, not_saved

__all__ = ["COMMANDS", "Context", "dispatch", "not_saved"]

assert set(COMMANDS) == set(p.REQUESTS), set(p.REQUESTS) ^ set(COMMANDS)
