"""Rooms: join, leave, create, delete, topic, rooms, online, history."""

from __future__ import annotations

import time

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.protocol import encode
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command
from nexus.server.model import Room


@command("join")
def join(ctx: Context, req: p.Join) -> p.JoinReply:
    room = ctx.room(req.room)
    if ctx.key not in room.members:
        ctx.policy.check_flood(ctx.key)  # a new member is announced to every member
        ctx.change("join", room=room.name)
        joined: p.Joined = {"event": "joined", "room": room.name, "user": ctx.me.username}
        ctx.hub.to_room(room, encode(joined))
    history, _ = ctx.fit(*room.history.page(p.PAGE_DEFAULT, None))
    return {"room": ctx.room_info(room, unread=True), "history": history}


@command("leave", flood=True)  # announced to every member
def leave(ctx: Context, req: p.Leave) -> p.Empty:
    room = ctx.room(req.room)
    if ctx.key not in room.members:
        raise NexusError("not_member", f"you are not in #{room.name}")
    ctx.change("leave", room=room.name)
    left: p.Left = {"event": "left", "room": room.name, "user": ctx.me.username}
    frame = encode(left)
    ctx.hub.to_room(room, frame)
    ctx.hub.to_user(ctx.key, frame, skip=ctx.session)
    return {}


@command("create", flood=True)  # announced to every session
def create(ctx: Context, req: p.Create) -> p.RoomReply:
    if req.room in ctx.model.rooms:
        raise NexusError("room_exists", f"#{req.room} already exists")
    room = ctx.change("create", room=req.room, topic=req.topic, ts=time.time())
    info = ctx.room_info(room)
    created: p.RoomCreated = {"event": "room_created", "room": info}
    ctx.hub.to_all(encode(created))
    return {"room": info}


def _owned(ctx: Context, name: str) -> Room:
    room = ctx.room(name)
    if room.owner != ctx.key:
        raise NexusError("not_owner", f"only the owner of #{room.name} may do that")
    return room


@command("delete", flood=True)  # announced to every session
def delete(ctx: Context, req: p.Delete) -> p.Empty:
    if ctx.room(req.room).default:
        raise NexusError("protected_room", f"#{req.room} is a default room")
    room = _owned(ctx, req.room)
    ctx.change("delete", room=room.name)
    deleted: p.RoomDeleted = {"event": "room_deleted", "room": room.name, "by": ctx.me.username}
    ctx.hub.to_all(encode(deleted))
    return {}


@command("topic", flood=True)  # announced to every member
def topic(ctx: Context, req: p.Topic) -> p.RoomReply:
    room = _owned(ctx, req.room)
    ctx.change("topic", room=room.name, topic=req.topic)
    changed: p.TopicChanged = {
        "event": "topic",
        "room": room.name,
        "topic": req.topic,
        "by": ctx.me.username,
    }
    ctx.hub.to_room(room, encode(changed))
    return {"room": ctx.room_info(room)}


@command("rooms")
def rooms(ctx: Context, req: p.Rooms) -> p.RoomsReply:
    ordered = sorted(ctx.model.rooms.values(), key=lambda room: room.name.casefold())
    return {"rooms": [ctx.room_info(room, unread=True) for room in ordered]}


@command("online")
def online(ctx: Context, req: p.Online) -> p.UsersReply:
    users = (ctx.model.users[key] for key in ctx.hub.sessions)
    ordered = sorted(users, key=lambda user: user.username.casefold())
    return {"users": [ctx.profile(user) for user in ordered]}


@command("history")
def history(ctx: Context, req: p.History) -> p.HistoryReply:
    messages, more = ctx.fit(*ctx.room(req.room).history.page(req.limit, req.before))
    return {"messages": messages, "more": more}
