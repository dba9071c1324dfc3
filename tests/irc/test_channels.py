"""Channels and people over real sockets: JOIN, PART, TOPIC, NAMES, LIST, WHO, WHOIS, AWAY, MODE."""

from __future__ import annotations

import re

from tests.irc.conftest import IrcServer


async def test_join_creates_a_missing_channel_with_its_joiner_as_operator(irc: IrcServer) -> None:
    """JOIN of a missing channel creates the room; its creator is shown as @ in
    NAMES. With no topic, the JOIN says none (TOPIC answers 331), as servers do."""
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #Projects")
    lines = await ana.until(r" 366 ana #projects ")
    assert lines == [
        ":ana!~ana@nexus JOIN #projects",
        ":nexus 353 ana = #projects :@ana",
        ":nexus 366 ana #projects :End of /NAMES list.",
    ]
    await ana.send("TOPIC #projects")
    assert await ana.line() == ":nexus 331 ana #projects :No topic is set"
    native = await irc.running.user("bob")
    rooms = await native.ok("rooms")
    assert "projects" in [room["name"] for room in rooms["rooms"]]


async def test_others_see_join_and_part_but_no_quit(irc: IrcServer) -> None:
    """Other members see a JOIN and a PART with its reason; a member whose last
    session goes stays a member: no QUIT, still in NAMES."""
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #tech")
    await ana.expect(r" 366 ana #tech ")
    bob = await irc.irc_user("bob")
    await ana.expect(r"^:bob!~bob@nexus JOIN #general$")
    await bob.send("JOIN #tech")
    await ana.expect(r"^:bob!~bob@nexus JOIN #tech$")
    await bob.send("PART #tech :see you")
    await bob.expect(r"^:bob!~bob@nexus PART #tech :see you$")
    await ana.expect(r"^:bob!~bob@nexus PART #tech")
    await bob.send("QUIT")
    await bob.closed()
    await ana.send("NAMES #general")
    lines = await ana.until(r" 366 ana #general ")
    assert not any(" QUIT " in line for line in lines)
    assert any(line.startswith(":nexus 353 ana = #general :") and " bob" in line for line in lines)


async def test_part_of_a_channel_not_joined_is_442(irc: IrcServer) -> None:
    """PART of a room one is not in answers 442; of a missing one 403."""
    ana = await irc.irc_user("ana")
    await ana.send("PART #tech", "PART #nowhere", "PART nochannel")
    await ana.expect(r" 442 ana #tech :")
    await ana.expect(r" 403 ana #nowhere :")
    await ana.expect(r" 403 ana nochannel :")


async def test_topic_set_by_the_owner_reaches_members_and_queries(irc: IrcServer) -> None:
    """The owner's TOPIC reaches members (IRC and native); a non-owner gets 482."""
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #plans")
    await ana.expect(r" 366 ana #plans ")
    bob = await irc.irc_user("bob")
    await bob.send("JOIN #plans")
    await bob.expect(r" 366 bob #plans ")
    native = await irc.running.user("cyd")
    await native.ok("join", room="plans")
    await ana.send("TOPIC #plans :Ship it \x02friday\x02")
    await bob.expect(r"^:ana!~ana@nexus TOPIC #plans :Ship it friday$")
    event = await native.event("topic", room="plans")
    assert event["topic"] == "Ship it friday" and event["by"] == "ana"
    await bob.send("TOPIC #plans")
    await bob.expect(r" 332 bob #plans :Ship it friday$")
    await bob.send("TOPIC #plans :mine now")
    await bob.expect(r" 482 bob #plans :")


async def test_names_lists_every_member_with_userhost_in_names(irc: IrcServer) -> None:
    """NAMES lists the members, the offline admin too; with userhost-in-names
    as nick!user@host."""
    ana = await irc.irc_user("ana", caps="userhost-in-names")
    await irc.irc_user("bob")
    await ana.send("NAMES #general")
    names = (await ana.expect(r" 353 ana = #general :(.*)$")).group(1).split()
    assert sorted(names) == ["@root!~root@nexus", "ana!~ana@nexus", "bob!~bob@nexus"]
    await ana.expect(r" 366 ana #general ")


