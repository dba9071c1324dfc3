"""Members over real sockets: a member stays in the channel while offline, shown
away (NAMES, WHO, WHOX, WHOIS, away-notify), never as QUIT and JOIN."""

from __future__ import annotations

from tests.irc.conftest import IrcServer


def commands(lines: list[str]) -> list[str]:
    """Each line's command, its tags and source skipped."""
    found = []
    for line in lines:
        words = line.split(" ")
        while words and words[0][:1] in ("@", ":"):
            words.pop(0)
        found.append(words[0] if words else "")
    return found


async def test_offline_author_is_listed_in_names_and_who_as_gone(irc: IrcServer) -> None:
    """A member who wrote in the room and went offline is in the burst's NAMES,
    in WHO with flag G, and WHOIS says 301 offline."""
    bob = await irc.running.user("bob")
    await bob.ok("say", room="general", text="back tomorrow")
    await bob.ok("quit")
    await irc.account("ana")
    ana = await irc.peer()
    await ana.register("ana")
    names = (await ana.expect(r" 353 ana = #general :(.*)$")).group(1).split()
    assert "bob" in names and "ana" in names
    await ana.send("WHO #general")
    rows = await ana.until(r" 315 ana #general ")
    assert ":nexus 352 ana #general ~bob nexus nexus bob G :0 bob" in rows
    assert ":nexus 352 ana #general ~ana nexus nexus ana H :0 real" in rows
    await ana.send("WHOIS bob")
    lines = await ana.until(r" 318 ana bob ")
    assert ":nexus 301 ana bob :offline" in lines


async def test_going_offline_and_back_is_away_notify_not_quit(irc: IrcServer) -> None:
    """With away-notify, a member whose last session goes is `AWAY :offline` and
    back is `AWAY`; no QUIT and no second JOIN. Without it, no line at all, and
    NAMES still lists the member."""
    notified = await irc.irc_user("ana", caps="away-notify")
    plain = await irc.irc_user("cyd")
    bob = await irc.running.user("bob")
    await notified.expect(r"^:bob!~bob@nexus JOIN #general$")
    await bob.ok("away", text="lunch")
    await notified.expect(r"^:bob!~bob@nexus AWAY :lunch$")
    await bob.close()
    await notified.expect(r"^:bob!~bob@nexus AWAY :offline: lunch$")
    bob = await irc.running.user("bob", register=False)
    await notified.expect(r"^:bob!~bob@nexus AWAY :lunch$")
    await bob.ok("away", text="")
    await notified.expect(r"^:bob!~bob@nexus AWAY$")
    await bob.close()
    await notified.expect(r"^:bob!~bob@nexus AWAY :offline$")
    await notified.send("PING :end")
    seen = notified.lines + await notified.until("PONG")
    assert "QUIT" not in commands(seen)
    assert sum(line.startswith(":bob!~bob@nexus JOIN") for line in seen) == 1
    await plain.send("NAMES #general")
    lines = await plain.until(r" 366 cyd #general ")
    assert not {"QUIT", "AWAY"} & set(commands(plain.lines))
    assert "bob" in lines[-2].split(":")[-1].split()


async def test_whox_answers_354_with_the_fields_asked(irc: IrcServer) -> None:
    """ISUPPORT has WHOX; irssi's `%tcuhnfdar,743` and WeeChat's `%cuhsnfdar`
    get 354 lines with those fields in WHOX order; a nick query with `%tna` too.
    The real name is the bio, else what the IRC client's USER said."""
    bob = await irc.running.user("bob")
    await bob.ok("bio", text="likes tea")
    await bob.ok("say", room="general", text="hi")
    await bob.ok("quit")
    await irc.account("ana")
    ana = await irc.peer()
    await ana.register("ana")
    assert any(" 005 " in line and " WHOX " in line for line in ana.lines)
    await ana.send("WHO #general %tcuhnfdar,743")
    rows = await ana.until(r" 315 ana #general ")
    assert ":nexus 354 ana 743 #general ~bob nexus bob G 0 bob :likes tea" in rows
    assert ":nexus 354 ana 743 #general ~ana nexus ana H 0 ana :real" in rows
    await ana.send("WHO #general %cuhsnfdar")
    rows = await ana.until(r" 315 ana #general ")
    assert ":nexus 354 ana #general ~bob nexus nexus bob G 0 bob :likes tea" in rows
    await ana.send("WHO bob %tna,745")
    rows = await ana.until(r" 315 ana bob ")
    assert rows[0] == ":nexus 354 ana 745 bob :bob"


