"""Protocol 2's moderation over real sockets: roles, op/deop, kick, ban, mute,
invitations and private rooms, delete and topic rights, admins, suspensions,
and the server log of every action."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tests.conftest import PASSWORD
from tests.wire import Peer


@dataclass
class Den:
    """A room `den` owned by olga, with mia its moderator and bob, carol members;
    root is the server's first account, so its admin."""

    root: Peer
    olga: Peer
    mia: Peer
    bob: Peer
    carol: Peer


async def den(server) -> Den:
    root = await server.user("root")
    olga = await server.user("olga")
    mia, bob, carol = [await server.user(name) for name in ("mia", "bob", "carol")]
    await olga.ok("create", room="den")
    for peer in (mia, bob, carol):
        await peer.ok("join", room="den")
    await olga.ok("op", room="den", username="mia")
    for peer in (olga, mia, bob, carol):
        await peer.event("room_updated")  # so later tests see only their own
        peer.events.clear()
    return Den(root, olga, mia, bob, carol)


async def info(peer: Peer, room: str) -> dict:
    """The RoomInfo of `room` as `peer` sees it in `rooms`."""
    rooms = {r["name"]: r for r in (await peer.ok("rooms"))["rooms"]}
    return rooms[room]


# -- admins ------------------------------------------------------------------------


async def test_the_first_account_is_an_admin_and_later_ones_are_not(server):
    """The first account registered on an empty store is an admin; Profile says so."""
    first = await server.user("first")
    second = await server.user("second")
    assert (await first.ok("whois", username="first"))["user"]["admin"] is True
    assert (await second.ok("whois", username="second"))["user"]["admin"] is False


async def test_admin_grants_and_removes_admins_but_the_last_cannot_leave(server):
    """admin: only admins; the last admin cannot remove themself; with two, one may."""
    root = await server.user("root")
    bob = await server.user("bob")
    await bob.fails("not_allowed", "admin", username="bob", on=True)
    await root.fails("not_allowed", "admin", username="root", on=False)
    await root.fails("no_such_user", "admin", username="nobody", on=True)
    reply = await root.ok("admin", username="bob", on=True)
    assert reply["user"]["admin"] is True
    await bob.ok("admin", username="root", on=False)
    await bob.fails("not_allowed", "admin", username="bob", on=False)
    await root.fails("not_allowed", "admin", username="root", on=True)
    await bob.ok("admin", username="root", on=True)
    await bob.ok("admin", username="bob", on=False)  # root is still an admin
    assert (await bob.ok("whois", username="bob"))["user"]["admin"] is False
    await bob.fails("bad_args", "admin", username="bob")


# -- op and deop -------------------------------------------------------------------


async def test_op_and_deop_tell_members_with_room_updated(server):
    """The owner names and removes a moderator: room_updated with the new RoomInfo to members."""
    d = await den(server)
    reply = await d.olga.ok("op", room="den", username="bob")
    assert reply["room"]["moderators"] == ["bob", "mia"]
    for peer in (d.bob, d.carol, d.mia):
        event = await peer.event("room_updated")
        assert event["by"] == "olga" and event["room"]["moderators"] == ["bob", "mia"]
    await d.root.no_event("room_updated")  # not a member
    await d.olga.ok("deop", room="den", username="bob")
    event = await d.carol.event("room_updated")
    assert event["room"]["moderators"] == ["mia"]
    assert (await info(d.carol, "den"))["moderators"] == ["mia"]


async def test_only_owner_and_admins_name_moderators_and_never_on_owner_admin_or_self(server):
    """op/deop: a moderator or member is not_allowed; on the owner, an admin or
    oneself not_allowed; on a non-member not_member; admins moderate default
    rooms too, through moderators they name."""
    d = await den(server)
    await d.mia.fails("not_allowed", "op", room="den", username="bob")
    await d.bob.fails("not_allowed", "op", room="den", username="carol")
    await d.bob.fails("not_allowed", "deop", room="den", username="mia")
    await d.olga.fails("not_allowed", "op", room="den", username="olga")
    await d.root.ok("join", room="den")
    await d.olga.fails("not_allowed", "op", room="den", username="root")
    await d.root.fails("not_allowed", "op", room="den", username="olga")
    await d.root.fails("not_member", "op", room="tech", username="bob")
    await d.root.fails("not_member", "deop", room="tech", username="bob")
    await d.olga.fails("no_such_user", "op", room="den", username="nobody")
    await d.olga.fails("no_such_room", "op", room="nowhere", username="bob")
    await d.root.ok("deop", room="den", username="mia")
    await d.root.ok("op", room="general", username="bob")
    assert (await info(d.bob, "general"))["moderators"] == ["bob"]
    await d.bob.ok("kick", room="general", username="carol", reason="default rooms too")
    assert (await d.carol.event("kicked", room="general"))["by"] == "bob"
    await d.root.ok("mute", room="general", username="mia")
    await d.mia.fails("muted", "say", room="general", text="hello?")


