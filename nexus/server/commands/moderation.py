"""Moderation: room roles, kicks, bans, mutes, invitations; server admins and suspensions.

Every right is asked of `permissions` (one table); what is left here is the
order of checks, the records and who is told. Each action is written to the
server's log by `Context.audit`.
"""

from __future__ import annotations

import logging
import time

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.server import permissions, records
from nexus.server.commands.context import Context
from nexus.server.commands.registry import command
from nexus.server.commands.rooms import vacate
from nexus.server.frames import Frame
from nexus.server.model import Room, User, user_key
from nexus.server.store import Store

log = logging.getLogger("nexus.moderation")


def _refused(action: str) -> NexusError:
    return NexusError("not_allowed", f"you may not {action} here")


def _acting(ctx: Context, action: str, room_name: str, username: str) -> tuple[Room, User, str]:
    """The room, the user acted on and their key, once the caller may take
    `action` there at all (`not_allowed`) and the user exists (`no_such_user`).
    Whether they may take it on that user is `_check_over`'s."""
    room = ctx.room(room_name)
    if not permissions.may(action, ctx.model, room, ctx.key):
        raise _refused(action)
    target = ctx.user(username)
    return room, target, user_key(target.username)


def _check_member(room: Room, target: User, key: str) -> None:
    if key not in room.members:
        raise NexusError("not_member", f"{target.username} is not in #{room.name}")


def _check_over(ctx: Context, action: str, room: Room | None, target: User, key: str) -> None:
    if not permissions.may_act_on(action, ctx.model, room, ctx.key, key):
        raise NexusError("not_allowed", f"you may not {action} {target.username}")


def _not_a_guest(target: User, what: str) -> None:
    """Refuses a role or an invitation for a guest: it would have to be stored."""
    if target.guest:
        raise NexusError("not_for_guests", f"{target.username} is a guest: {what}")


# -- room roles ----------------------------------------------------------------


def _set_moderator(ctx: Context, action: str, req: p.Op | p.Deop) -> p.RoomReply:
    room, target, key = _acting(ctx, action, req.room, req.username)
    _check_member(room, target, key)
    _check_over(ctx, action, room, target, key)
    on = action == "op"
    if on:
        _not_a_guest(target, "only accounts can be moderators")
    if (key in room.moderators) != on:
        ctx.change(records.Moderator(user=ctx.key, room=room.name, target=key, on=on))
        ctx.audit(action, room.name, target.username)
        updated: p.RoomUpdated = {
            "event": "room_updated",
            "room": ctx.room_info(room),
            "by": ctx.me.username,
        }
        ctx.hub.to_room(room, Frame(updated))
    return {"room": ctx.room_info(room)}


@command("op", flood=True)  # announced to every member
def op(ctx: Context, req: p.Op) -> p.RoomReply:
    return _set_moderator(ctx, "op", req)


@command("deop", flood=True)
def deop(ctx: Context, req: p.Deop) -> p.RoomReply:
    return _set_moderator(ctx, "deop", req)


# -- kicks and bans ----------------------------------------------------------------


def _tell_removed(ctx: Context, room: Room, target: User, reason: str, banned: bool) -> None:
    """`kicked` to the members, and to the removed user, no longer one."""
    kicked: p.Kicked = {
        "event": "kicked",
        "room": room.name,
        "user": target.username,
        "by": ctx.me.username,
        "reason": reason,
        "banned": banned,
    }
    frame = Frame(kicked)
    ctx.hub.to_room(room, frame)
    ctx.hub.to_user(user_key(target.username), frame)


@command("kick", flood=True)
def kick(ctx: Context, req: p.Kick) -> p.Empty:
    room, target, key = _acting(ctx, "kick", req.room, req.username)
    _check_member(room, target, key)
    _check_over(ctx, "kick", room, target, key)
    ctx.change(records.Kick(user=ctx.key, room=room.name, target=key))
    ctx.audit("kick", room.name, target.username, req.reason)
    _tell_removed(ctx, room, target, req.reason, banned=False)
    vacate(ctx, room)
    return {}


