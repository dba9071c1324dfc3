"""Every command, registered once: `@command("say") async def say(ctx, req)`.

A handler gets a typed request (already validated by protocol.parse), checks
the rules that need the model, applies its change through the store, fans
events out and returns its reply's fields. It never touches a socket:
fan-out queues encoded frames on sessions through the hub, and the outbox
holds every frame until the store has written the changes before it. A
handler awaits the write itself (`commit`) only when it must not go on
before it: logging a session in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.protocol import encode, event
from nexus.server.auth import new_token, token_valid
from nexus.server.model import Room, User, pair_key, user_key
from nexus.server.session import ANONYMOUS, AUTHENTICATED, REFUSAL, Session
from nexus.server.store import StoreError

if TYPE_CHECKING:
    from nexus.server.server import NexusServer

log = logging.getLogger("nexus.commands")

Handler = Callable[["Context", Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: Handler
    states: frozenset[str]  # session states the command is allowed in
    flood_controlled: bool  # counts against the per-user message rate


COMMANDS: dict[str, Command] = {}


def command(name: str, *, states: tuple[str, ...] = (AUTHENTICATED,), flood: bool = False):
    def register(handler: Handler) -> Handler:
        assert name in p.REQUESTS and name not in COMMANDS, name
        COMMANDS[name] = Command(name, handler, frozenset(states), flood)
        return handler

    return register


@dataclass(slots=True)
class Context:
    """What a handler may use: the server's parts and the calling session."""

    server: NexusServer
    session: Session
    unwritten: bool = False  # the current request applied a change not yet written

    @property
    def model(self):
        return self.server.store.model

    @property
    def me(self) -> User:
        return self.model.users[self.session.user]

    def room(self, name: str) -> Room:
        room = self.model.rooms.get(name)
        if room is None:
            raise NexusError("no_such_room", f"no room #{name}")
        return room

    def user(self, name: str) -> User:
        user = self.model.user(name)
        if user is None:
            raise NexusError("no_such_user", f"no user {name[:40]!r}")
        return user

    def apply(self, op: str, **fields: Any) -> Any:
        """Applies a change made by the session's user; it is written with the
        next group, before the reply or any event leaves."""
        self.unwritten = True
        return self.server.store.apply({"op": op, "user": self.session.user, **fields})

    # -- wire objects ----------------------------------------------------

    def room_info(self, room: Room) -> dict[str, Any]:
        hub = self.server.hub
        return {
            "name": room.name,
            "topic": room.topic,
            "owner": None if room.owner is None else self.model.display(room.owner),
            "default": room.default,
            "members": len(room.members),
            "online": sum(1 for key in room.members if hub.is_online(key)),
        }

    def profile(self, user: User) -> dict[str, Any]:
        online = self.server.hub.is_online(user_key(user.username))
        return {
            "username": user.username,
            "bio": user.bio,
            "online": online,
            "rooms": sorted(user.rooms),
            "created": user.created,
            "last_seen": None if online else user.last_seen,
        }


async def dispatch(ctx: Context, frame: dict[str, Any]) -> dict[str, Any]:
    """One decoded frame -> its reply. Never raises but CancelledError."""
    rid = None
    name = "?"
    try:
        name = p.command_name(frame)
        rid = p.request_id(frame)
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise NexusError("unknown_command", f"no command {name[:40]!r}")
        if ctx.session.state not in cmd.states:
            raise NexusError(*REFUSAL[ctx.session.state])
        req = p.parse(name, frame)
        if cmd.flood_controlled:
            ctx.server.check_flood(ctx.session.user)
        return p.ok(rid, **await cmd.handler(ctx, req))
    except NexusError as err:
        return p.error(rid, err)
    except StoreError as exc:
        return not_saved(rid, exc)
    except Exception:
        log.exception("%r failed on %r", ctx.session, name[:40])
        return p.error(rid, NexusError("internal", "internal error"))


def not_saved(rid: Any, exc: StoreError) -> dict[str, Any]:
    """The reply to a request whose change the store could not write."""
    return p.error(rid, NexusError("internal", f"not saved, try again: {exc}"))