async def test_a_moderator_who_leaves_or_is_kicked_is_one_no_more(server):
    """Leaving or being kicked ends a moderator's role; joining again does not bring it back."""
    d = await den(server)
    await d.olga.ok("op", room="den", username="bob")
    await d.mia.ok("leave", room="den")
    await d.olga.ok("kick", room="den", username="bob")
    await d.mia.ok("join", room="den")
    assert (await info(d.olga, "den"))["moderators"] == []
    await d.mia.fails("not_allowed", "kick", room="den", username="carol")


# -- kick ----------------------------------------------------------------------------


async def test_a_moderator_kicks_a_member_who_is_told_why(server):
    """kick: `kicked` with the reason to every member and the kicked user's
    sessions; the user is no longer a member."""
    d = await den(server)
    second = await server.user("bob", register=False)
    await d.mia.ok("kick", room="den", username="bob", reason="spamming")
    for peer in (d.olga, d.carol, d.bob, second):
        event = await peer.event("kicked")
        assert event == {
            "event": "kicked",
            "room": "den",
            "user": "bob",
            "by": "mia",
            "reason": "spamming",
            "banned": False,
        }
    await d.bob.fails("not_member", "say", room="den", text="hi")
    assert "den" not in (await d.bob.ok("whois", username="bob"))["user"]["rooms"]
    await d.bob.ok("join", room="den")  # a kick is not a ban
    await d.mia.ok("kick", room="den", username="bob")
    assert (await d.carol.event("kicked", user="bob"))["reason"] == ""


async def test_nobody_kicks_bans_or_mutes_the_owner_an_admin_a_fellow_moderator_or_themself(
    server,
):
    """The protections of section 4 for kick, ban and mute, all not_allowed."""
    d = await den(server)
    await d.root.ok("join", room="den")
    await d.olga.ok("op", room="den", username="carol")
    for action in ("kick", "ban", "mute"):
        await d.mia.fails("not_allowed", action, room="den", username="olga")
        await d.mia.fails("not_allowed", action, room="den", username="root")
        await d.mia.fails("not_allowed", action, room="den", username="carol")
        await d.mia.fails("not_allowed", action, room="den", username="mia")
        await d.olga.fails("not_allowed", action, room="den", username="olga")
        await d.olga.fails("not_allowed", action, room="den", username="root")
        await d.root.fails("not_allowed", action, room="den", username="olga")
        await d.root.fails("not_allowed", action, room="den", username="root")
        await d.bob.fails("not_allowed", action, room="den", username="carol")
    assert (await info(d.olga, "den"))["members"] == 5


async def test_kick_and_mute_need_a_member_ban_does_not(server):
    """kick and mute on a non-member are not_member; ban works on anyone."""
    d = await den(server)
    outsider = await server.user("outsider")
    await d.mia.fails("not_member", "kick", room="den", username="outsider")
    await d.mia.fails("not_member", "mute", room="den", username="outsider")
    await d.mia.ok("ban", room="den", username="outsider", reason="known troll")
    await outsider.fails("banned", "join", room="den")
    await d.mia.ok("unban", room="den", username="outsider")
    await outsider.ok("join", room="den")


# -- ban -----------------------------------------------------------------------------


