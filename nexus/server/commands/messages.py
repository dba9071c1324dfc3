"""Messages: say in a room, DMs and their history; edit, erase and react to one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.protocol import encode
from nexus.server import permissions, records
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command
from nexus.server.model import Message, Room, pair_key, user_key


def _no_such_message(seq: int) -> NexusError:
    return NexusError("no_such_message", f"no message {seq} here (never sent, trimmed or erased)")


def _muted(room: Room) -> NexusError:
    return NexusError("muted", f"you are muted in #{room.name}")


def _new_fields(ctx: Context, room: str | None, other: str | None, req: p.Say | p.Dm) -> Any:
    """The optional fields of a `say` or `dm` record, once the message it
    answers is checked: mentions are worked out here, once, and stored with
    the message."""
    if req.reply_to is not None:
        history = ctx.model.history_of(room, ctx.key, other)
        message = history.get(req.reply_to) if history is not None else None
        if message is None or message.erased:
            raise _no_such_message(req.reply_to)
    return {
        "action": req.action,
        "reply_to": req.reply_to,
        "mentions": ctx.model.mentioned(req.text),
        "guest": ctx.guest_name(),
    }


@command("say", flood=True)
def say(ctx: Context, req: p.Say) -> p.SentReply:
    room = ctx.room(req.room)
    key = ctx.key
    if key not in room.members:
        raise NexusError("not_member", f"join #{room.name} to speak there")
    if key in room.muted:
        raise _muted(room)
    fields = _new_fields(ctx, room.name, None, req)
    message = ctx.change(
        records.Say(user=key, room=room.name, text=req.text, ts=time.time(), **fields)
    )
    ctx.hub.to_room(room, encode({"event": "message", **message.wire()}))
    return {"seq": message.seq, "ts": message.ts}


@command("dm", flood=True)
def dm(ctx: Context, req: p.Dm) -> p.SentReply:
    recipient = user_key(ctx.user(req.to).username)
    fields = _new_fields(ctx, None, recipient, req)
    message = ctx.change(
        records.Dm(user=ctx.key, to=recipient, text=req.text, ts=time.time(), **fields)
    )
    frame = encode({"event": "dm", **message.wire()})
    ctx.hub.to_user(ctx.key, frame)
    if recipient != ctx.key:
        ctx.hub.to_user(recipient, frame)
    return {"seq": message.seq, "ts": message.ts}


@command("dms")
def dms(ctx: Context, req: p.Dms) -> p.DmsReply:
    me = ctx.key
    other = ctx.user(req.with_)
    conv = ctx.model.conversations.get(pair_key(me, user_key(other.username)))
    if conv is None:
        return {"messages": [], "more": False}
    messages, more = ctx.fit(*conv.history.page(req.limit, req.before))
    ctx.mark_dms_read(other, conv.history.last_seq)
    return {"messages": messages, "more": more}


@command("conversations")
def conversations(ctx: Context, req: p.Conversations) -> p.ConversationsReply:
    """Every DM conversation the caller has, read or not, the most recently
    active first: what a client lists after logging in again."""
    me, model = ctx.key, ctx.model
    found = []
    for conv_key in ctx.me.conversations:
        conv = model.conversations[conv_key]
        other = conv.users[0] if conv.users[1] == me else conv.users[1]
        stored = conv.history.messages
        ts = stored[-1].ts if stored else 0.0
        found.append((ts, conv, other))
    found.sort(key=lambda entry: entry[0], reverse=True)
    listed: list[p.ConversationInfo] = []
    for ts, conv, other in found[: req.limit]:
        user = model.users[other]
        info: p.ConversationInfo = {
            "with": user.username,
            "seq": conv.history.last_seq,
            "ts": ts,
            "unread": model.conversation_unread(me, conv),
        }
        if user.guest:
            info["guest"] = True
        listed.append(info)
    return {"conversations": listed}


# -- acting on one message ------------------------------------------------------


@dataclass(slots=True)
class Target:
    """A message named by `room` + `seq` or `with` + `seq`, and where it lives."""

    message: Message
    room: Room | None  # None for a DM
    other: str | None  # the DM partner's key

    @property
    def room_name(self) -> str | None:
        return self.room.name if self.room is not None else None

    def tell(self, ctx: Context, event: dict[str, Any]) -> None:
        """Sends an event about the message where the message went."""
        frame = encode(event)
        if self.room is not None:
            ctx.hub.to_room(self.room, frame)
            return
        ctx.hub.to_user(ctx.key, frame)
        if self.other != ctx.key:
            ctx.hub.to_user(self.other, frame)  # type: ignore[arg-type]


def _target(ctx: Context, room: str | None, with_: str | None, seq: int) -> Target:
    """The stored, not erased message a request names, or `no_such_message`.
    A private room the caller may not read is `not_member` first, so whether
    a message exists there is never told to an outsider."""
    found: Room | None = None
    other = None
    if room is not None:
        found = ctx.readable(room)
        history = found.history
    else:
        other = user_key(ctx.user(with_).username)  # type: ignore[arg-type]
        conv = ctx.model.conversations.get(pair_key(ctx.key, other))
        history = conv.history if conv is not None else None  # type: ignore[assignment]
    message = history.get(seq) if history is not None else None
    if message is None or message.erased:
        raise _no_such_message(seq)
    return Target(message, found, other)


def _authored(ctx: Context, target: Target) -> bool:
    """Whether the caller wrote the message. A guest's message is nobody's:
    its name may be someone else's now (an account, or another guest)."""
    message = target.message
    return message.author == ctx.me.username and not message.guest


