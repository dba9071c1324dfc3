"""Profiles: whois, bio and away."""

from __future__ import annotations

from nexus import protocol as p
from nexus.server import records
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command


@command("whois", turn=False)
def whois(ctx: Context, req: p.Whois) -> p.ProfileReply:
    return {"user": ctx.profile(ctx.user(req.username))}


@command("bio")
def bio(ctx: Context, req: p.Bio) -> p.ProfileReply:
    return {"user": ctx.profile(ctx.change(records.Bio(user=ctx.key, text=req.text)))}


@command("away", flood=True)  # announced to everyone sharing a room
def away(ctx: Context, req: p.Away) -> p.ProfileReply:
    """Sets the caller's away text (empty: back); `presence` tells the users
    who share a room with them, and their own other sessions."""
    text = req.text or None
    user = ctx.me
    if user.away != text:
        ctx.change(records.Away(user=ctx.key, text=text))
        ctx.hub.announce_presence(ctx.model, ctx.key, online=True, skip=ctx.session)
    return {"user": ctx.profile(user)}
