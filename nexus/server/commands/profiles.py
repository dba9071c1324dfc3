"""Profiles: whois and bio."""

from __future__ import annotations

from nexus import protocol as p
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command


@command("whois")
def whois(ctx: Context, req: p.Whois) -> p.ProfileReply:
    return {"user": ctx.profile(ctx.user(req.username))}


@command("bio")
def bio(ctx: Context, req: p.Bio) -> p.ProfileReply:
    return {"user": ctx.profile(ctx.change("bio", text=req.text))}
