"""Messages: say in a room, DMs and their history; edit, erase, react to and pin one."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.protocol import markup
from nexus.server import permissions, records
from nexus.server.commands.context import Context, R, Shown, gathered, then
from nexus.server.commands.registry import command
from nexus.server.composing import dm_place
from nexus.server.frames import Frame
from nexus.server.model import Message, Room, pair_key, user_key


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


def _root(ctx: Context, room: str | None, other: str | None, thread: int | None) -> Any:
    """The root a reply goes under (None if it is no reply), checked to be
    there, not erased and no reply itself: at once, or an awaitable when it
    is on disk."""
    if thread is None:
        return None

    def check(message: Message | None) -> Message:
        if message is None or message.erased:
            raise _no_such_message(thread)
        if message.thread is not None:
            raise NexusError("bad_args", f"thread: {thread} is a reply; threads are one level deep")
        return message

    history = ctx.model.history_of(room, ctx.key, other)
    scope = room if room is not None else pair_key(ctx.key, other)  # type: ignore[arg-type]
    return then(ctx.message(history, scope, thread), check)


def _looked_up(ctx: Context, room: str | None, other: str | None, req: p.Say | p.Dm) -> Any:
    """The messages a new one names checked (`reply_to`, `thread`); its root."""
    found = [_answered(ctx, room, other, req.reply_to), _root(ctx, room, other, req.thread)]
    return then(gathered(found), lambda messages: messages[1])


def _new_fields(ctx: Context, req: p.Say | p.Dm, root: Message | None) -> dict[str, Any]:
    """The optional fields of a `say` or `dm` record: mentions are worked
    out here, once, and stored with the message; a reply names its root's
    author, who follows the thread from then on."""
    fields = {
        "action": req.action,
        "reply_to": req.reply_to,
        "mentions": _mentions(ctx, req.text, req.plain),
        "guest": ctx.guest_name(),
        "files": _files(ctx, req),
        "plain": req.plain,
    }
    if root is not None:
        author = None if root.guest else ctx.model.user(root.author)
        fields.update(
            thread=root.seq,
            broadcast=req.broadcast,
            root_author=user_key(author.username) if author is not None else None,
        )
    return fields


def _mentions(ctx: Context, text: str, plain: bool) -> list[str]:
    """Who a message mentions: `@name` anywhere in a plain one's text, in a
    formatted one's outside its code (`@name` in code is not a mention).
    The text is parsed only when it names someone and has code: parsing
    costs ~100 us, ten times a message's whole path."""
    mentioned = ctx.model.mentioned(text)
    if mentioned and not plain and "`" in text:
        return ctx.model.mentioned(markup.code_free(text))
    return mentioned


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
    if req.reply_to is None and req.thread is None:  # most messages: no look-up
        return _say(ctx, room, req, None)
    # Checked again once the messages named are found: it may have taken a read.
    return then(_looked_up(ctx, room.name, None, req), lambda root: _say(ctx, None, req, root))


def _say(ctx: Context, room: Room | None, req: p.Say, root: Message | None) -> p.SentReply:
    room = room or _speaker(ctx, req.room)
    record = records.Say(
        user=ctx.key, room=room.name, text=req.text, ts=time.time(), **_new_fields(ctx, req, root)
    )
    message = ctx.change(record)
    ctx.composing.sent(ctx.model, ctx.key, room.name)
    ctx.hub.to_room(room, Frame({"event": "message", **message.wire()}))
    return {"seq": message.seq, "ts": message.ts}


@command("typing", turn=False)
def typing(ctx: Context, req: p.Typing) -> p.Empty:
    """Told to the others at most once a second (composing.py); never
    stored, and free of flood control: a client says it as its user types."""
    if req.room is not None:
        room = _speaker(ctx, req.room)
        ctx.composing.typing(ctx.model, ctx.key, room.name, req.on)
    else:
        other = user_key(ctx.user(req.with_).username)  # type: ignore[arg-type]
        if other != ctx.key:  # typing to oneself tells nobody
            ctx.composing.typing(ctx.model, ctx.key, dm_place(other), req.on)
    return {}


@command("dm", flood=True, suspends=True)
def dm(ctx: Context, req: p.Dm) -> Any:
    recipient = user_key(ctx.user(req.to).username)
    if req.reply_to is None and req.thread is None:  # most messages: no look-up
        return _dm(ctx, recipient, req, None)
    # Checked again once the messages named are found: the user may have gone.
    found = _looked_up(ctx, None, recipient, req)
    return then(found, lambda root: _dm(ctx, user_key(ctx.user(req.to).username), req, root))


