"""Reading: read markers, search and mentions."""

from __future__ import annotations

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command
from nexus.server.model import History, pair_key, user_key


@command("read")
def read(ctx: Context, req: p.Read) -> p.ReadReply:
    """Moves the caller's marker to max(marker, min(seq, newest)), never back."""
    if req.thread is not None:
        return _read_thread(ctx, req, req.thread)
    if req.room is not None:
        room = ctx.room(req.room)
        if ctx.key not in room.members:
            raise NexusError("not_member", f"you are not in #{room.name}")
        newest = room.history.last_seq
        marker = ctx.me.read.get(room.name, newest)
        where = shown = {"room": room.name}
    else:
        other = ctx.user(req.with_)  # type: ignore[arg-type]
        other_key = user_key(other.username)
        conv = ctx.model.conversations.get(pair_key(ctx.key, other_key))
        newest = conv.history.last_seq if conv is not None else 0
        marker = conv.read.get(ctx.key, 0) if conv is not None else 0
        where, shown = {"with": other_key}, {"with": other.username}
    moved = max(marker, min(req.seq, newest))
    if moved != marker:
        ctx.move_marker(where, shown, moved)
    return {"seq": moved}


def _read_thread(ctx: Context, req: p.Read, root: int) -> p.ReadReply:
    """The marker of a thread the caller may read: up to its newest reply."""
    history: History | None
    if req.room is not None:
        room = ctx.readable(req.room)
        scope, history = room.name, room.history
        where = shown = {"room": room.name}
    else:
        other = ctx.user(req.with_)  # type: ignore[arg-type]
        other_key = user_key(other.username)
        scope = pair_key(ctx.key, other_key)
        conv = ctx.model.conversations.get(scope)
        history = conv.history if conv is not None else None
        where, shown = {"with": other_key}, {"with": other.username}
    replies = history.threads.get(root) if history is not None else None
    newest = replies.newest(root) if replies is not None else root
    state = ctx.me.follows.get((scope, root))
    marker = state.read if state is not None else 0
    moved = max(marker, min(req.seq, newest))
    if moved != marker or state is None:
        ctx.move_marker(where, shown, moved, root)
    return {"seq": moved}


@command("search", suspends=True, turn=False)
async def search(ctx: Context, req: p.Search) -> p.SearchReply:
    me = ctx.me
    if req.room is not None:
        scopes = {ctx.readable(req.room).name}  # a private room: its members and admins only
    elif req.with_ is not None:
        scopes = {pair_key(ctx.key, user_key(ctx.user(req.with_).username))}
    else:
        scopes = me.rooms | me.conversations
    author = ctx.user(req.from_).username if req.from_ is not None else None
    terms = p.search_terms(req.query)
    results, more = await ctx.search(scopes, terms, author, req.before, req.limit)
    results, more = ctx.fit_newest_first(results, more)
    return {"results": results, "more": more}  # type: ignore[typeddict-item]


@command("mentions", suspends=True, turn=False)
async def mentions(ctx: Context, req: p.Mentions) -> p.MentionsReply:
    me = ctx.me
    found = await ctx.mentions(me.username, set(me.rooms), req.limit)
    messages, _ = ctx.fit_newest_first(found, False)
    return {"messages": messages}
