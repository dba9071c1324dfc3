"""Messages: say in a room, DMs and their history."""

from __future__ import annotations

import time

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.protocol import encode
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command
from nexus.server.model import pair_key, user_key


@command("say", flood=True)
def say(ctx: Context, req: p.Say) -> p.SentReply:
    room = ctx.room(req.room)
    if ctx.key not in room.members:
        raise NexusError("not_member", f"join #{room.name} to speak there")
    message = ctx.change("say", room=room.name, text=req.text, ts=time.time())
    ctx.hub.to_room(room, encode({"event": "message", **message}))
    return {"seq": message["seq"], "ts": message["ts"]}


@command("dm", flood=True)
def dm(ctx: Context, req: p.Dm) -> p.SentReply:
    recipient = user_key(ctx.user(req.to).username)
    message = ctx.change("dm", to=recipient, text=req.text, ts=time.time())
    frame = encode({"event": "dm", **message})
    ctx.hub.to_user(ctx.key, frame)
    if recipient != ctx.key:
        ctx.hub.to_user(recipient, frame)
    return {"seq": message["seq"], "ts": message["ts"]}


@command("dms")
def dms(ctx: Context, req: p.Dms) -> p.DmsReply:
    me = ctx.key
    other = user_key(ctx.user(req.with_).username)
    conv = ctx.model.conversations.get(pair_key(me, other))
    if conv is None:
        return {"messages": [], "more": False}
    messages, more = ctx.fit(*conv.history.page(req.limit, req.before))
    if conv.read.get(me, 0) < conv.history.last_seq:
        ctx.change("read", seq=conv.history.last_seq, **{"with": other})
    return {"messages": messages, "more": more}
