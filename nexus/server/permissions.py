"""Who may do what: one table, role x action, asked by every handler.

A user's roles in a room come from the model (`roles`): server admin,
the room's owner (its creator, even after leaving), its moderators, its
members. `RULES` says which roles may take each action. For the actions
that act on another user, `OVER` says, for the role the actor acts in (the
strongest of theirs that the action allows), which kinds of target they may
act on: the rules "nobody acts on the owner or an admin", "a moderator may
not act on another moderator" and "nobody acts on themselves" are rows of
it. `allowed` is the pure decision, tested on its own for every role and
action; `may` and `may_act_on` read the roles from the model first.

Membership conditions that have their own error code (`not_member`,
`banned`, `invite_only`) stay in the handlers: the table answers only "is
this role entitled to this action".
"""

from __future__ import annotations

import enum

from nexus.server.model import Model, Room


class Role(enum.Enum):
    """A role an actor holds; the order is strongest first."""

    ADMIN = "admin"  # server-wide: every owner's right, in every room
    OWNER = "owner"  # the room's creator
    MODERATOR = "moderator"  # named by the owner or an admin; always a member
    MEMBER = "member"


class Target(enum.Enum):
    """What the user acted on is, seen from the actor."""

    SELF = "self"
    ADMIN = "admin"
    OWNER = "owner"
    MODERATOR = "moderator"
    USER = "user"  # anyone else, member or not


_STAFF = frozenset({Role.ADMIN, Role.OWNER, Role.MODERATOR})  # room staff
_RULERS = frozenset({Role.ADMIN, Role.OWNER})  # owner's rights
_ANYONE = frozenset(Role)

# Action -> the roles that may take it. Room actions read the room's roles;
# the server-wide ones (`admin`, `suspend`, `unsuspend`) only ADMIN.
RULES: dict[str, frozenset[Role]] = {
    "erase": _STAFF,  # someone else's room message
    "topic": _STAFF,
    "pin": _STAFF,
    "delete": _RULERS,
    "op": _RULERS,
    "deop": _RULERS,
    "kick": _STAFF,
    "ban": _STAFF,
    "unban": _STAFF,
    "bans": _STAFF,
    "mute": _STAFF,
    "unmute": _STAFF,
    "invite": _ANYONE,  # a member of the room (the handler checks membership)
    "join_private": _RULERS,  # join a private room without an invitation
    "read_private": frozenset({Role.ADMIN, Role.MODERATOR, Role.MEMBER}),  # see, read, search
    "admin": frozenset({Role.ADMIN}),
    "suspend": frozenset({Role.ADMIN}),
    "unsuspend": frozenset({Role.ADMIN}),
}

_RESTRICT_BY_RULER = frozenset({Target.MODERATOR, Target.USER})
_LIFT_BY_RULER = frozenset({Target.ADMIN, Target.OWNER, Target.MODERATOR, Target.USER})
_BY_MODERATOR = frozenset({Target.USER})
_LIFT_BY_MODERATOR = frozenset({Target.ADMIN, Target.OWNER, Target.USER})

# Targeted action -> acting role -> the targets it may act on. Restricting
# someone (kick, ban, mute, op, deop) never reaches the owner or an admin;
# lifting a restriction (unban, unmute) reaches anyone (a user banned before
# becoming an admin can be unbanned). A moderator never acts on another
# moderator, and nobody on themselves (SELF is in no set, but `admin`'s).
OVER: dict[str, dict[Role, frozenset[Target]]] = {
    "op": {Role.ADMIN: _RESTRICT_BY_RULER, Role.OWNER: _RESTRICT_BY_RULER},
    "deop": {Role.ADMIN: _RESTRICT_BY_RULER, Role.OWNER: _RESTRICT_BY_RULER},
    **{
        action: {
            Role.ADMIN: _RESTRICT_BY_RULER,
            Role.OWNER: _RESTRICT_BY_RULER,
            Role.MODERATOR: _BY_MODERATOR,
        }
        for action in ("kick", "ban", "mute")
    },
    **{
        action: {
            Role.ADMIN: _LIFT_BY_RULER,
            Role.OWNER: _LIFT_BY_RULER,
            Role.MODERATOR: _LIFT_BY_MODERATOR,
        }
        for action in ("unban", "unmute")
    },
    # Server-wide. An admin may take their own `admin` away (unless they are
    # the last: the handler counts); admins are never suspended.
    "admin": {Role.ADMIN: frozenset(Target)},
    "suspend": {Role.ADMIN: frozenset({Target.USER})},
    "unsuspend": {Role.ADMIN: frozenset({Target.USER})},
}


def allowed(action: str, held: set[Role], target: Target | None = None) -> bool:
    """Whether an actor holding `held` may take `action`: at all (no
    `target`), or on a user who is `target` to them. The decision, with no model."""
    permitted = RULES[action]
    acting = next((role for role in Role if role in held and role in permitted), None)
    if acting is None:
        return False
    if target is None:
        return True
    return target in OVER[action].get(acting, frozenset())


def server_roles(model: Model, key: str) -> set[Role]:
    return {Role.ADMIN} if key in model.admins else set()


def roles(model: Model, room: Room, key: str) -> set[Role]:
    """The roles a user (by key) holds in a room."""
    held = server_roles(model, key)
    if room.owner == key:
        held.add(Role.OWNER)
    if key in room.moderators:
        held.add(Role.MODERATOR)
    if key in room.members:
        held.add(Role.MEMBER)
    return held


def target_of(model: Model, room: Room | None, key: str, target: str) -> Target:
    """What `target` is to `key`: themself, or their strongest role."""
    if target == key:
        return Target.SELF
    if target in model.admins:
        return Target.ADMIN
    if room is not None and room.owner == target:
        return Target.OWNER
    if room is not None and target in room.moderators:
        return Target.MODERATOR
    return Target.USER


def may(action: str, model: Model, room: Room | None, key: str) -> bool:
    """Whether `key` holds a role that may take `action` (in `room`, for a
    room action): for a targeted one, on someone at least."""
    held = server_roles(model, key) if room is None else roles(model, room, key)
    return allowed(action, held)


def may_act_on(action: str, model: Model, room: Room | None, key: str, target: str) -> bool:
    """Whether `key` holds a role entitled to `action` over `target`."""
    held = server_roles(model, key) if room is None else roles(model, room, key)
    return allowed(action, held, target_of(model, room, key, target))


def may_see(model: Model, room: Room, key: str | None) -> bool:
    """Whether a room shows at all to `key`: public rooms to everyone, a
    private one to its members and admins (in `rooms`, `whois`, events)."""
    if not room.private:
        return True
    return key is not None and allowed("read_private", roles(model, room, key))