async def test_ban_removes_a_member_who_then_cannot_join_until_unbanned(server):
    """ban on a member: `kicked` with banned true; join is `banned`; `bans`
    lists the ban; unban lets them back."""
    d = await den(server)
    await d.mia.ok("ban", room="den", username="bob", reason="flooding")
    event = await d.bob.event("kicked")
    assert event["banned"] is True and event["reason"] == "flooding" and event["by"] == "mia"
    assert (await d.carol.event("kicked"))["banned"] is True
    await d.bob.fails("banned", "join", room="den")
    bans = (await d.olga.ok("bans", room="den"))["bans"]
    assert [(b["user"], b["by"], b["reason"]) for b in bans] == [("bob", "mia", "flooding")]
    assert isinstance(bans[0]["ts"], float)
    await d.carol.fails("not_allowed", "bans", room="den")
    await d.bob.fails("not_allowed", "unban", room="den", username="bob")
    await d.mia.ok("ban", room="den", username="bob", reason="again")  # already: unchanged
    assert (await d.root.ok("bans", room="den"))["bans"] == bans
    await d.olga.ok("unban", room="den", username="bob")
    assert (await d.olga.ok("bans", room="den"))["bans"] == []
    await d.bob.ok("join", room="den")


async def test_the_staff_are_told_of_a_ban_of_someone_outside_and_of_an_unban(server):
    """A ban of someone not in the room (kicked first, say) and every unban:
    `banned` to the owner, the moderators and the admins, not to the room
    and not to the session that made it (its reply said so)."""
    d = await den(server)
    await d.mia.ok("kick", room="den", username="bob")
    for peer in (d.olga, d.mia, d.carol, d.bob):
        await peer.event("kicked")
    await d.mia.ok("ban", room="den", username="bob", reason="came back to flood")
    banned = await d.olga.event("banned")
    assert banned == {
        "event": "banned",
        "room": "den",
        "user": "bob",
        "by": "mia",
        "reason": "came back to flood",
        "on": True,
    }
    assert (await d.root.event("banned"))["on"] is True  # an admin, not in the room
    await d.olga.ok("unban", room="den", username="bob")
    unbanned = await d.mia.event("banned")
    assert (unbanned["on"], unbanned["by"], unbanned["user"]) == (False, "olga", "bob")
    await d.root.event("banned", on=False)
    for peer in (d.carol, d.bob):  # the room and the banned user hear of neither
        await peer.ok("ping")
        assert not [e for e in peer.events if e["event"] == "banned"]
    await d.mia.ok("ping")
    assert [e["on"] for e in d.mia.events if e["event"] == "banned"] == []  # own: the reply
    await d.olga.ok("ping")
    assert not [e for e in d.olga.events if e["event"] == "banned"]  # own unban


# -- mute ----------------------------------------------------------------------------


async def test_a_muted_member_cannot_say_react_or_edit_until_unmuted(server):
    """mute: `muted` to members; say, react and edit are `muted`; reading,
    DMs and other rooms are not affected; unmute lifts it."""
    d = await den(server)
    sent = await d.bob.ok("say", room="den", text="before")
    await d.mia.ok("mute", room="den", username="bob")
    for peer in (d.bob, d.carol, d.olga):
        event = await peer.event("muted")
        assert event == {"event": "muted", "room": "den", "user": "bob", "by": "mia", "on": True}
    assert (await info(d.carol, "den"))["muted"] == ["bob"]
    await d.bob.fails("muted", "say", room="den", text="let me speak")
    await d.bob.fails("muted", "react", room="den", seq=sent["seq"], emoji="+1")
    await d.bob.fails("muted", "edit", room="den", seq=sent["seq"], text="changed")
    await d.bob.ok("history", room="den")
    await d.bob.ok("erase", room="den", seq=sent["seq"])  # taking one's words back is allowed
    await d.bob.ok("dm", to="carol", text="still here")
    await d.bob.ok("say", room="general", text="elsewhere")
    await d.bob.ok("leave", room="den")
    await d.bob.ok("join", room="den")
    await d.bob.fails("muted", "say", room="den", text="leaving did not help")
    await d.mia.ok("unmute", room="den", username="bob")
    assert (await d.carol.event("muted", on=False))["user"] == "bob"
    await d.bob.ok("say", room="den", text="thanks")


# -- private rooms and invitations ---------------------------------------------------


