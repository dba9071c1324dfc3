"""Moderation over IRC, real sockets: owners, moderators and admins are channel
operators; KICK, INVITE, MODE +o/+b/+q map to the server's moderation commands."""

from __future__ import annotations

from tests.irc.conftest import ADMIN, IrcPeer, IrcServer


async def den(irc: IrcServer) -> tuple[IrcPeer, IrcPeer]:
    """ana owns #den (created by JOIN), bob is a member; neither is an admin."""
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #den")
    await ana.expect(r" 366 ana #den ")
    bob = await irc.irc_user("bob")
    await bob.send("JOIN #den")
    await bob.expect(r" 366 bob #den ")
    await ana.expect(r"^:bob!~bob@nexus JOIN #den$")
    return ana, bob


async def test_op_and_deop_show_as_mode_o(irc: IrcServer) -> None:
    """MODE +o makes a member a moderator (everyone sees MODE +o, NAMES shows @);
    -o takes it back; a member without the right gets 482."""
    ana, bob = await den(irc)
    await bob.send("MODE #den +o bob")
    await bob.expect(r" 482 bob #den ")
    await ana.send("MODE #den +o bob")
    await bob.expect(r"^:ana!~ana@nexus MODE #den \+o bob$")
    await ana.expect(r"^:ana!~ana@nexus MODE #den \+o bob$")
    await bob.send("NAMES #den")
    names = (await bob.expect(r" 353 bob = #den :(.*)$")).group(1).split()
    assert sorted(names) == ["@ana", "@bob"]
    await ana.send("MODE #den -o bob")
    await bob.expect(r"^:ana!~ana@nexus MODE #den -o bob$")


async def test_kick_removes_a_member(irc: IrcServer) -> None:
    """KICK with a reason reaches the channel; the kicked member can no longer speak
    there (404); kicking someone not in the channel is 441."""
    ana, bob = await den(irc)
    await ana.send("KICK #den bob :calm down")
    await bob.expect(r"^:ana!~ana@nexus KICK #den bob :calm down$")
    await ana.expect(r"^:ana!~ana@nexus KICK #den bob :calm down$")
    await bob.send("PRIVMSG #den :hello?")
    await bob.expect(r" 404 bob #den ")
    await ana.send("KICK #den bob")
    await ana.expect(r" 441 ana bob #den ")


async def test_ban_keeps_out_and_lists_until_unban(irc: IrcServer) -> None:
    """MODE +b kicks and bans (474 on JOIN), MODE b lists the ban, -b lifts it."""
    ana, bob = await den(irc)
    await ana.send("MODE #den +b bob!*@*")
    await bob.expect(r"^:ana!~ana@nexus MODE #den \+b bob!\*@\*$")
    await bob.expect(r"^:ana!~ana@nexus KICK #den bob :")
    await bob.send("JOIN #den")
    await bob.expect(r" 474 bob #den ")
    await ana.send("MODE #den b")
    await ana.expect(r" 367 ana #den bob!\*@\* ana :?\d+$")
    await ana.expect(r" 368 ana #den ")
    await ana.send("MODE #den -b bob")
    await ana.expect(r"^:ana!~ana@nexus MODE #den -b bob!\*@\*$")
    await bob.send("JOIN #den")
    await bob.expect(r"^:bob!~bob@nexus JOIN #den$")


async def test_mute_is_mode_q_and_refuses_with_404(irc: IrcServer) -> None:
    """MODE +q mutes a member (PRIVMSG is 404), MODE q lists them, -q lifts it."""
    ana, bob = await den(irc)
    await ana.send("MODE #den +q bob")
    await bob.expect(r"^:ana!~ana@nexus MODE #den \+q bob$")
    await bob.send("PRIVMSG #den :can I talk?")
    await bob.expect(r" 404 bob #den :Cannot send to channel")
    await ana.send("MODE #den q")
    await ana.expect(r" 728 ana #den q :?bob!\*@\*$")
    await ana.expect(r" 729 ana #den q ")
    await ana.send("MODE #den -q bob")
    await bob.expect(r"^:ana!~ana@nexus MODE #den -q bob$")
    await bob.send("PRIVMSG #den :thanks")
    await ana.expect(r":bob!~bob@nexus PRIVMSG #den :thanks$")