def _dm(ctx: Context, recipient: str, req: p.Dm, root: Message | None) -> p.SentReply:
    record = records.Dm(
        user=ctx.key, to=recipient, text=req.text, ts=time.time(), **_new_fields(ctx, req, root)
    )
    message = ctx.change(record)
    ctx.composing.sent(ctx.model, ctx.key, dm_place(recipient))
    frame = Frame({"event": "dm", **message.wire()})
    ctx.hub.to_user(ctx.key, frame)
    if recipient != ctx.key:
        ctx.hub.to_user(recipient, frame)
    return {"seq": message.seq, "ts": message.ts}


@command("dms", suspends=True, turn=False)
def dms(ctx: Context, req: p.Dms) -> Any:
    me = ctx.key
    other = ctx.user(req.with_)
    conv_key = pair_key(me, user_key(other.username))
    conv = ctx.model.conversations.get(conv_key)
    if conv is None:
        return {"messages": [], "more": False, "more_after": False}

    def reply(shown: Shown) -> p.DmsReply:
        # Reading the conversation reads it all; a page after or around a
        # message that leaves newer ones out reads up to what it shows.
        newest = ctx.model.conversations[conv_key].history.last_seq
        anchored = req.after is not None or req.around is not None
        if anchored and shown.more_after:
            newest = shown.messages[-1]["seq"] if shown.messages else 0
        ctx.mark_dms_read(other, newest)
        return {"messages": shown.messages, "more": shown.more, "more_after": shown.more_after}

    page = ctx.shown_page(conv.history, conv_key, req)
    return then(page, reply)


@command("conversations", suspends=True, turn=False)
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


def address_of(ctx: Context, room: str | None, with_: str | None) -> Target:
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
    target = address_of(ctx, room, with_)
    history = ctx.model.history_of(target.room_name, ctx.key, target.other)
    at_once = True

    def found(message: Message | None) -> R:
        if message is None or message.erased:
            raise _no_such_message(seq)
        where = target if at_once else address_of(ctx, room, with_)
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
    mentions = _mentions(ctx, req.text, target.message.plain)  # type: ignore[union-attr]
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
    pinned_before = target.room is not None and target.room.pinned(req.seq)
    ctx.change(records.Erase(user=ctx.key, room=target.room_name, with_=target.other, seq=req.seq))
    if not authored:
        assert target.room is not None  # in a DM only the author erases
        ctx.audit(f"erase of {req.seq}", target.room.name, author)
    target.tell(ctx, {"event": "erased", "message": target.message.wire()})  # type: ignore[union-attr]
    if target.room is not None and pinned_before:
        tell_pinned(ctx, target.room, req.seq, False)  # erasing it unpinned it
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


@command("pin", flood=True, suspends=True)  # announced to every member
def pin(ctx: Context, req: p.Pin) -> Any:
    return _target(ctx, req.room, None, req.seq, lambda target: _pin(ctx, req, target))


def _pin(ctx: Context, req: p.Pin, target: Target) -> p.Empty:
    room = target.room
    assert room is not None
    if ctx.key not in room.members and not ctx.me.admin:
        raise NexusError("not_member", f"join #{room.name} to pin there")
    if not permissions.may("pin", ctx.model, room, ctx.key):
        raise NexusError("not_allowed", "only the room's owner, moderators and admins may pin")
    if ctx.key in room.muted:
        raise _muted(room)
    if room.pinned(req.seq) == req.on:
        return {}  # nothing changes: no record, no event
    if req.on and len(room.pins) >= p.PINS_MAX:
        raise NexusError("limit_reached", f"a room has at most {p.PINS_MAX} pinned messages")
    ctx.change(records.Pin(user=ctx.key, room=room.name, seq=req.seq, on=req.on, ts=time.time()))
    tell_pinned(ctx, room, req.seq, req.on)
    return {}


def tell_pinned(ctx: Context, room: Room, seq: int, on: bool) -> None:
    event: p.PinnedEvent = {
        "event": "pinned",
        "room": room.name,
        "seq": seq,
        "by": ctx.me.username,
        "on": on,
    }
    ctx.hub.to_room(room, Frame(event))


@command("pins", suspends=True, turn=False)
def pins(ctx: Context, req: p.Pins) -> Any:
    """The pinned messages, the latest pin first, each as history shows it
    with who pinned it and when; one no longer stored (trimmed) is left out."""
    room = ctx.readable(req.room)
    shown = list(reversed(room.pins))
    display = ctx.model.display

    def reply(messages: list[Message | None]) -> p.PinsReply:
        out: list[p.PinnedMessage] = []
        for pinned, message in zip(shown, messages, strict=True):
            if message is not None and not message.erased:
                wire = message.wire()
                wire.update(pinned_by=display(pinned.by), pinned_at=pinned.at)
                out.append(wire)  # type: ignore[arg-type]
        return {"messages": out}

    found = [ctx.message(room.history, room.name, pinned.seq) for pinned in shown]
    return then(gathered(found), reply)
