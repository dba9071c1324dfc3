"""Messages: say in a room, DMs and their history; edit, erase and react to one."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server import permissions, records
from nexus.server.commands.context import Context, R, then
from nexus.server.commands.registry import command
from nexus.server.frames import Frame
from nexus.server.model import Message, Room, pair_key, user_key
from nexus.server.store import Page


def _no_such_message(seq: int) -> NexusError:
    return NexusError("no_such_message", f"no message {seq} here (never sent, trimmed or erased)")


def _muted(room: Room) -> NexusError:
    return NexusError("muted", f"you are muted in #{room.name}")


def _answered(ctx: Context, room: str | None, other: str | None, reply_to: int | None) -> Any:
    """The message a new one answers (None if it answers none), checked to
    be there and not erased: at once, or an awaitable when it is on disk."""
    if reply_to is None:
        return None

    def check(message: Message | None) -> Message:
        if message is None or message.erased:
            raise _no_such_message(reply_to)
        return message

    history = ctx.model.history_of(room, ctx.key, other)
    scope = room if room is not None else pair_key(ctx.key, other)  # type: ignore[arg-type]
    return then(ctx.message(history, scope, reply_to), check)


def _new_fields(ctx: Context, req: p.Say | p.Dm) -> dict[str, Any]:
    """The optional fields of a `say` or `dm` record: mentions are worked
    out here, once, and stored with the message."""
    return {
        "action": req.action,
        "reply_to": req.reply_to,
        "mentions": ctx.model.mentioned(req.text),
        "guest": ctx.guest_name(),
        "files": _files(ctx, req),
    }


# A link to an upload (docs/protocol.md, "Files"): how an IRC client shares
# what it uploaded to the FILEHOST URL.
_FILE_LINK = re.compile(r"/files/(" + p.FILE_ID_RE.pattern + ")/")


def _files(ctx: Context, req: p.Say | p.Dm) -> tuple[str, ...]:
    """The uploads a message carries: those it names, and the sender's own
    that its text links to."""
    named = _own_files(ctx, req.files) if req.files else ()
    if "/files/" not in req.text:  # most messages
        return named
    files = ctx.model.files
    linked = [
        file_id
        for file_id in _FILE_LINK.findall(req.text)
        if file_id in files and files[file_id].owner == ctx.key
    ]
    return tuple(dict.fromkeys([*named, *linked]))[: p.FILES_MAX]


def _own_files(ctx: Context, ids: tuple[str, ...]) -> tuple[str, ...]:
    """Uploads a message may carry: the sender's own (another's, or one
    removed, would hand out what the sender may not have)."""
    files = ctx.model.files
    for file_id in ids:
        file = files.get(file_id)
        if file is None or file.owner != ctx.key:
            raise NexusError("bad_args", f"files: {file_id} is no upload of yours")
    return ids


def _speaker(ctx: Context, name: str) -> Room:
    """The room the caller may say something in."""
    room = ctx.room(name)
    if ctx.key not in room.members:
        raise NexusError("not_member", f"join #{room.name} to speak there")
    if ctx.key in room.muted:
        raise _muted(room)
    return room


@command("say", flood=True, suspends=True)
def say(ctx: Context, req: p.Say) -> Any:
    room = _speaker(ctx, req.room)
    if req.reply_to is None:  # most messages: no look-up
        return _say(ctx, room, req)
    # Checked again once the message answered is found: it may have taken a read.
    return then(_answered(ctx, room.name, None, req.reply_to), lambda _: _say(ctx, None, req))


def _say(ctx: Context, room: Room | None, req: p.Say) -> p.SentReply:
    room = room or _speaker(ctx, req.room)
    record = records.Say(
        user=ctx.key, room=room.name, text=req.text, ts=time.time(), **_new_fields(ctx, req)
    )
    message = ctx.change(record)
    ctx.hub.to_room(room, Frame({"event": "message", **message.wire()}))
    return {"seq": message.seq, "ts": message.ts}


@command("dm", flood=True, suspends=True)
def dm(ctx: Context, req: p.Dm) -> Any:
    recipient = user_key(ctx.user(req.to).username)
    if req.reply_to is None:  # most messages: no look-up
        return _dm(ctx, recipient, req)
    # Checked again once the message answered is found: the user may have gone.
    answered = _answered(ctx, None, recipient, req.reply_to)
    return then(answered, lambda _: _dm(ctx, user_key(ctx.user(req.to).username), req))


def _dm(ctx: Context, recipient: str, req: p.Dm) -> p.SentReply:
    record = records.Dm(
        user=ctx.key, to=recipient, text=req.text, ts=time.time(), **_new_fields(ctx, req)
    )
    message = ctx.change(record)
    frame = Frame({"event": "dm", **message.wire()})
    ctx.hub.to_user(ctx.key, frame)
    if recipient != ctx.key:
        ctx.hub.to_user(recipient, frame)
    return {"seq": message.seq, "ts": message.ts}


@command("dms", suspends=True)
def dms(ctx: Context, req: p.Dms) -> Any:
    me = ctx.key
    other = ctx.user(req.with_)
    conv_key = pair_key(me, user_key(other.username))
    conv = ctx.model.conversations.get(conv_key)
    if conv is None:
        return {"messages": [], "more": False}

    def reply(page: Page) -> p.DmsReply:
        messages, more = ctx.fit(*page)
        ctx.mark_dms_read(other, ctx.model.conversations[conv_key].history.last_seq)
        return {"messages": messages, "more": more}

    return then(ctx.page(conv.history, conv_key, req.limit, req.before), reply)


@command("conversations", suspends=True)
def conversations(ctx: Context, req: p.Conversations) -> Any:
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
    shown = found[: req.limit]

    def reply(unread: dict[str, int]) -> p.ConversationsReply:
        listed: list[p.ConversationInfo] = []
        for ts, conv, other in shown:
            user = model.users[other]
            info: p.ConversationInfo = {
                "with": user.username,
                "seq": conv.history.last_seq,
                "ts": ts,
                "unread": unread.get(user.username, 0),
            }
            if user.guest:
                info["guest"] = True
            listed.append(info)
        return {"conversations": listed}

    return then(ctx.dm_unreads(me), reply)


# -- acting on one message ------------------------------------------------------


@dataclass(slots=True)
class Target:
    """A message named by `room` + `seq` or `with` + `seq`, and where it lives."""

    message: Message | None  # once looked up
    room: Room | None  # None for a DM
    other: str | None  # the DM partner's key

    @property
    def room_name(self) -> str | None:
        return self.room.name if self.room is not None else None

    def scope(self, me: str) -> str:
        """Where the message is kept: the room's name, or the pair's key."""
        return self.room.name if self.room is not None else pair_key(me, self.other)  # type: ignore[arg-type]

    def tell(self, ctx: Context, event: dict[str, Any]) -> None:
        """Sends an event about the message where the message went."""
        frame = Frame(event)
        if self.room is not None:
            ctx.hub.to_room(self.room, frame)
            return
        ctx.hub.to_user(ctx.key, frame)
        if self.other != ctx.key:
            ctx.hub.to_user(self.other, frame)  # type: ignore[arg-type]


def _address(ctx: Context, room: str | None, with_: str | None) -> Target:
    """Where a request's message lives (its `message` not looked up yet). A
    private room the caller may not read is `not_member` first, so whether a
    message exists there is never told to an outsider."""
    if room is not None:
        return Target(None, ctx.readable(room), None)
    return Target(None, None, user_key(ctx.user(with_).username))  # type: ignore[arg-type]


def _target(
    ctx: Context, room: str | None, with_: str | None, seq: int, act: Callable[[Target], R]
) -> R | Awaitable[R]:
    """`act` on the stored, not erased message a request names, at once or
    once it is read from disk (the address is checked again then: the room
    may be gone); `no_such_message` if there is none."""
    target = _address(ctx, room, with_)
    history = ctx.model.history_of(target.room_name, ctx.key, target.other)
    at_once = True

    def found(message: Message | None) -> R:
        if message is None or message.erased:
            raise _no_such_message(seq)
        where = target if at_once else _address(ctx, room, with_)
        where.message = message
        return act(where)

    result = then(ctx.message(history, target.scope(ctx.key), seq), found)
    at_once = False
    return result


def _authored(ctx: Context, target: Target) -> bool:
    """Whether the caller wrote the message. A guest's message is nobody's:
    its name may be someone else's now (an account, or another guest)."""
    message = target.message
    assert message is not None
    return message.author == ctx.me.username and not message.guest