def _fit(ctx: Context, messages: list[Any], more: bool) -> tuple[list[Any], bool]:
    """Cuts a page, oldest first, to half the session's outbound cap.

    500 messages of 4,000 four-byte characters encode to ~8 MB: sent whole,
    a reply would push the asker past its cap and disconnect it. The newest
    message always stays, so paging with `before` keeps making progress;
    `more` says older ones remain.
    """
    budget = ctx.server.config.max_outbound // 2
    size = 0
    newest = len(messages) - 1
    for i in range(newest, -1, -1):
        size += len(encode(messages[i]))
        if size > budget and i < newest:
            return messages[i + 1 :], True
    return messages, more


# -- accounts -------------------------------------------------------------


async def _welcome(ctx: Context, user: User, with_token: bool) -> dict[str, Any]:
    """Attaches the session to `user` and builds the login reply, with a fresh
    login token unless the user just logged in with one."""
    key = user_key(user.username)
    reply: dict[str, Any] = {}
    if with_token:
        token, digest = new_token()
        await ctx.server.store.commit(
            {"op": "token", "user": key, "digest": digest, "ts": time.time()}
        )
        reply["token"] = token
    if ctx.server.hub.attach(ctx.session, key):
        ctx.server.announce_presence(key, online=True)
    reply.update(
        user=ctx.profile(user),
        rooms=sorted(user.rooms),
        unread={"dms": ctx.model.unread(key)},
    )
    return reply


@command("register", states=(ANONYMOUS,))
async def register(ctx: Context, req: p.Register) -> dict[str, Any]:
    ctx.server.check_login_rate(ctx.session, None)
    if ctx.model.user(req.username) is not None:
        raise NexusError("username_taken", f"{req.username} is taken")
    hashed = await ctx.server.hashing.hash(req.password)
    if ctx.model.user(req.username) is not None:  # registered while we hashed
        raise NexusError("username_taken", f"{req.username} is taken")
    user = await ctx.server.store.commit(
        {"op": "register", "username": req.username, "password": hashed, "ts": time.time()}
    )
    return await _welcome(ctx, user, with_token=True)


@command("login", states=(ANONYMOUS,))
async def login(ctx: Context, req: p.Login) -> dict[str, Any]:
    # Only a name that could be an account has a per-account bucket: the
    # limiter must not remember arbitrary strangers' strings (up to a frame
    # each) for names no account can have. The per-connection bucket still counts.
    account = user_key(req.username) if p.USERNAME_RE.fullmatch(req.username) else None
    ctx.server.check_login_rate(ctx.session, account)
    if account is None:  # no account can have this name: no need to spend a hash on it
        raise NexusError("auth_failed", "wrong username, password or token")
    user = ctx.model.user(req.username)
    if req.token is not None:
        accepted = user is not None and token_valid(user.tokens, req.token)
    else:
        accepted = await ctx.server.hashing.verify(user and user.password, req.password)
        accepted = accepted and ctx.model.user(req.username) is user  # not replaced meanwhile
    if not accepted:
        raise NexusError("auth_failed", "wrong username, password or token")
    return await _welcome(ctx, user, with_token=req.token is None)


@command("quit", states=(ANONYMOUS, AUTHENTICATED))
async def quit_(ctx: Context, req: p.Quit) -> dict[str, Any]:
    ctx.session.quitting = True  # the transport closes once the reply is queued
    return {}


@command("ping", states=(ANONYMOUS, AUTHENTICATED))
async def ping(ctx: Context, req: p.Ping) -> dict[str, Any]:
    return {"ts": time.time()}


# -- rooms ----------------------------------------------------------------


@command("join")
async def join(ctx: Context, req: p.Join) -> dict[str, Any]:
    room = ctx.room(req.room)
    key = ctx.session.user
    if key not in room.members:
        ctx.apply("join", room=room.name)
        frame = encode(event("joined", room=room.name, user=ctx.me.username))
        ctx.server.hub.broadcast(room, frame)
    history, _ = _fit(ctx, *room.history.page(p.PAGE_DEFAULT, None))
    return {"room": ctx.room_info(room), "history": history}


@command("leave")
async def leave(ctx: Context, req: p.Leave) -> dict[str, Any]:
    room = ctx.room(req.room)
    if ctx.session.user not in room.members:
        raise NexusError("not_member", f"you are not in #{room.name}")
    ctx.apply("leave", room=room.name)
    frame = encode(event("left", room=room.name, user=ctx.me.username))
    hub = ctx.server.hub
    hub.broadcast(room, frame)
    hub.send_user(ctx.session.user, frame, skip=ctx.session)
    return {}