async def test_whois_of_an_offline_member_with_away_text(irc: IrcServer) -> None:
    """An offline member who left an away text is 301 `offline: text`; an online one
    the text alone."""
    bob = await irc.running.user("bob")
    await bob.ok("away", text="on holiday")
    ana = await irc.irc_user("ana")
    await ana.send("WHOIS bob")
    assert ":nexus 301 ana bob :on holiday" in await ana.until(r" 318 ana bob ")
    await bob.close()
    await ana.send("WHOIS bob")
    assert ":nexus 301 ana bob :offline: on holiday" in await ana.until(r" 318 ana bob ")


async def test_a_member_who_leaves_while_offline_drops_out_of_names(irc: IrcServer) -> None:
    """NAMES asks again: a member who is no longer in the room is not listed."""
    bob = await irc.running.user("bob")
    await bob.ok("say", room="general", text="bye all")
    ana = await irc.irc_user("ana")
    await bob.ok("leave", room="general")
    await ana.expect(r"^:bob!~bob@nexus PART #general$")
    await bob.ok("quit")
    await ana.send("NAMES #general")
    names = (await ana.expect(r" 353 ana = #general :(.*)$")).group(1).split()
    assert "bob" not in names


async def test_an_offline_member_who_never_spoke_is_in_names_and_who(irc: IrcServer) -> None:
    """A member of a room who never wrote there and is offline is in the JOIN's
    NAMES, in NAMES and in WHO (flag G), as the room's `members` lists them."""
    dora = await irc.running.user("dora")
    await dora.ok("create", room="quiet")
    carl = await irc.running.user("carl")
    await carl.ok("join", room="quiet")
    await carl.ok("quit")
    ana = await irc.irc_user("ana")
    await ana.send("JOIN #quiet")
    names = (await ana.expect(r" 353 ana = #quiet :(.*)$")).group(1).split()
    assert sorted(names) == ["@dora", "ana", "carl"]
    await ana.send("NAMES #quiet")
    names = (await ana.expect(r" 353 ana = #quiet :(.*)$")).group(1).split()
    assert sorted(names) == ["@dora", "ana", "carl"]
    await ana.send("WHO #quiet")
    rows = await ana.until(r" 315 ana #quiet ")
    assert ":nexus 352 ana #quiet ~carl nexus nexus carl G :0 carl" in rows
    assert ":nexus 352 ana #quiet ~dora nexus nexus dora H@ :0 dora" in rows


async def test_names_of_a_channel_not_joined_lists_its_members_only(irc: IrcServer) -> None:
    """NAMES and WHO of a public room one is not in list its members (not the
    asker); of a private one, nothing."""
    dora = await irc.running.user("dora")
    await dora.ok("create", room="quiet")
    await dora.ok("create", room="vault", private=True)
    ana = await irc.irc_user("ana")
    await ana.send("NAMES #quiet")
    assert (await ana.expect(r" 353 ana = #quiet :(.*)$")).group(1).split() == ["@dora"]
    await ana.send("NAMES #vault")
    lines = await ana.until(r" 366 ana #vault ")
    assert not any(" 353 " in line for line in lines)
    await ana.send("WHO #vault")
    lines = await ana.until(r" 315 ana #vault ")
    assert not any(" 352 " in line for line in lines)


async def test_joins_sent_together_each_get_their_names(irc: IrcServer) -> None:
    """Two JOINs in one write, the second to a room where someone is online who
    shares no other channel with the client: both channels get NAMES and the
    connection stays."""
    carol = await irc.running.user("carol")
    await carol.ok("join", room="tech")
    await carol.ok("leave", room="general")
    bob = await irc.irc_user("bob")
    await bob.send("JOIN #random\r\nJOIN #tech")
    await bob.expect(r" 366 bob #random ")
    names = (await bob.expect(r" 353 bob = #tech :(.*)$")).group(1).split()
    assert "carol" in names and "bob" in names
    await bob.expect(r" 366 bob #tech ")
    await bob.send("PING :still")
    await bob.expect(r"PONG .*still")