async def test_a_private_room_shows_nothing_to_non_members(server):
    """A private room: room_created to its creator only, absent from `rooms`
    and `whois`, history and search not_member, no events reach outsiders."""
    root = await server.user("root")
    olga = await server.user("olga")
    bob = await server.user("bob")
    outsider = await server.user("outsider")
    reply = await olga.ok("create", room="vault", topic="secret plans", private=True)
    assert reply["room"]["private"] is True
    assert (await olga.event("room_created"))["room"]["name"] == "vault"
    await outsider.no_event("room_created")
    await root.no_event("room_created")
    await olga.ok("invite", room="vault", username="bob")
    await bob.ok("join", room="vault")
    await olga.ok("say", room="vault", text="the password is swordfish")
    assert "vault" not in [r["name"] for r in (await outsider.ok("rooms"))["rooms"]]
    assert "vault" in [r["name"] for r in (await bob.ok("rooms"))["rooms"]]
    assert "vault" in [r["name"] for r in (await root.ok("rooms"))["rooms"]]
    assert "vault" not in (await outsider.ok("whois", username="olga"))["user"]["rooms"]
    assert "vault" in (await bob.ok("whois", username="olga"))["user"]["rooms"]
    await outsider.fails("not_member", "history", room="vault")
    await outsider.fails("not_member", "search", room="vault", query="swordfish")
    await outsider.fails("invite_only", "join", room="vault")
    assert (await outsider.ok("search", query="swordfish"))["results"] == []
    for event in ("joined", "message"):
        assert not any(e.get("room") == "vault" for e in outsider.events if e["event"] == event)
    found = await bob.ok("search", query="swordfish")
    assert [m["text"] for m in found["results"]] == ["the password is swordfish"]
    # An admin may read and search it without being a member, and join uninvited.
    assert len((await root.ok("history", room="vault"))["messages"]) == 1
    assert len((await root.ok("search", room="vault", query="swordfish"))["results"]) == 1
    await root.ok("join", room="vault")


async def test_an_invitation_lasts_until_used(server):
    """invite: `invited` to the invitee's sessions; the invitation admits one
    join; after leaving, joining needs a new one."""
    olga = await server.user("olga")
    bob = await server.user("bob")
    second = await server.user("bob", register=False)
    await olga.ok("create", room="vault", private=True)
    await bob.fails("invite_only", "join", room="vault")
    await olga.ok("invite", room="vault", username="bob")
    for peer in (bob, second):
        event = await peer.event("invited")
        assert event["by"] == "olga" and event["room"]["name"] == "vault"
        assert event["room"]["private"] is True
    joined = await bob.ok("join", room="vault")
    assert joined["room"]["members"] == 2
    await bob.ok("leave", room="vault")
    await bob.fails("invite_only", "join", room="vault")


async def test_a_login_tells_of_invitations_made_while_away(server):
    """The `invited` event reaches only sessions online: a login's reply lists
    the private rooms its user is invited to (`invited`), until one is used."""
    olga = await server.user("olga")
    bob = await server.user("bob")
    await bob.close()
    await olga.ok("create", room="vault", private=True)
    await olga.ok("create", room="attic", private=True)
    await olga.ok("invite", room="vault", username="bob")
    peer = await server.peer()
    login = await peer.ok("login", username="bob", password=PASSWORD)
    assert [info["name"] for info in login["invited"]] == ["vault"]
    assert login["invited"][0]["private"] is True
    await peer.ok("join", room="vault")
    again = await (await server.peer()).ok("login", username="bob", password=PASSWORD)
    assert "invited" not in again


async def test_an_invitation_ends_with_its_room(server):
    """Deleting a private room drops its invitations: a new room of that name needs new ones."""
    olga = await server.user("olga")
    bob = await server.user("bob")
    await olga.ok("create", room="vault", private=True)
    await olga.ok("invite", room="vault", username="bob")
    await olga.ok("delete", room="vault")
    await olga.ok("create", room="vault", private=True)
    await bob.fails("invite_only", "join", room="vault")


