"""Accounts and the session's life: register, login, password, quit, ping."""

from __future__ import annotations

import time

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server import records
from nexus.server.auth import new_token, token_digest, token_valid
from nexus.server.commands.context import Context
from nexus.server.commands.registry import ANONYMOUS, ANY_OPEN, command
from nexus.server.frames import Frame
from nexus.server.model import User, user_key

_LOGIN_FAILED = "wrong username, password or token"


def _unchanged(ctx: Context, user: User, password: str) -> bool:
    """Whether `user` is still the account by its name, with the password hash
    `password`: a `password` change (or a reload) while a login waited for a
    hash or a write voids what the login proved."""
    return ctx.model.user(user.username) is user and user.password == password


async def _welcome(ctx: Context, user: User, password: str, with_token: bool) -> p.LoginReply:
    """Attaches the session to `user` once its account (and a fresh login
    token, unless it just logged in with one) is on disk, and builds the reply.
    `password` is the hash the login was checked against: if it changed while
    the token was written, the login is refused, so nothing signed in with an
    old password or token outlives the change's reply."""
    key = user_key(user.username)
    token = None
    if with_token:
        token, digest = new_token()
        ctx.change(records.Token(user=key, digest=digest, ts=time.time()))
    await ctx.durable()
    if not _unchanged(ctx, user, password):
        raise NexusError("auth_failed", _LOGIN_FAILED)
    if user.suspended:  # suspended while the password was checked
        raise _suspended()
    # The peer may have gone while the password was checked.
    if ctx.session.open and ctx.hub.attach(ctx.session, key):
        ctx.hub.announce_presence(ctx.model, key, online=True)
    reply: p.LoginReply = {
        "user": ctx.profile(user),
        "rooms": sorted(user.rooms),
        "unread": await ctx.unread(key),
    }
    invited = [ctx.room_info(r) for r in ctx.model.rooms.values() if r.private and key in r.invited]
    if invited:  # invitations made while away: the `invited` events went to no session
        reply["invited"] = invited
    if token is not None:
        reply["token"] = token
    return reply


def _suspended() -> NexusError:
    return NexusError("suspended", "this account is suspended")


@command("available", phases=ANONYMOUS, turn=False)
def available(ctx: Context, req: p.Available) -> p.AvailableReply:
    """What `register` would say of the name, without the password's hash:
    clients ask before they ask for a password. Names are no secret on a
    chat server (every member list shows them); look-ups are counted per
    address all the same."""
    ctx.policy.check_lookup(ctx.session.ip)
    return {"available": ctx.model.user(req.username) is None}


@command("register", phases=ANONYMOUS, suspends=True, turn=False)
async def register(ctx: Context, req: p.Register) -> p.LoginReply:
    ctx.policy.check_password(req.password)
    ctx.policy.check_registration(ctx.session.ip)
    if ctx.model.user(req.username) is not None:
        raise NexusError("username_taken", f"{req.username} is taken")
    hashed = await ctx.hashing.hash(req.password)
    await ctx.turn()
    if ctx.model.user(req.username) is not None:  # registered while we hashed
        raise NexusError("username_taken", f"{req.username} is taken")
    # The first account of a store with no accounts is its admin.
    first = not ctx.model.users
    user = ctx.change(
        records.Register(username=req.username, password=hashed, ts=time.time(), admin=first)
    )
    return await _welcome(ctx, user, hashed, with_token=True)


# In a turn (several nodes): an account made or changed on another node a
# moment ago is found as it now is. The hash is checked outside it.
@command("login", phases=ANONYMOUS, suspends=True)
async def login(ctx: Context, req: p.Login) -> p.LoginReply:
    # Only a name that could be an account has a per-account budget: the
    # limiter must not remember arbitrary strangers' strings (up to a frame
    # each) for names no account can have. The per-address budget still counts.
    account = user_key(req.username) if p.USERNAME_RE.fullmatch(req.username) else None
    ip = ctx.session.ip
    ctx.policy.check_login(ip, account)
    user = ctx.model.user(req.username) if account is not None else None
    if user is not None and user.guest:
        user = None  # a guest's nick is no account
    stored = user.password if user is not None else None
    if account is None:  # no account can have this name: no need to spend a hash on it
        accepted = False
    elif req.token is not None:
        # A suspended account's tokens are kept only to answer `suspended`.
        accepted = user is not None and token_valid(user.tokens, req.token)
    else:
        accepted = await ctx.hashing.verify(stored, req.password or "")
    if not accepted or user is None or stored is None:
        ctx.policy.login_failed(ip, account)
        raise NexusError("auth_failed", _LOGIN_FAILED)
    await ctx.turn()
    if not _unchanged(ctx, user, stored):  # the password changed while it was checked
        raise NexusError("auth_failed", _LOGIN_FAILED)
    if user.suspended:  # only someone holding the account's secret learns this
        raise _suspended()
    if req.token is not None:  # a token in use stays good for TOKEN_LIFETIME from now
        ctx.change(records.Token(user=account, digest=token_digest(req.token), ts=time.time()))
    return await _welcome(ctx, user, stored, with_token=req.token is None)


@command("password", suspends=True, turn=False)
async def password(ctx: Context, req: p.Password) -> p.TokenReply:
    """Replaces the caller's password after checking the old one (a wrong
    one counts as a failed login); revokes every token, returns a new one and
    closes the user's other sessions."""
    ctx.policy.check_password(req.new)
    key, ip = ctx.key, ctx.session.ip
    ctx.policy.check_login(ip, key)
    stored = ctx.me.password
    if not await ctx.hashing.verify(stored, req.old):
        ctx.policy.login_failed(ip, key)
        raise NexusError("auth_failed", "wrong password")
    hashed = await ctx.hashing.hash(req.new)
    await ctx.turn()
    if ctx.model.users.get(key) is None or ctx.me.password != stored:
        raise NexusError("auth_failed", "the password changed meanwhile; try again")
    token, digest = new_token()
    now = time.time()
    ctx.change(records.Password(user=key, password=hashed, ts=now))
    ctx.change(records.Token(user=key, digest=digest, ts=now))
    await ctx.durable()
    changed = p.error(None, NexusError("auth_required", "password changed"))
    ctx.hub.expel(key, Frame(changed), skip=ctx.session)
    return {"token": token}


@command("quit", phases=ANY_OPEN, turn=False)
def quit_(ctx: Context, req: p.Quit) -> p.Empty:
    ctx.quitting = True  # the core closes the connection once the reply is queued
    return {}


@command("ping", phases=ANY_OPEN, turn=False)
def ping(ctx: Context, req: p.Ping) -> p.PingReply:
    return {"ts": time.time()}