async def test_who_and_whois_give_username_host_server_and_real_name(
    irc_guests: IrcServer,
) -> None:
    """WHO and WHOIS give RFC 2812's fields: the username its USER sent (with
    `~`: never checked), the host, the server and the real name; a guest's
    WHOX account is 0 and its WHOIS has no 330 (nor any 320)."""
    zed = await irc_guests.peer()
    await zed.send("NICK zed", "USER zedsuser 0 * :Zed Zedson")
    await zed.expect(r" 001 zed ")
    zed.nick = "zed"
    await zed.join("#den")
    ana = await irc_guests.irc_user("ana")
    await ana.send("WHO zed")
    rows = await ana.until(r" 315 ana zed ")
    assert rows == [
        ":nexus 352 ana * ~zedsuser nexus nexus zed H :0 Zed Zedson",
        ":nexus 315 ana zed :End of /WHO list.",
    ]
    await ana.send("WHO zed %tcuihsnfdlaor,42")
    assert await ana.line() == (
        ":nexus 354 ana 42 * ~zedsuser 255.255.255.255 nexus nexus zed H 0 0 0 n/a :Zed Zedson"
    )
    await ana.until(r" 315 ana zed ")
    await ana.send("WHOIS zed")
    lines = await ana.until(r" 318 ana zed ")
    assert lines == [
        ":nexus 311 ana zed ~zedsuser nexus * :Zed Zedson",
        ":nexus 319 ana zed :@#den",
        ":nexus 312 ana zed nexus :Nexus",
        ":nexus 318 ana zed :End of /WHOIS list.",
    ]
    await zed.send("PRIVMSG #den :hi")
    await ana.join("#den")
    await ana.expect(r"^:zed!~zedsuser@nexus PRIVMSG #den :\[[\d:]+\] hi$")  # replayed on JOIN


async def test_who_with_a_mask_lists_everyone_online_it_matches(irc_guests: IrcServer) -> None:
    """WHO with a mask (`*`, `?`) matches the nicks of everyone online, with `*`
    for the channel; an invisible user (MODE nick +i) only for those who share
    a channel with it, and a WHO of its exact nick always."""
    ana = await irc_guests.irc_user("ana")
    eve = await irc_guests.guest("eve")
    await eve.send("MODE eve +i")
    await eve.expect(r"^:eve!~eve@nexus MODE eve :?\+i$")
    await eve.send("MODE eve")
    await eve.expect(r"^:nexus 221 eve :?\+i$")
    evan = await irc_guests.guest("evan")
    await ana.send("WHO ev*")
    rows = await ana.until(r" 315 ana ev\* ")
    assert rows == [
        ":nexus 352 ana * ~evan nexus nexus evan H :0 guest",
        ":nexus 315 ana ev* :End of /WHO list.",
    ]
    await ana.send("WHO eve")
    assert (await ana.line()).startswith(":nexus 352 ana * ~eve nexus nexus eve H ")
    await ana.until(" 315 ")
    await eve.join("#quiet")
    await ana.join("#quiet")
    await ana.send("WHO ev?")
    assert len(await ana.until(r" 315 ana ev\? ")) == 2  # eve and evan
    await ana.send("WHO *")
    names = [line.split()[7] for line in await ana.until(r" 315 ana \* ") if " 352 " in line]
    assert names == ["ana", "evan", "eve"]  # as `online` sorts them; root is offline
    await evan.send("MODE evan +x")
    await evan.expect(r"^:nexus 501 evan :Unknown MODE flag$")


async def test_whois_shows_operator_prefixes_in_channels_not_shared(irc: IrcServer) -> None:
    """WHOIS 319 lists the channels with `@` where the user is an operator, also
    those the asker is not in (it reads the room list for them)."""
    bob = await irc.irc_user("bob")
    await bob.join("#mine")
    ana = await irc.irc_user("ana")
    await ana.send("WHOIS bob")
    lines = await ana.until(r" 318 ana bob ")
    assert ":nexus 319 ana bob :#general @#mine" in lines


async def test_userhost_tells_away_and_admins(irc: IrcServer) -> None:
    """USERHOST gives `nick=+user@host`, `-` for someone away, `*` for a server
    admin; offline or unknown nicks are left out."""
    ana = await irc.irc_user("ana")
    bob = await irc.irc_user("bob")
    await irc.account("carl")
    await bob.send("AWAY :lunch")
    await bob.expect(" 306 ")
    root = await irc.peer()
    await root.register("root")
    await ana.send("USERHOST ana bob root carl nobody")
    await ana.expect(r"^:nexus 302 ana :ana=\+~ana@nexus bob=-~bob@nexus root\*=\+~root@nexus$")


async def test_someone_away_who_joins_is_told_away(irc: IrcServer) -> None:
    """away-notify: a user who joins while away is followed by their AWAY, for
    a nick not seen before (asked with whois) and one seen in another channel."""
    ana = await irc.irc_user("ana", caps="away-notify")
    await ana.join("#den")
    native = await irc.running.user("bob")
    await native.ok("away", text="brb")
    await ana.expect(r"^:bob!~bob@nexus JOIN #general$")
    await ana.expect(r"^:bob!~bob@nexus AWAY :brb$")
    await native.ok("join", room="den")
    await ana.expect(r"^:bob!~bob@nexus JOIN #den$")
    assert await ana.line() == ":bob!~bob@nexus AWAY :brb"