async def test_invite_rules(server):
    """The inviter must be a member; a banned user cannot be invited; inviting
    to a public room only tells the invitee; a member needs no invitation."""
    d = await den(server)
    outsider = await server.user("outsider")
    await outsider.fails("not_member", "invite", room="den", username="carol")
    await d.mia.ok("ban", room="den", username="outsider")
    await d.bob.fails("banned", "invite", room="den", username="outsider")
    await d.bob.fails("no_such_user", "invite", room="den", username="nobody")
    await d.bob.ok("invite", room="den", username="root")
    event = await d.root.event("invited")
    assert event["by"] == "bob" and event["room"]["private"] is False
    await d.bob.ok("invite", room="den", username="carol")  # already in: nothing to tell
    await d.carol.no_event("invited")


async def test_a_ban_cancels_an_invitation(server):
    """A user invited and then banned cannot join even once unbanned."""
    olga = await server.user("olga")
    bob = await server.user("bob")
    await olga.ok("create", room="vault", private=True)
    await olga.ok("invite", room="vault", username="bob")
    await olga.ok("ban", room="vault", username="bob")
    await bob.fails("banned", "join", room="vault")
    await olga.ok("unban", room="vault", username="bob")
    await bob.fails("invite_only", "join", room="vault")


async def test_deleting_a_private_room_tells_its_members_and_admins_only(server):
    """room_deleted of a private room reaches members and admins, nobody else."""
    root = await server.user("root")
    olga = await server.user("olga")
    bob = await server.user("bob")
    outsider = await server.user("outsider")
    await olga.ok("create", room="vault", private=True)
    await olga.ok("invite", room="vault", username="bob")
    await bob.ok("join", room="vault")
    await olga.ok("delete", room="vault")
    for peer in (olga, bob, root):
        assert (await peer.event("room_deleted"))["room"] == "vault"
    await outsider.no_event("room_deleted")


# -- delete, topic and erase rights ----------------------------------------------------


async def test_delete_and_topic_rights_stay_not_owner(server):
    """delete: owner and admins (others not_owner); topic: owner, moderators and
    admins, default rooms included for admins."""
    d = await den(server)
    await d.mia.ok("topic", room="den", topic="set by a moderator")
    assert (await d.bob.event("topic"))["by"] == "mia"
    await d.bob.fails("not_owner", "topic", room="den", topic="mine")
    await d.mia.fails("not_owner", "delete", room="den")
    await d.bob.fails("not_owner", "delete", room="den")
    await d.root.ok("topic", room="general", topic="house rules")
    await d.olga.fails("not_owner", "topic", room="general", topic="mine")
    await d.root.fails("protected_room", "delete", room="general")
    await d.root.ok("delete", room="den")
    assert (await d.bob.event("room_deleted"))["by"] == "root"


async def test_moderators_and_admins_erase_others_messages(server):
    """erase of someone else's room message: owner, moderators, admins; not members."""
    d = await den(server)
    await d.root.ok("join", room="den")
    seqs = [(await d.bob.ok("say", room="den", text=f"m{i}"))["seq"] for i in range(3)]
    await d.carol.fails("not_allowed", "erase", room="den", seq=seqs[0])
    await d.mia.ok("erase", room="den", seq=seqs[0])
    await d.root.ok("erase", room="den", seq=seqs[1])
    await d.olga.ok("erase", room="den", seq=seqs[2])
    history = (await d.bob.ok("history", room="den"))["messages"]
    assert all(m.get("erased") for m in history)


# -- suspensions ---------------------------------------------------------------------


async def test_suspending_closes_sessions_and_refuses_every_login(server):
    """suspend: the user's sessions get `suspended` and close; password and
    token logins are `suspended`; unsuspend lets the password in again, never
    an old token; messages stay."""
    root = await server.user("root")
    bob_peer = await server.peer()
    token = (await bob_peer.ok("register", username="bob", password=PASSWORD))["token"]
    bob_peer.name = "bob"
    await bob_peer.ok("say", room="general", text="my words stay")
    await root.ok("suspend", username="bob", reason="abuse")
    assert await bob_peer.closed()
    refusal = [e for e in bob_peer.events if e.get("ok") is False][-1]
    assert refusal["error"]["code"] == "suspended" and "abuse" in refusal["error"]["message"]
    again = await server.peer()
    await again.fails("suspended", "login", username="bob", password=PASSWORD)
    await again.fails("suspended", "login", username="bob", token=token)
    await again.fails("auth_failed", "login", username="bob", password="not the password")
    history = (await root.ok("history", room="general"))["messages"]
    assert history[-1]["text"] == "my words stay"
    await root.ok("unsuspend", username="bob")
    await again.fails("auth_failed", "login", username="bob", token=token)
    await again.ok("login", username="bob", password=PASSWORD)