async def test_private_room_needs_an_invite(irc: IrcServer) -> None:
    """A private room is +i: JOIN is 473 until an INVITE (from a native member or
    over IRC, answered 341) arrives as INVITE."""
    cyd = await irc.running.user("cyd")
    await cyd.ok("create", room="vault", private=True)
    bob = await irc.irc_user("bob")
    await bob.send("JOIN #vault")
    await bob.expect(r" 473 bob #vault ")
    await cyd.ok("invite", room="vault", username="bob")
    await bob.expect(r"^:cyd!~cyd@nexus INVITE bob #vault$")
    await bob.send("JOIN #vault")
    await bob.expect(r" 366 bob #vault ")
    await bob.send("MODE #vault")
    await bob.expect(r" 324 bob #vault \+int$")
    dan = await irc.irc_user("dan")
    await bob.send("INVITE dan #vault")
    await bob.expect(r" 341 bob dan :?#vault$")
    await dan.expect(r"^:bob!~bob@nexus INVITE dan #vault$")


async def test_an_invitation_made_while_away_is_an_invite_at_login(irc: IrcServer) -> None:
    """Invited while logged out, an IRC client gets an INVITE after its welcome
    (from the server: who invited is not kept) and may then JOIN."""
    await irc.account("bob")
    cyd = await irc.running.user("cyd")
    await cyd.ok("create", room="vault", private=True)
    await cyd.ok("invite", room="vault", username="bob")
    bob = await irc.peer()
    await bob.register("bob")
    await bob.expect(r"^:nexus INVITE bob #vault$")
    await bob.send("JOIN #vault")
    await bob.expect(r" 366 bob #vault ")


async def test_an_admin_is_an_operator_everywhere(irc: IrcServer) -> None:
    """The server's admin (its first account) shows as @ in every channel's NAMES,
    and WHOIS says it is a server administrator (313)."""
    root = await irc.peer()
    await root.register(ADMIN)
    await root.expect(rf" 366 {ADMIN} #general ")
    await irc.irc_user("bob")
    await root.send("NAMES #general")
    names = (await root.expect(r" 353 root = #general :(.*)$")).group(1).split()
    assert sorted(names) == ["@root", "bob"]
    await root.send("WHOIS root")
    await root.expect(r" 313 root root :is a server administrator$")


async def test_mode_i_cannot_change_a_rooms_privacy(irc: IrcServer) -> None:
    """MODE +i / -i by an operator is 400 saying privacy is chosen at creation (the
    mode stays as it was); one that already holds changes nothing; a member who is
    not an operator gets 482."""
    ana, bob = await den(irc)
    await ana.send("MODE #den +i")
    await ana.expect(r"^:nexus 400 ana MODE :#den is public: a room's privacy is chosen when")
    await bob.send("MODE #den +i")
    await bob.expect(r"^:nexus 482 bob #den :")
    await ana.send("MODE #den -i", "MODE #den")
    assert (await ana.until(r" 324 ana #den "))[-1] == ":nexus 324 ana #den +nt"
    cyd = await irc.running.user("cyd")
    await cyd.ok("create", room="vault", private=True)
    await cyd.ok("invite", room="vault", username="ana")
    await ana.send("JOIN #vault")
    await ana.expect(r" 366 ana #vault ")
    await cyd.ok("op", room="vault", username="ana")
    await ana.send("MODE #vault -i", "MODE #vault")
    lines = await ana.until(r" 324 ana #vault ")
    assert lines[-2].startswith(":nexus 400 ana MODE :#vault is private (+i): ")
    assert lines[-1] == ":nexus 324 ana #vault +int"


async def test_join_with_key_plus_i_creates_a_private_room(irc: IrcServer) -> None:
    """`JOIN #room +i` (irssi's and WeeChat's `/join #room +i`) creates a missing room
    private: +int, 473 for others; on an existing public room it says +i changes
    nothing there."""
    ana, bob = await den(irc)
    await ana.send("JOIN #hideout,#den +i,+i")
    lines = await ana.until(r" 366 ana #hideout ")
    assert any(
        line.startswith(":nexus NOTICE ana :#den already exists and is public: ") for line in lines
    )
    await ana.send("MODE #hideout")
    await ana.expect(r" 324 ana #hideout \+int$")
    await bob.send("JOIN #hideout")
    await bob.expect(r" 473 bob #hideout :")
    native = await irc.running.user("ana", register=False)
    rooms = {room["name"]: room for room in (await native.ok("rooms"))["rooms"]}
    assert rooms["hideout"]["private"] is True and rooms["den"]["private"] is False