def _check_not_guest(ctx: Context) -> None:
    if ctx.me.guest:
        raise NexusError("not_allowed", "guests cannot edit or erase messages")


@command("edit", flood=True)
def edit(ctx: Context, req: p.Edit) -> p.EditReply:
    target = _target(ctx, req.room, req.with_, req.seq)
    _check_not_guest(ctx)
    if not _authored(ctx, target):
        raise NexusError("not_allowed", "only its author may edit a message")
    if target.room is not None and ctx.key in target.room.muted:
        raise _muted(target.room)
    mentions = ctx.model.mentioned(req.text)
    ts = time.time()
    ctx.change(
        records.Edit(
            user=ctx.key,
            room=target.room_name,
            with_=target.other,
            seq=req.seq,
            text=req.text,
            ts=ts,
            mentions=mentions,
        )
    )
    target.tell(ctx, {"event": "edited", "message": target.message.wire()})
    return {"edited": ts}


@command("erase", flood=True)
def erase(ctx: Context, req: p.Erase) -> p.Empty:
    target = _target(ctx, req.room, req.with_, req.seq)
    _check_not_guest(ctx)
    authored = _authored(ctx, target)
    if not authored and (
        target.room is None or not permissions.may("erase", ctx.model, target.room, ctx.key)
    ):
        raise NexusError(
            "not_allowed", "only its author or the room's owner or moderators may erase a message"
        )
    author = target.message.author
    ctx.change(
        records.Erase(user=ctx.key, room=target.room_name, with_=target.other, seq=req.seq)
    )
    if not authored:
        assert target.room is not None  # in a DM only the author erases
        ctx.audit(f"erase of {req.seq}", target.room.name, author)
    target.tell(ctx, {"event": "erased", "message": target.message.wire()})
    return {}


@command("react", flood=True)
def react(ctx: Context, req: p.React) -> p.Empty:
    target = _target(ctx, req.room, req.with_, req.seq)
    if target.room is not None and ctx.key not in target.room.members:
        raise NexusError("not_member", f"join #{target.room.name} to react there")
    if target.room is not None and ctx.key in target.room.muted:
        raise _muted(target.room)
    me = ctx.me.username
    reactions = target.message.reactions or {}
    present = me in reactions.get(req.emoji, ())
    if present == req.on:
        return {}  # nothing changes: no record, no event
    if req.on and req.emoji not in reactions and len(reactions) >= p.REACTIONS_MAX:
        raise NexusError(
            "limit_reached", f"a message has at most {p.REACTIONS_MAX} different emoji"
        )
    ctx.change(
        records.React(
            user=ctx.key,
            room=target.room_name,
            with_=target.other,
            seq=req.seq,
            emoji=req.emoji,
            on=req.on,
            guest=ctx.guest_name(),
        )
    )
    event = {
        "event": "reaction",
        "message": target.message.wire(),
        "user": me,
        "emoji": req.emoji,
        "on": req.on,
    }
    target.tell(ctx, event)
    return {}