async def test_suspend_is_for_admins_never_on_admins_or_oneself(server):
    """suspend: a non-admin is not_allowed; an admin cannot be suspended, nor
    oneself; a suspended user cannot be made an admin."""
    root = await server.user("root")
    bob = await server.user("bob")
    await server.user("carol")
    await bob.fails("not_allowed", "suspend", username="carol")
    await root.fails("not_allowed", "suspend", username="root")
    await root.ok("admin", username="bob", on=True)
    await root.fails("not_allowed", "suspend", username="bob")
    await root.fails("no_such_user", "suspend", username="nobody")
    await root.ok("suspend", username="carol")
    await root.fails("not_allowed", "admin", username="carol", on=True)
    await bob.fails("not_allowed", "unsuspend", username="bob")


# -- the server log -----------------------------------------------------------------


async def test_every_moderation_action_is_in_the_server_log(server, caplog):
    """Who, what, whom, where and why of each action reach the log."""
    caplog.set_level(logging.INFO, logger="nexus.moderation")
    d = await den(server)
    sent = await d.bob.ok("say", room="den", text="spam")
    await d.mia.ok("erase", room="den", seq=sent["seq"])
    await d.mia.ok("ban", room="den", username="bob", reason="flooding")
    await d.mia.ok("kick", room="den", username="carol", reason="rude")
    await d.olga.ok("mute", room="den", username="mia")
    await d.root.ok("suspend", username="bob", reason="spam bot")
    lines = [r.getMessage() for r in caplog.records if r.name == "nexus.moderation"]
    assert "op by olga on mia in #den" in lines
    assert "ban by mia on bob in #den reason='flooding'" in lines
    assert "kick by mia on carol in #den reason='rude'" in lines
    assert "mute by olga on mia in #den" in lines
    assert "suspend by root on bob reason='spam bot'" in lines
    assert f"erase of {sent['seq']} by mia on bob in #den" in lines
    await d.root.ok("delete", room="den")
    assert caplog.records[-1].getMessage() == "delete by root in #den"


async def test_unmute_reaches_a_member_who_left_and_outsiders_learn_nothing(server):
    """unmute works on a muted user who left (they are told); without the right,
    kick of a non-member is not_allowed, not not_member."""
    d = await den(server)
    outsider = await server.user("outsider")
    await d.mia.ok("mute", room="den", username="bob")
    await d.bob.ok("leave", room="den")
    await d.mia.ok("unmute", room="den", username="bob")
    event = await d.bob.event("muted", on=False)
    assert event["room"] == "den" and event["by"] == "mia"
    await d.bob.ok("join", room="den")
    await d.bob.ok("say", room="den", text="back, and heard")
    await d.carol.fails("not_allowed", "kick", room="den", username="outsider")
    await d.carol.fails("not_allowed", "mute", room="den", username="nobody")
    await outsider.fails("not_allowed", "bans", room="den")


async def test_creating_a_private_room_does_not_reach_admins_or_other_users(server):
    """room_created of a private room goes to the creator's sessions only, all of them."""
    root = await server.user("root")
    olga = await server.user("olga")
    second = await server.user("olga", register=False)
    await olga.ok("create", room="vault", private=True)
    for peer in (olga, second):
        assert (await peer.event("room_created"))["room"]["private"] is True
    await root.no_event("room_created")
    await olga.ok("create", room="square")
    assert (await root.event("room_created"))["room"]["name"] == "square"


async def test_naming_a_suspended_account_admin_at_start_lifts_the_suspension(
    start_server, tmp_path
):
    """`--admin bob` for a suspended bob: admins cannot be suspended, so he is
    let in again, as an admin."""
    data = tmp_path / "nexus_data.json"
    first = await start_server(data=data)
    root = await first.user("root")
    await first.user("bob")
    await root.ok("suspend", username="bob")
    await first.close()
    second = await start_server(data=data, admin=("bob",))
    bob = await second.user("bob", register=False)
    assert (await bob.ok("whois", username="bob"))["user"]["admin"] is True