def _check_not_guest(ctx: Context) -> None:
    if ctx.me.guest:
        raise NexusError("not_allowed", "guests cannot edit or erase messages")


@command("edit", flood=True, suspends=True)
def edit(ctx: Context, req: p.Edit) -> Any:
    return _target(ctx, req.room, req.with_, req.seq, lambda target: _edit(ctx, req, target))


def _edit(ctx: Context, req: p.Edit, target: Target) -> p.EditReply:
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
    target.tell(ctx, {"event": "edited", "message": target.message.wire()})  # type: ignore[union-attr]
    return {"edited": ts}


@command("erase", flood=True, suspends=True)
def erase(ctx: Context, req: p.Erase) -> Any:
    return _target(ctx, req.room, req.with_, req.seq, lambda target: _erase(ctx, req, target))


def _erase(ctx: Context, req: p.Erase, target: Target) -> p.Empty:
    _check_not_guest(ctx)
    authored = _authored(ctx, target)
    if not authored and (
        target.room is None or not permissions.may("erase", ctx.model, target.room, ctx.key)
    ):
        raise NexusError(
            "not_allowed", "only its author or the room's owner or moderators may erase a message"
        )
    author = target.message.author  # type: ignore[union-attr]
    ctx.change(records.Erase(user=ctx.key, room=target.room_name, with_=target.other, seq=req.seq))
    if not authored:
        assert target.room is not None  # in a DM only the author erases
        ctx.audit(f"erase of {req.seq}", target.room.name, author)
    target.tell(ctx, {"event": "erased", "message": target.message.wire()})  # type: ignore[union-attr]
    return {}


@command("react", flood=True, suspends=True)
def react(ctx: Context, req: p.React) -> Any:
    return _target(ctx, req.room, req.with_, req.seq, lambda target: _react(ctx, req, target))


def _react(ctx: Context, req: p.React, target: Target) -> p.Empty:
    if target.room is not None and ctx.key not in target.room.members:
        raise NexusError("not_member", f"join #{target.room.name} to react there")
    if target.room is not None and ctx.key in target.room.muted:
        raise _muted(target.room)
    me = ctx.me.username
    message = target.message
    assert message is not None
    reactions = message.reactions or {}
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
        "message": message.wire(),
        "user": me,
        "emoji": req.emoji,
        "on": req.on,
    }
    target.tell(ctx, event)
    return {}