# Every command that shows or acts on a channel (JOIN aside: a private room's
# 473 is how an invitation is asked for), `{}` for the channel.
_ABOUT_A_CHANNEL = (
    "TOPIC {}",
    "NAMES {}",
    "WHO {}",
    "MODE {}",
    "MODE {} b",
    "MODE {} q",
    "MODE {} +i",
    "MODE {} +o ana",
    "TOPIC {} :mine now",
    "KICK {} ana",
    "INVITE dan {}",
    "PRIVMSG {} :still here?",
    "PART {}",
    "CHATHISTORY LATEST {} * 5",
    "MARKREAD {}",
    "REDACT {} x.1",
    "@+draft/react=ok;+draft/reply=x.1 TAGMSG {}",
)


async def told(peer: IrcPeer, channel: str) -> list[str]:
    """What `peer` is answered to each command about `channel`, one at a time,
    with the channel named #X and the peer's nick N."""
    out: list[str] = []
    for i, command in enumerate(_ABOUT_A_CHANNEL):
        await peer.send(command.format(channel), f"PING :told{i}")
        lines = await peer.until(rf"^:nexus PONG nexus told{i}$")
        out += [
            line.replace(channel, "#X").replace(f" {peer.nick} ", " N ", 1) for line in lines[:-1]
        ]
    return out


async def secret_den(irc: IrcServer) -> tuple[IrcPeer, IrcPeer]:
    """ana owns the private #den (topic "plans"), bob is a member by invitation;
    dan has an account."""
    await irc.account("dan")
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #den +i")
    await ana.expect(r" 366 ana #den ")
    await ana.send("TOPIC #den :plans")
    await ana.expect(r" TOPIC #den :plans$")
    bob = await irc.irc_user("bob")
    await rejoin(ana, bob)
    await bob.send("TOPIC #den")
    await bob.expect(r" 332 bob #den :plans$")
    await bob.expect(r"^:nexus 333 bob #den ana!~ana@nexus \d+$")
    return ana, bob


async def rejoin(ana: IrcPeer, bob: IrcPeer) -> None:
    """ana invites bob back into #den, and he joins."""
    await ana.send("INVITE bob #den")
    await bob.expect(r"^:ana!~ana@nexus INVITE bob #den$")
    await bob.send("JOIN #den")
    await bob.expect(r" 366 bob #den ")


async def test_a_member_removed_from_a_private_channel_is_told_nothing_of_it(
    irc: IrcServer,
) -> None:
    """Kicked, banned, gone from another session of the account or with the room
    deleted, a member of a private channel forgets it: every command about it is
    answered exactly as about a channel that does not exist (no topic, members,
    modes or lists; 403 where an action is refused), as the server lists it to
    nobody outside."""
    ana, bob = await secret_den(irc)
    missing = await told(bob, "#nosuch")
    assert missing[0] == ":nexus 403 N #X :No such channel"
    await ana.send("KICK #den bob :out")
    await bob.expect(r"^:ana!~ana@nexus KICK #den bob :out$")
    assert await told(bob, "#den") == missing
    await rejoin(ana, bob)
    await ana.send("MODE #den +b bob")
    await bob.expect(r"^:ana!~ana@nexus KICK #den bob ")
    assert await told(bob, "#den") == missing
    await ana.send("MODE #den -b bob")
    await ana.expect(r" MODE #den -b bob!\*@\*$")
    await rejoin(ana, bob)
    native = await irc.running.user("bob", register=False)
    await native.ok("leave", room="den")
    await bob.expect(r"^:bob!~bob@nexus PART #den$")
    assert await told(bob, "#den") == missing
    await rejoin(ana, bob)
    owner = await irc.running.user("ana", register=False)
    await owner.ok("delete", room="den")
    await bob.expect(r"^:bob!~bob@nexus PART #den :deleted by ana$")
    assert await told(bob, "#den") == missing


async def test_a_member_kicked_from_a_public_channel_sees_it_as_anyone_outside(
    irc: IrcServer,
) -> None:
    """Kicked from a public channel, a member is answered about it as someone who
    was never in it: the topic as it is now, its members, its modes."""
    await irc.account("dan")
    ana, bob = await den(irc)
    cyd = await irc.irc_user("cyd")
    await ana.send("KICK #den bob :out", "TOPIC #den :after the kick")
    await bob.expect(r"^:ana!~ana@nexus KICK #den bob :out$")
    await ana.expect(r" TOPIC #den :after the kick$")
    outside = await told(cyd, "#den")
    assert ":nexus 332 N #X :after the kick" in outside
    assert await told(bob, "#den") == outside