async def test_list_shows_every_room_with_its_topic(irc: IrcServer) -> None:
    """LIST shows 321, a 322 per room (its members, online or not, its modes and
    topic) and 323."""
    ana = await irc.irc_user("ana")
    native = await irc.running.user("bob")
    await native.ok("create", room="books", topic="what we read")
    await native.ok("create", room="vault", topic="shh", private=True)
    await native.ok("invite", room="vault", username="ana")
    await native.ok("quit")
    await ana.send("JOIN #vault")
    await ana.expect(r" 366 ana #vault ")
    await ana.send("LIST")
    lines = await ana.until(r" 323 ana ")
    assert any(" 321 ana Channel " in line for line in lines)
    assert ":nexus 322 ana #books 1 :[+nt] what we read" in lines
    assert ":nexus 322 ana #vault 2 :[+int] shh" in lines
    assert any(" 322 ana #general " in line for line in lines)


async def test_who_and_whois_show_the_bio_and_away(irc: IrcServer) -> None:
    """WHO #room lists members (G when away); WHOIS shows bio, channels, away, account."""
    ana = await irc.irc_user("ana")
    native = await irc.running.user("bob")
    await native.ok("bio", text="plays the oboe")
    await native.ok("away", text="lunch")
    await ana.send("WHO #general")
    lines = await ana.until(r" 315 ana #general ")
    assert ":nexus 352 ana #general ~bob nexus nexus bob G :0 plays the oboe" in lines
    await ana.send("WHOIS bob")
    lines = await ana.until(r" 318 ana bob ")
    assert ":nexus 311 ana bob ~bob nexus * :plays the oboe" in lines
    assert ":nexus 319 ana bob :#general" in lines
    assert ":nexus 301 ana bob :lunch" in lines
    assert ":nexus 330 ana bob bob :is logged in as" in lines
    await ana.send("WHOIS nobody")
    await ana.expect(r" 401 ana nobody :")
    await ana.expect(r" 318 ana nobody :")


async def test_away_sets_the_account_away_for_everyone(irc: IrcServer) -> None:
    """AWAY :text answers 306 and native peers see presence away; AWAY alone answers 305."""
    ana = await irc.irc_user("ana")
    native = await irc.running.user("bob")
    await ana.send("AWAY :in a meeting")
    await ana.expect(r" 306 ana :")
    event = await native.event("presence", user="ana")
    assert event["away"] == "in a meeting"
    await ana.send("AWAY")
    await ana.expect(r" 305 ana :")
    assert (await native.event("presence", user="ana"))["away"] is None


async def test_mode_shows_channel_modes_and_refuses_changes(irc: IrcServer) -> None:
    """MODE #room answers +nt, ban lists are empty, changes are refused with 472."""
    ana = await irc.irc_user("ana")
    await ana.send("MODE #general", "MODE #general b", "MODE #general +m", "MODE ana")
    await ana.expect(r" 324 ana #general \+nt$")
    await ana.expect(r" 368 ana #general :End of channel ban list")
    await ana.expect(r" 472 ana m :")
    await ana.expect(r" 221 ana :?\+")


async def test_unknown_commands_and_missing_parameters(irc: IrcServer) -> None:
    """An unknown command answers 421; one with too few parameters 461."""
    ana = await irc.irc_user("ana")
    await ana.send("FROBNICATE now", "JOIN")
    await ana.expect(r" 421 ana FROBNICATE :Unknown command")
    await ana.expect(r" 461 ana JOIN :Not enough parameters")


async def test_a_native_join_from_another_session_shows_in_irc(irc: IrcServer) -> None:
    """Joining a room from nexus-chat makes the IRC session of the same account JOIN it."""
    ana = await irc.irc_user("ana")
    native = await irc.running.user("ana", register=False)
    await native.ok("join", room="random")
    await ana.expect(r"^:ana!~ana@nexus JOIN #random$")
    await ana.expect(r" 366 ana #random ")


async def test_multi_prefix_shows_the_operator_prefix(irc: IrcServer) -> None:
    """With multi-prefix (and userhost-in-names) the owner shows once as @ in NAMES."""
    ana = await irc.irc_user("ana", caps="multi-prefix userhost-in-names")
    await ana.send("JOIN #mine")
    names = (await ana.expect(r" 353 ana = #mine :(.*)$")).group(1).split()
    assert names == ["@ana!~ana@nexus"]


