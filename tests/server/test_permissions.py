"""The permission table on its own: every role against every action, and for
the actions on another user, every acting role against every kind of target."""

from __future__ import annotations

import pytest

from nexus.server import permissions
from nexus.server.model import Model
from nexus.server.permissions import OVER, RULES, Role, Target, allowed
from nexus.server.records import from_json

ROLES = [Role.ADMIN, Role.OWNER, Role.MODERATOR, Role.MEMBER, None]  # None: no role at all
# action -> may each of ROLES take it at all ("Y"/"-", in ROLES' order)
MAY = {
    "erase": "YYY--",
    "topic": "YYY--",
    "pin": "YYY--",
    "delete": "YY---",
    "op": "YY---",
    "deop": "YY---",
    "kick": "YYY--",
    "ban": "YYY--",
    "unban": "YYY--",
    "bans": "YYY--",
    "mute": "YYY--",
    "unmute": "YYY--",
    "invite": "YYYY-",
    "join_private": "YY---",
    "read_private": "Y-YY-",
    "admin": "Y----",
    "suspend": "Y----",
    "unsuspend": "Y----",
}

TARGETS = [Target.SELF, Target.ADMIN, Target.OWNER, Target.MODERATOR, Target.USER]
# action -> acting role -> may it act on each of TARGETS ("Y"/"-", in TARGETS' order);
# a role not listed may act on nobody.
RESTRICT = {Role.ADMIN: "---YY", Role.OWNER: "---YY", Role.MODERATOR: "----Y"}
LIFT = {Role.ADMIN: "-YYYY", Role.OWNER: "-YYYY", Role.MODERATOR: "-YY-Y"}
OVER_EXPECTED = {
    "kick": RESTRICT,
    "ban": RESTRICT,
    "mute": RESTRICT,
    "op": {Role.ADMIN: "---YY", Role.OWNER: "---YY"},
    "deop": {Role.ADMIN: "---YY", Role.OWNER: "---YY"},
    "unban": LIFT,
    "unmute": LIFT,
    "admin": {Role.ADMIN: "YYYYY"},
    "suspend": {Role.ADMIN: "----Y"},
    "unsuspend": {Role.ADMIN: "----Y"},
}


def test_the_expected_tables_cover_every_action():
    """Every action of the table has a row here, so a new one cannot go untested."""
    assert set(MAY) == set(RULES)
    assert set(OVER_EXPECTED) == set(OVER)


@pytest.mark.parametrize("action", sorted(MAY))
def test_each_role_may_take_exactly_its_actions(action):
    """Every single role (and none) against `action`, as the table says."""
    for role, expected in zip(ROLES, MAY[action], strict=True):
        held = set() if role is None else {role}
        assert allowed(action, held) is (expected == "Y"), (action, role)


@pytest.mark.parametrize("action", sorted(OVER_EXPECTED))
def test_each_role_acts_on_exactly_its_targets(action):
    """Every acting role against every kind of target: nobody on the owner or an
    admin when restricting, a moderator never on a moderator, nobody on themself."""
    for role in ROLES:
        row = OVER_EXPECTED[action].get(role, "-----") if role is not None else "-----"
        held = set() if role is None else {role}
        for target, expected in zip(TARGETS, row, strict=True):
            assert allowed(action, held, target) is (expected == "Y"), (action, role, target)


def test_an_actor_with_several_roles_acts_in_the_strongest_the_action_allows():
    """An admin who is also a moderator acts as admin: they may kick a moderator."""
    assert allowed("kick", {Role.MODERATOR, Role.MEMBER}, Target.MODERATOR) is False
    assert allowed("kick", {Role.ADMIN, Role.MODERATOR, Role.MEMBER}, Target.MODERATOR) is True
    assert allowed("read_private", {Role.OWNER, Role.MEMBER}) is True
    assert allowed("join_private", {Role.MODERATOR, Role.MEMBER}) is False


def test_roles_and_targets_are_read_from_the_model():
    """roles: admin, owner (even after leaving), moderator, member; target_of:
    self first, then admin, owner, moderator, anyone else."""
    model = Model()
    for name in ("root", "olga", "mia", "bob"):
        model.apply(from_json({"op": "register", "username": name, "password": "x", "ts": 1.0}))
    model.apply(from_json({"op": "admin", "user": None, "target": "root", "on": True}))
    room = model.apply(
        from_json({"op": "create", "user": "olga", "room": "den", "topic": "", "ts": 1.0})
    )
    for key in ("mia", "bob"):
        model.apply(from_json({"op": "join", "user": key, "room": "den"}))
    model.apply(
        from_json({"op": "moderator", "user": "olga", "room": "den", "target": "mia", "on": True})
    )
    model.apply(from_json({"op": "leave", "user": "olga", "room": "den"}))
    assert permissions.roles(model, room, "root") == {Role.ADMIN}
    assert permissions.roles(model, room, "olga") == {Role.OWNER}
    assert permissions.roles(model, room, "mia") == {Role.MODERATOR, Role.MEMBER}
    assert permissions.roles(model, room, "bob") == {Role.MEMBER}
    target_of = permissions.target_of
    assert target_of(model, room, "mia", "mia") is Target.SELF
    assert target_of(model, room, "mia", "root") is Target.ADMIN
    assert target_of(model, room, "mia", "olga") is Target.OWNER
    assert target_of(model, room, "bob", "mia") is Target.MODERATOR
    assert target_of(model, room, "mia", "bob") is Target.USER
    assert permissions.may_act_on("kick", model, room, "mia", "bob") is True
    assert permissions.may_act_on("kick", model, room, "bob", "mia") is False
    model.apply(from_json({"op": "leave", "user": "mia", "room": "den"}))  # no longer a moderator
    assert permissions.roles(model, room, "mia") == set()


def test_a_private_room_shows_to_members_and_admins_only():
    """may_see: a public room to anyone; a private one to members and admins."""
    model = Model()
    for name in ("root", "olga", "bob"):
        model.apply(from_json({"op": "register", "username": name, "password": "x", "ts": 1.0}))
    model.apply(from_json({"op": "admin", "user": None, "target": "root", "on": True}))
    room = model.apply(
        from_json(
            {
                "op": "create",
                "user": "olga",
                "room": "vault",
                "topic": "",
                "ts": 1.0,
                "private": True,
            }
        )
    )
    assert permissions.may_see(model, room, "olga") is True
    assert permissions.may_see(model, room, "root") is True
    assert permissions.may_see(model, room, "bob") is False
    assert permissions.may_see(model, model.rooms["general"], "bob") is True
