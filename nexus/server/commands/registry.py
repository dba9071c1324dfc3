"""The one table of commands, and `dispatch`: a decoded frame in, its reply out.

A handler is a plain function `(ctx, request) -> reply fields`, run to its
end inside the read that brought its frame. Those that may have to wait (for
a password hash, for the store to write an account before the session is
attached to it, for history the store reads from disk) are registered with
`suspends=True` and may return an awaitable instead (a coroutine function
always does); `dispatch` hands that back as a coroutine for the connection
core to run as a task, with later frames waiting their turn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server.commands.context import Context, in_turn
from nexus.server.session import Phase
from nexus.server.store import NeedTurn, StoreError

log = logging.getLogger("nexus.commands")

Handler = Callable[[Context, Any], Any]  # returns reply fields, or an awaitable of them
Reply = dict[str, Any]

ANONYMOUS = frozenset({Phase.ANONYMOUS})
AUTHENTICATED = frozenset({Phase.AUTHENTICATED})
ANY_OPEN = ANONYMOUS | AUTHENTICATED

# What a command asked in the wrong phase is told.
_REFUSAL = {
    Phase.ANONYMOUS: ("auth_required", "log in or register first"),
    Phase.AUTHENTICATED: ("already_authenticated", "already logged in"),
}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: Handler
    phases: frozenset[Phase]  # session phases the command is allowed in
    flood: bool  # counts against the per-user flood budget
    suspends: bool  # the handler is a coroutine that may wait
    # Run in this node's turn (with several nodes, store/clustered.py): a
    # command that changes things, so that it checks them as they stand. A
    # read need not wait; nor a handler that takes its turn itself, after a
    # long wait of its own (a password's hash).
    turn: bool
    requests: p.RequestTable  # where its typed request is declared


COMMANDS: dict[str, Command] = {}  # the wire protocol's
# Commands only a front end asks, for its peers (the IRC front end's `guest`
# login): answered only on sessions that front end lets in as guests
# (`Session.guests_allowed`), `unknown_command` on every other.
FRONT_END_COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    phases: frozenset[Phase] = AUTHENTICATED,
    flood: bool = False,
    suspends: bool = False,
    front_end: bool = False,
    turn: bool = True,
) -> Callable[[Handler], Handler]:
    table, requests = (
        (FRONT_END_COMMANDS, p.FRONT_END_REQUESTS) if front_end else (COMMANDS, p.REQUESTS)
    )

    def register(handler: Handler) -> Handler:
        assert name in requests and name not in table, name
        table[name] = Command(name, handler, phases, flood, suspends, turn, requests)
        return handler

    return register


def dispatch(ctx: Context, frame: dict[str, Any]) -> Reply | Coroutine[Any, Any, Reply]:
    """One decoded frame -> its reply, or a coroutine that makes it for a
    command that suspends. Never raises but CancelledError."""
    rid = None
    name = "?"
    try:
        name = p.command_name(frame)
        rid = p.request_id(frame)
        cmd = COMMANDS.get(name)
        if cmd is None and ctx.session.guests_allowed:
            cmd = FRONT_END_COMMANDS.get(name)
        if cmd is None:
            raise NexusError("unknown_command", f"no command {name[:40]!r}")
        phase = ctx.session.phase
        if phase not in cmd.phases:
            raise NexusError(*_REFUSAL[phase])
        req = p.parse(name, frame, cmd.requests)
        if cmd.flood:
            ctx.policy.check_flood(ctx.key)
        if cmd.turn and not ctx.has_turn():
            return _suspended(ctx, rid, name, in_turn(ctx.turn(), cmd.handler, ctx, req))
        try:
            reply = cmd.handler(ctx, req)
        except NeedTurn as wait:  # with several nodes: tried again in this node's turn
            return _suspended(ctx, rid, name, in_turn(wait.turn, cmd.handler, ctx, req))
        if cmd.suspends and type(reply) is not dict:
            return _suspended(ctx, rid, name, reply)
        return p.ok(rid, reply)
    except Exception as exc:
        return _failure(ctx, rid, name, exc)


async def _suspended(ctx: Context, rid: Any, name: str, reply: Awaitable[Any]) -> Reply:
    try:
        return p.ok(rid, await reply)
    except Exception as exc:
        return _failure(ctx, rid, name, exc)


def _failure(ctx: Context, rid: Any, name: str, exc: Exception) -> Reply:
    if isinstance(exc, NexusError):
        return p.error(rid, exc)
    if isinstance(exc, StoreError):
        return not_saved(rid, exc)
    log.error("%r failed on %r", ctx.session, name[:40], exc_info=exc)
    return p.error(rid, NexusError("internal", "internal error"))


def not_saved(rid: Any, exc: StoreError) -> Reply:
    """The reply to a request whose change the store could not write."""
    return p.error(rid, NexusError("internal", f"not saved, try again: {exc}"))