async def test_join_shows_a_topic_with_who_set_it_and_none_without(irc: IrcServer) -> None:
    """JOIN of a channel with a topic shows 332 and 333 (who set it, when), one
    without a topic neither (TOPIC answers 331); `JOIN #a,#bad@name` joins #a."""
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #plans,#bad@name")
    await ana.expect(r"^:nexus 403 ana #bad@name :No such channel$")
    await ana.expect(r" 366 ana #plans ")
    await ana.send("TOPIC #plans :ship it")
    await ana.expect(r"^:ana!~ana@nexus TOPIC #plans :ship it$")
    bob = await irc.irc_user("bob")
    await bob.send("JOIN #plans")
    lines = await bob.until(r" 366 bob #plans ")
    assert lines[1] == ":nexus 332 bob #plans :ship it"
    assert re.fullmatch(r":nexus 333 bob #plans ana!~ana@nexus \d+", lines[2]), lines
    await bob.send("JOIN #empty")
    lines = await bob.until(r" 366 bob #empty ")
    assert not any(" 331 " in line or " 332 " in line for line in lines)


async def test_part_says_its_reason_to_everyone_and_answers_the_parter(irc: IrcServer) -> None:
    """PART's reason reaches the other members as given; a PART without one is
    `PART #chan` alone; the parting client always gets its PART (labeled too)."""
    ana = await irc.irc_user("ana")
    bob = await irc.irc_user("bob", caps="labeled-response batch")
    for peer in (ana, bob):
        await peer.join("#den")
    await ana.expect(r"^:bob!~bob@nexus JOIN #den$")
    await bob.send("@label=p1 PART #den :off to lunch")
    await bob.expect(r"^@label=p1 :bob!~bob@nexus PART #den :off to lunch$")
    await ana.expect(r"^:bob!~bob@nexus PART #den :off to lunch$")
    await bob.join("#den")
    await bob.send("PART #den")
    await bob.expect(r"^:bob!~bob@nexus PART #den$")
    await ana.expect(r"^:bob!~bob@nexus PART #den$")
    native = await irc.running.user("bob", register=False)
    await native.ok("join", room="den")
    await native.ok("leave", room="den")  # no reason from nexus-chat, nor a stale one
    await ana.expect(r"^:bob!~bob@nexus PART #den$")


async def test_topic_is_the_operators_and_every_channel_is_nt(irc: IrcServer) -> None:
    """Topics are set by channel operators only, so every channel is +t (and +n):
    MODE +t and +n change nothing, -t and -n are refused (472) with why; a member
    gets 482 for TOPIC; a private channel is secret (`@` in NAMES)."""
    ana = await irc.irc_user("ana")
    bob = await irc.irc_user("bob")
    await ana.join("#den")
    await bob.join("#den")
    await ana.expect(r"^:bob!~bob@nexus JOIN #den$")
    await ana.send("MODE #den +tn", "MODE #den -t", "PING :modes")
    lines = await ana.until("PONG")
    assert lines[:-1] == [
        ":nexus 472 ana t :is always set here: only channel operators set a channel's topic"
    ]
    await bob.send("TOPIC #den :mine now")
    await bob.expect(r"^:nexus 482 bob #den :You're not channel operator")
    await ana.send("JOIN #vault +i")
    names = await ana.expect(r" 353 ana (.) #vault :@ana$")
    assert names.group(1) == "@"


async def test_kick_takes_several_nicks_or_channel_and_nick_pairs(irc: IrcServer) -> None:
    """ISUPPORT TARGMAX has KICK:4: `KICK #den bob,cyd` kicks both (one KICK line
    each), `KICK #den,#den bob,cyd` pairs channels and nicks."""
    ana = await irc.irc_user("ana")
    assert any("KICK:4" in line for line in ana.lines if " 005 " in line)
    bob, cyd = await irc.irc_user("bob"), await irc.irc_user("cyd")
    for form in ("KICK #den bob,cyd :bye", "KICK #den,#den bob,cyd :bye"):
        for peer in (ana, bob, cyd):
            await peer.join("#den")
        await ana.send(form)
        await ana.expect(r"^:ana!~ana@nexus KICK #den bob :bye$")
        await ana.expect(r"^:ana!~ana@nexus KICK #den cyd :bye$")
        await ana.send("PART #den")
        await ana.expect(r" PART #den$")


async def test_invite_of_a_member_is_443(irc: IrcServer) -> None:
    """INVITE of someone already in the channel is 443, not 341."""
    ana = await irc.irc_user("ana")
    bob = await irc.irc_user("bob")
    await ana.join("#den")
    await bob.join("#den")
    await ana.send("INVITE bob #den")
    await ana.expect(r"^:nexus 443 ana bob #den :is already on channel$")