@command("ban", flood=True)
def ban(ctx: Context, req: p.Ban) -> p.Empty:
    """Bans a member (removing them) or anyone else; banning again changes
    nothing. A guest's ban lasts as long as the guest: it goes with it."""
    room, target, key = _acting(ctx, "ban", req.room, req.username)
    _check_over(ctx, "ban", room, target, key)
    if key in room.bans:
        return {}
    member = key in room.members
    ctx.change(
        records.Ban(user=ctx.key, room=room.name, target=key, reason=req.reason, ts=time.time())
    )
    ctx.audit("ban", room.name, target.username, req.reason)
    if member:
        _tell_removed(ctx, room, target, req.reason, banned=True)
        vacate(ctx, room)
    else:
        _tell_staff(ctx, room, target, req.reason, on=True)
    return {}


@command("unban", flood=True)
def unban(ctx: Context, req: p.Unban) -> p.Empty:
    room, target, key = _acting(ctx, "unban", req.room, req.username)
    _check_over(ctx, "unban", room, target, key)
    if key in room.bans:
        ctx.change(records.Unban(user=ctx.key, room=room.name, target=key))
        ctx.audit("unban", room.name, target.username, req.reason)
        _tell_staff(ctx, room, target, req.reason, on=False)
    return {}


def _tell_staff(ctx: Context, room: Room, target: User, reason: str, on: bool) -> None:
    """A ban of someone not in the room, or an unban: `banned` to those who
    may see the bans (its owner, moderators and the admins), but the session
    that made it (its reply says so). Bans are no business of the room: a
    member's ban is told to it by `kicked`."""
    event: p.Banned = {
        "event": "banned",
        "room": room.name,
        "user": target.username,
        "by": ctx.me.username,
        "reason": reason,
        "on": on,
    }
    frame = Frame(event)
    staff = room.moderators | ctx.model.admins | ({room.owner} if room.owner else set())
    for key in staff:
        ctx.hub.to_user(key, frame, skip=ctx.session)


@command("bans", turn=False)
def bans(ctx: Context, req: p.Bans) -> p.BansReply:
    room = ctx.room(req.room)
    if not permissions.may("bans", ctx.model, room, ctx.key):
        raise _refused("see the bans")
    listed = sorted(room.bans.values(), key=lambda entry: entry["ts"])
    return {"bans": listed}  # type: ignore[typeddict-item]


# -- mutes -----------------------------------------------------------------------


def _set_muted(ctx: Context, action: str, req: p.Mute | p.Unmute) -> p.Empty:
    room, target, key = _acting(ctx, action, req.room, req.username)
    on = action == "mute"
    if on:  # unmuting someone who left is allowed: the mute outlives leaving
        _check_member(room, target, key)
    _check_over(ctx, action, room, target, key)
    if (key in room.muted) != on:
        ctx.change(records.Mute(user=ctx.key, room=room.name, target=key, on=on))
        ctx.audit(action, room.name, target.username)
        muted: p.Muted = {
            "event": "muted",
            "room": room.name,
            "user": target.username,
            "by": ctx.me.username,
            "on": on,
        }
        frame = Frame(muted)
        ctx.hub.to_room(room, frame)
        if key not in room.members:
            ctx.hub.to_user(key, frame)
    return {}


@command("mute", flood=True)
def mute(ctx: Context, req: p.Mute) -> p.Empty:
    return _set_muted(ctx, "mute", req)


@command("unmute", flood=True)
def unmute(ctx: Context, req: p.Unmute) -> p.Empty:
    return _set_muted(ctx, "unmute", req)


# -- invitations -------------------------------------------------------------------