@command("create", flood=True)  # each one reaches many sessions
async def create(ctx: Context, req: p.Create) -> dict[str, Any]:
    if req.room in ctx.model.rooms:
        raise NexusError("room_exists", f"#{req.room} already exists")
    room = ctx.apply("create", room=req.room, topic=req.topic, ts=time.time())
    info = ctx.room_info(room)
    ctx.server.hub.send_all(encode(event("room_created", room=info)))
    return {"room": info}


def _owned(ctx: Context, name: str) -> Room:
    room = ctx.room(name)
    if room.owner != ctx.session.user:
        raise NexusError("not_owner", f"only the owner of #{room.name} may do that")
    return room


@command("delete", flood=True)  # each one reaches many sessions
async def delete(ctx: Context, req: p.Delete) -> dict[str, Any]:
    if ctx.room(req.room).default:
        raise NexusError("protected_room", f"#{req.room} is a default room")
    room = _owned(ctx, req.room)
    ctx.apply("delete", room=room.name)
    by = ctx.me.username
    ctx.server.hub.send_all(encode(event("room_deleted", room=room.name, by=by)))
    return {}


@command("topic", flood=True)  # each one reaches many sessions
async def topic(ctx: Context, req: p.Topic) -> dict[str, Any]:
    room = _owned(ctx, req.room)
    ctx.apply("topic", room=room.name, topic=req.topic)
    frame = encode(event("topic", room=room.name, topic=req.topic, by=ctx.me.username))
    ctx.server.hub.broadcast(room, frame)
    return {"room": ctx.room_info(room)}


@command("rooms")
async def rooms(ctx: Context, req: p.Rooms) -> dict[str, Any]:
    return {"rooms": [ctx.room_info(room) for room in sorted(ctx.model.rooms.values(), key=_name)]}


def _name(room: Room) -> str:
    return room.name.casefold()


@command("online")
async def online(ctx: Context, req: p.Online) -> dict[str, Any]:
    users = (ctx.model.users[key] for key in ctx.server.hub.sessions)
    ordered = sorted(users, key=lambda u: u.username.casefold())
    return {"users": [ctx.profile(user) for user in ordered]}


@command("history")
async def history(ctx: Context, req: p.History) -> dict[str, Any]:
    messages, more = _fit(ctx, *ctx.room(req.room).history.page(req.limit, req.before))
    return {"messages": messages, "more": more}


# -- messages -------------------------------------------------------------


@command("say", flood=True)
async def say(ctx: Context, req: p.Say) -> dict[str, Any]:
    room = ctx.room(req.room)
    if ctx.session.user not in room.members:
        raise NexusError("not_member", f"join #{room.name} to speak there")
    message = ctx.apply("say", room=room.name, text=req.text, ts=time.time())
    ctx.server.hub.broadcast(room, encode(event("message", **message)))
    return {"seq": message["seq"], "ts": message["ts"]}


@command("dm", flood=True)
async def dm(ctx: Context, req: p.Dm) -> dict[str, Any]:
    recipient = user_key(ctx.user(req.to).username)
    message = ctx.apply("dm", to=recipient, text=req.text, ts=time.time())
    frame = encode(event("dm", **message))
    hub = ctx.server.hub
    hub.send_user(ctx.session.user, frame)
    if recipient != ctx.session.user:
        hub.send_user(recipient, frame)
    return {"seq": message["seq"], "ts": message["ts"]}


@command("dms")
async def dms(ctx: Context, req: p.Dms) -> dict[str, Any]:
    me = ctx.session.user
    other = user_key(ctx.user(req.with_).username)
    conv = ctx.model.conversations.get(pair_key(me, other))
    if conv is None:
        return {"messages": [], "more": False}
    messages, more = _fit(ctx, *conv.history.page(req.limit, req.before))
    if conv.read.get(me, 0) < conv.history.last_seq:
        ctx.server.store.record(
            {"op": "read", "user": me, "with": other, "seq": conv.history.last_seq}
        )
    return {"messages": messages, "more": more}


# -- profiles -------------------------------------------------------------


@command("whois")
async def whois(ctx: Context, req: p.Whois) -> dict[str, Any]:
    return {"user": ctx.profile(ctx.user(req.username))}


@command("bio")
async def bio(ctx: Context, req: p.Bio) -> dict[str, Any]:
    return {"user": ctx.profile(ctx.apply("bio", text=req.text))}


assert set(COMMANDS) == set(p.REQUESTS), set(p.REQUESTS) ^ set(COMMANDS)
