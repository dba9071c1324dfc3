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
    await ana.expect(r"^:bob!bob@nexus JOIN #den$")
    return ana, bob


async def test_op_and_deop_show_as_mode_o(irc: IrcServer) -> None:
    """MODE +o makes a member a moderator (everyone sees MODE +o, NAMES shows @);
    -o takes it back; a member without the right gets 482."""
    ana, bob = await den(irc)
    await bob.send("MODE #den +o bob")
    await bob.expect(r" 482 bob #den ")
    await ana.send("MODE #den +o bob")
    await bob.expect(r"^:ana!ana@nexus MODE #den \+o bob$")
    await ana.expect(r"^:ana!ana@nexus MODE #den \+o bob$")
    await bob.send("NAMES #den")
    names = (await bob.expect(r" 353 bob = #den :(.*)$")).group(1).split()
    assert sorted(names) == ["@ana", "@bob"]
    await ana.send("MODE #den -o bob")
    await bob.expect(r"^:ana!ana@nexus MODE #den -o bob$")


async def test_kick_removes_a_member(irc: IrcServer) -> None:
    """KICK with a reason reaches the channel; the kicked member can no longer speak
    there (404); kicking someone not in the channel is 441."""
    ana, bob = await den(irc)
    await ana.send("KICK #den bob :calm down")
    await bob.expect(r"^:ana!ana@nexus KICK #den bob :calm down$")
    await ana.expect(r"^:ana!ana@nexus KICK #den bob :calm down$")
    await bob.send("PRIVMSG #den :hello?")
    await bob.expect(r" 404 bob #den ")
    await ana.send("KICK #den bob")
    await ana.expect(r" 441 ana bob #den ")


async def test_ban_keeps_out_and_lists_until_unban(irc: IrcServer) -> None:
    """MODE +b kicks and bans (474 on JOIN), MODE b lists the ban, -b lifts it."""
    ana, bob = await den(irc)
    await ana.send("MODE #den +b bob!*@*")
    await bob.expect(r"^:ana!ana@nexus MODE #den \+b bob!\*@\*$")
    await bob.expect(r"^:ana!ana@nexus KICK #den bob :")
    await bob.send("JOIN #den")
    await bob.expect(r" 474 bob #den ")
    await ana.send("MODE #den b")
    await ana.expect(r" 367 ana #den bob!\*@\* ana :?\d+$")
    await ana.expect(r" 368 ana #den ")
    await ana.send("MODE #den -b bob")
    await ana.expect(r"^:ana!ana@nexus MODE #den -b bob!\*@\*$")
    await bob.send("JOIN #den")
    await bob.expect(r"^:bob!bob@nexus JOIN #den$")


async def test_mute_is_mode_q_and_refuses_with_404(irc: IrcServer) -> None:
    """MODE +q mutes a member (PRIVMSG is 404), MODE q lists them, -q lifts it."""
    ana, bob = await den(irc)
    await ana.send("MODE #den +q bob")
    await bob.expect(r"^:ana!ana@nexus MODE #den \+q bob$")
    await bob.send("PRIVMSG #den :can I talk?")
    await bob.expect(r" 404 bob #den :Cannot send to channel")
    await ana.send("MODE #den q")
    await ana.expect(r" 728 ana #den q :?bob!\*@\*$")
    await ana.expect(r" 729 ana #den q ")
    await ana.send("MODE #den -q bob")
    await bob.expect(r"^:ana!ana@nexus MODE #den -q bob$")
    await bob.send("PRIVMSG #den :thanks")
    await ana.expect(r":bob!bob@nexus PRIVMSG #den :thanks$")


async def test_private_room_needs_an_invite(irc: IrcServer) -> None:
    """A private room is +i: JOIN is 473 until an INVITE (from a native member or
    over IRC, answered 341) arrives as INVITE."""
    cyd = await irc.running.user("cyd")
    await cyd.ok("create", room="vault", private=True)
    bob = await irc.irc_user("bob")
    await bob.send("JOIN #vault")
    await bob.expect(r" 473 bob #vault ")
    await cyd.ok("invite", room="vault", username="bob")
    await bob.expect(r"^:cyd!cyd@nexus INVITE bob #vault$")
    await bob.send("JOIN #vault")
    await bob.expect(r" 366 bob #vault ")
    await bob.send("MODE #vault")
    await bob.expect(r" 324 bob #vault \+int$")
    dan = await irc.irc_user("dan")
    await bob.send("INVITE dan #vault")
    await bob.expect(r" 341 bob dan :?#vault$")
    await dan.expect(r"^:bob!bob@nexus INVITE dan #vault$")


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