@command("invite", flood=True)  # it reaches someone else's sessions
def invite(ctx: Context, req: p.Invite) -> p.Empty:
    """Invites a user: to a private room the invitation is kept until used
    (or the room is deleted); to a public one it only tells them."""
    room = ctx.room(req.room)
    if ctx.key not in room.members:
        raise NexusError("not_member", f"join #{room.name} to invite to it")
    if not permissions.may("invite", ctx.model, room, ctx.key):
        raise _refused("invite")
    target = ctx.user(req.username)
    key = user_key(target.username)
    if not room.ephemeral:
        _not_a_guest(target, "guests can be invited only to rooms guests made")
    if key in room.bans:
        raise NexusError("banned", f"{target.username} is banned from #{room.name}")
    if key in room.members:
        return {}  # nothing to invite them to
    if room.private and key not in room.invited:
        ctx.change(records.Invite(user=ctx.key, room=room.name, target=key))
        ctx.audit("invite", room.name, target.username)
    invited: p.Invited = {"event": "invited", "room": ctx.room_info(room), "by": ctx.me.username}
    ctx.hub.to_user(key, Frame(invited))
    return {}


# -- server-wide: admins and suspensions -------------------------------------------


@command("admin")
def admin(ctx: Context, req: p.Admin) -> p.ProfileReply:
    """Gives or takes away the admin role. The last admin cannot take their
    own away, and a suspended account cannot be made an admin."""
    if not permissions.may("admin", ctx.model, None, ctx.key):
        raise _refused("change admins")
    target = ctx.user(req.username)
    key = user_key(target.username)
    if req.on:
        _not_a_guest(target, "only accounts can be admins")
    if target.admin != req.on:
        if not req.on and ctx.model.admins == {key}:
            raise NexusError("not_allowed", "the last admin cannot stop being one")
        if req.on and target.suspended:
            raise NexusError("not_allowed", f"{target.username} is suspended: unsuspend first")
        ctx.change(records.Admin(user=ctx.key, target=key, on=req.on))
        ctx.audit("admin" if req.on else "unadmin", None, target.username)
    return {"user": ctx.profile(target)}


def _suspension(ctx: Context, action: str, username: str) -> tuple[User, str]:
    if not permissions.may(action, ctx.model, None, ctx.key):
        raise _refused(f"{action} accounts")
    target = ctx.user(username)
    key = user_key(target.username)
    _check_over(ctx, action, None, target, key)
    return target, key


@command("suspend")
def suspend(ctx: Context, req: p.Suspend) -> p.Empty:
    """Suspends an account: its sessions get `suspended` and close, its
    tokens stop working for good, its logins are refused; its messages stay."""
    target, key = _suspension(ctx, "suspend", req.username)
    if not target.suspended:
        ctx.change(records.Suspend(user=ctx.key, target=key, on=True))
        ctx.audit("suspend", None, target.username, req.reason)
    told = NexusError("suspended", f"suspended by {ctx.me.username}: {req.reason or 'no reason'}")
    ctx.hub.expel(key, Frame(p.error(None, told)))
    return {}


@command("unsuspend")
def unsuspend(ctx: Context, req: p.Unsuspend) -> p.Empty:
    target, key = _suspension(ctx, "unsuspend", req.username)
    if target.suspended:
        ctx.change(records.Suspend(user=ctx.key, target=key, on=False))
        ctx.audit("unsuspend", None, target.username, req.reason)
    return {}


# -- at start --------------------------------------------------------------------


async def grant_admins(store: Store, names: list[str]) -> None:
    """Makes the named existing accounts admins (`nexus-server --admin`), and
    waits until that is written. A name with no account is logged and skipped:
    the server still starts, so the account can be registered."""
    await store.turn()
    model = store.model
    for name in names:
        user = model.user(name)
        if user is None:
            log.warning("--admin %s: no such account; register it, then restart", name[:40])
            continue
        if not user.admin:
            key = user_key(user.username)
            if user.suspended:
                store.apply(records.Suspend(target=key, on=False))
            store.apply(records.Admin(target=key, on=True))
            log.info("admin by the operator (--admin) on %s", user.username)
    await store.written()
