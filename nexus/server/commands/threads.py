"""Threads: a root's page of replies, following a thread, the inbox of
followed threads (docs/protocol.md, "Threads"). Replies themselves are
`say`/`dm` with `thread` (messages.py); a thread's read marker is `read`
with `thread` (reading.py)."""

from __future__ import annotations

from typing import Any

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server import records
from nexus.server.commands.context import Context, gathered, then
from nexus.server.commands.messages import Target, address_of
from nexus.server.commands.registry import command
from nexus.server.model import History, Message, Thread, User
from nexus.server.store import Page


def _rooted(ctx: Context, req: p.Thread | p.Follow) -> tuple[Target, History, str]:
    """Where a request's root lives, readable by the caller (a private
    room: `not_member` first, so an outsider learns nothing of it)."""
    target = address_of(ctx, req.room, req.with_)
    history = ctx.model.history_of(target.room_name, ctx.key, target.other)
    if history is None:  # a conversation never begun
        raise NexusError("no_such_message", f"no message {req.seq} here")
    return target, history, target.scope(ctx.key)


def _checked_root(seq: int, message: Message | None) -> Message:
    """A root: stored (erased or not: an erased root keeps its thread), no reply."""
    if message is None:
        raise NexusError("no_such_message", f"no message {seq} here (never sent or trimmed)")
    if message.thread is not None:
        raise NexusError("bad_args", f"{seq} is a reply in thread {message.thread}, not a root")
    return message


@command("thread", suspends=True, turn=False)
def thread(ctx: Context, req: p.Thread) -> Any:
    """A root's thread; a reply's address answers the thread it is in (a
    link to a reply opens its thread: `root` says which)."""
    _, history, scope = _rooted(ctx, req)

    def read(seq: int) -> Any:
        # The root and its replies are read side by side: one wait, not two.
        page = ctx.thread_page(history, scope, seq, req.limit, req.before)
        return gathered([ctx.message(history, scope, seq), page])

    def reply(seq: int, found: tuple[Message | None, Page]) -> Any:
        message = found[0]
        if message is not None and message.thread is not None and seq == req.seq:
            root = message.thread
            return then(read(root), lambda again: reply(root, again))
        root_message = _checked_root(seq, message)
        messages, more = ctx.fit(*found[1])
        return {"root": root_message.wire(), "messages": messages, "more": more}

    return then(read(req.seq), lambda found: reply(req.seq, found))


@command("follow", suspends=True)
def follow(ctx: Context, req: p.Follow) -> Any:
    target, history, scope = _rooted(ctx, req)

    def found(root: Message | None) -> p.FollowReply:
        _checked_root(req.seq, root)
        state = ctx.me.follows.get((scope, req.seq))
        if state is None or state.on is not req.on:  # else nothing changes: no record
            ctx.change(
                records.FollowThread(
                    user=ctx.key, room=target.room_name, with_=target.other, seq=req.seq, on=req.on
                )
            )
        return {"following": req.on}

    return then(ctx.message(history, scope, req.seq), found)


@command("threads", suspends=True, turn=False)
def threads(ctx: Context, req: p.Threads) -> Any:
    """The caller's followed threads, the latest reply first (a thread with
    none yet by its root's time); only the roots listed are read."""
    me: User = ctx.me

    def last(replies: Thread | None, history: History, root: int) -> float:
        newest = replies.last() if replies is not None else None
        if newest is not None:
            return newest
        message = history.get(root)
        return message.ts if message is not None else 0.0

    listed = sorted(
        (
            (last(replies, history, root), scope, root, state, replies, history)
            for scope, root, state, replies, history in ctx.followed(ctx.key)
        ),
        key=lambda entry: entry[0],
        reverse=True,
    )[: req.limit]
    roots = gathered([ctx.message(entry[5], entry[1], entry[2]) for entry in listed])

    def reply(messages: list[Message | None]) -> p.ThreadsReply:
        shown: list[p.ThreadEntry] = []
        for (ts, _, _, state, replies, _), root in zip(listed, messages, strict=True):
            if root is None:  # no longer stored
                continue
            unread = replies.unread(state.read, me.username) if replies is not None else 0
            shown.append({"root": root.wire(), "unread": unread, "last": ts or root.ts})  # type: ignore[typeddict-item]
        return {"threads": shown}

    return then(roots, reply)
