"""Protocol 2's moderation through the Application (pipe input) against a real server:
/op /deop /kick /ban /unban /bans /mute /unmute /invite /admin /suspend /unsuspend,
/create --private, and how roles, kicks, mutes and invitations show.

The first account registered on a test's fresh store is an admin: `ana` below."""

from __future__ import annotations

import asyncio

from rich.table import Table

from nexus.client import commands
from nexus.client.layout import header, side_panel
from nexus.client.servers import Server
from nexus.client.session import ChatSession
from nexus.client.state import ChatState
from tests.client.conftest import profile, room_info, until
from tests.client.test_cli import run_cli
from tests.conftest import PASSWORD


def _side(driver) -> str:
    return "".join(text for _, text, *_ in side_panel(driver.state))


async def _room_with(chat, topic: str = "", private: bool = False):
    """ana (the admin, owning #den) and bob, both in #den with it on screen."""
    ana = await chat()
    bob = await chat()
    flag = " --private" if private else ""
    ana.type(f"/create den {topic}{flag}\r")
    await until(lambda: "den" in ana.state.rooms, what="#den created")
    if private:
        ana.type(f"/invite {bob.state.me}\r")
        await until(lambda: "den" in bob.state.known_rooms, what="invited")
    bob.type("/join den\r")
    await until(lambda: bob.state.room == "den", what="bob in #den")
    await until(lambda: bob.state.me.casefold() in ana.state.rooms["den"].members)
    return ana, bob


async def test_kick_closes_the_buffer_and_says_who_and_why(chat):
    """/kick bob flooding: bob's #den closes and he reads who kicked him and why; the
    room sees the same line."""
    ana, bob = await _room_with(chat)
    ana.type(f"/kick {bob.state.me} flooding the room\r")
    await until(lambda: "den" not in bob.state.rooms, what="bob's #den closed")
    line = await bob.shows("you were kicked from #den by")
    assert ana.state.me in line and "flooding the room" in line
    seen = await until(
        lambda: next(
            (e.plain for e in ana.state.rooms["den"].lines.entries if "kicked" in e.plain), None
        )
    )
    assert f"{bob.state.me} was kicked from #den by {ana.state.me}: flooding the room" in seen
    assert bob.state.me.casefold() not in ana.state.rooms["den"].members


async def test_ban_keeps_a_user_out_until_unban_and_bans_lists_it(chat):
    """/ban shows `you were banned`, a join is refused as `banned`, /bans lists who, by
    whom and why, and /unban lets them back."""
    ana, bob = await _room_with(chat)
    ana.type(f"/ban #den {bob.state.me} spam\r")
    await bob.shows("you were banned from #den by")
    bob.type("/join den\r")
    await bob.shows("(banned)")
    count = len(ana.state.pane.entries)
    ana.type("/bans\r")
    table = await until(
        lambda: next(
            (
                e.renderable
                for e in list(ana.state.pane.entries)[count:]
                if isinstance(e.renderable, Table)
            ),
            None,
        )
    )
    assert table.row_count == 1 and table.title == "Banned from #den"
    ana.type(f"/unban {bob.state.me}\r")
    await ana.shows(f"{bob.state.me} is no longer banned from #den")
    bob.type("/join den\r")
    await until(lambda: bob.state.room == "den", what="bob back in #den")


async def test_op_and_deop_show_a_line_and_the_moderator_mark(chat):
    """/op marks bob `@` in the people list and says who made him a moderator; /deop
    takes the mark away; the owner is `~`, and `&` marks an admin who is not the owner."""
    ana, bob = await _room_with(chat)
    me, him = ana.state.me, bob.state.me
    ana.type(f"/op {him}\r")
    await bob.shows(f"{me} made {him} a moderator of #den")
    bob.type("/names\r")  # who else is in #den: the `online` reply says
    await until(lambda: f"@{him}" in _side(bob) and f"~{me}" in _side(bob), what="marks")
    ana.type(f"/deop {him}\r")
    await bob.shows(f"{me} took the moderator role of {him} in #den")
    assert f"@{him}" not in _side(bob)


async def test_mute_dims_the_member_and_refuses_what_they_say(chat):
    """/mute: bob is listed `(muted)` and his words are refused with `muted`; /unmute
    lets him speak again."""
    ana, bob = await _room_with(chat)
    him = bob.state.me
    ana.type(f"/mute {him}\r")
    await bob.shows(f"{ana.state.me} muted you in #den")
    await until(lambda: f"{him} (muted)" in _side(ana), what="muted in the list")
    bob.type("hello?\r")
    await bob.shows("(muted)")
    ana.type(f"/unmute {him}\r")
    await bob.shows(f"{ana.state.me} unmuted you in #den")
    assert f"{him} (muted)" not in _side(ana)


async def test_private_room_is_marked_and_an_invitation_offers_the_join(chat):
    """/create den talk --private makes an invitation-only room, marked in the header
    and the buffer list; the invitee reads `ana invited you to #den (private): /join den`."""
    ana = await chat()
    bob = await chat()
    ana.type("/create den quiet talk --private\r")
    await until(lambda: "den" in ana.state.rooms, what="#den created")
    assert ana.state.rooms["den"].private and ana.state.rooms["den"].topic == "quiet talk"
    assert "(private)" in "".join(t for _, t, *_ in header(ana.state)) and "#den*" in _side(ana)
    bob.type("/join den\r")
    await bob.shows("(invite_only)")
    ana.type(f"/invite {bob.state.me}\r")
    await bob.shows(f"{ana.state.me} invited you to #den (private): /join den")
    bob.type("/join den\r")
    await until(lambda: bob.state.room == "den", what="bob in #den")


async def test_an_invitation_made_while_away_shows_at_login(chat, server):
    """Invited while logged out, bob reads `you are invited to #den (private):
    /join den` when his client logs in, and the join works."""
    ana = await chat()
    ana.type("/create den --private\r")
    await until(lambda: "den" in ana.state.rooms, what="#den created")
    account = await server.user("bob")
    await account.close()
    ana.type("/invite bob\r")
    await ana.shows("bob was invited to #den")
    bob = await chat("bob", register=False)
    await bob.shows("you are invited to #den (private): /join den")
    bob.type("/join den\r")
    await until(lambda: bob.state.room == "den", what="bob in #den")


async def test_suspend_ends_the_session_and_the_client_stops_retrying(chat, server):
    """An admin's /suspend ends carl's session with the reason and carl's client does not
    reconnect (a login would be `suspended`); /unsuspend lifts it."""
    ana = await chat()
    carl = await chat(backoff=(0.05, 0.05))
    ana.type(f"/suspend {carl.state.me} spam bot\r")
    await ana.shows(f"{carl.state.me} is suspended: spam bot")
    line = await carl.shows("the server ended this session")
    assert "spam bot" in line and "(suspended)" in line
    await until(lambda: carl.state.connection.startswith("logged out"))
    # A fresh start while suspended: refused once, then no retrying.
    state = ChatState(carl.state.me, "test")
    session = ChatSession(state, [Server(server.host, server.port)], PASSWORD, backoff=(0.05, 0.05))
    await asyncio.wait_for(session.run(), 5)
    assert any("suspended" in e.plain for e in state.pane.entries) and not state.connected
    ana.type(f"/unsuspend {carl.state.me}\r")
    await ana.shows(f"{carl.state.me} is no longer suspended")


async def test_admin_grants_and_takes_the_role_and_others_are_refused(chat):
    """/admin bob makes bob an admin, `/admin bob off` takes it back; bob (no admin)
    is refused /suspend with `not_allowed`."""
    ana = await chat()
    bob = await chat()
    bob.type(f"/suspend {ana.state.me}\r")
    await bob.shows("(not_allowed)")
    ana.type(f"/admin {bob.state.me}\r")
    await ana.shows(f"{bob.state.me} is now an admin")
    ana.type(f"/admin {bob.state.me} off\r")
    await ana.shows(f"{bob.state.me} is no longer an admin")


def _state() -> ChatState:
    """ana in #den (owned by mia, bob a moderator, carl muted), no server."""
    state = ChatState("ana", "localhost:9999")
    info = room_info("den", owner="mia")
    info.update(private=True, moderators=["bob"], muted=["carl"])
    state.add_room(info)
    state.set_online([profile(n, ["den"]) for n in ("ana", "mia", "bob", "carl", "root")])
    state.admins.add("root")
    state.switch("den")
    return state


def test_every_moderation_command_is_in_the_table_with_help():
    """/help and Tab completion know each moderation command; `/kick #d` completes the
    room, the next word a user."""
    state = _state()
    names = "op deop kick ban unban bans mute unmute invite admin suspend unsuspend"
    for name in names.split():
        assert commands.COMMANDS[name].help and commands.COMMANDS[name].synopsis
    assert commands.completions("/unb", state)[1] == ["/unban"]
    assert commands.completions("/kick #d", state) == ("#d", ["#den"])
    assert commands.completions("/kick #den b", state)[1] == ["bob"]


def test_people_list_marks_roles_and_dims_the_muted():
    """`~` the owner, `&` an admin, `@` a moderator; a muted member says `(muted)` and is
    dim; a private room has `*` in the buffer list and `(private)` in the header."""
    state = _state()
    rows = [(style, text) for style, text, *_ in side_panel(state)]
    text = "".join(t for _, t in rows)
    assert "~mia" in text and "&root" in text and "@bob" in text and "carl (muted)" in text
    assert ("class:side.away", "carl (muted)") in rows and "#den*" in text
    assert "(private)" in "".join(t for _, t, *_ in header(state))
    assert state.mark(state.rooms["den"], "ana") == ""


def test_events_update_roles_and_read_as_lines():
    """room_updated names who was made or unmade a moderator; kicked/muted update the
    room and say by whom and why; my own kick closes the buffer with the reason; an
    invitation alerts and offers the /join."""
    state = _state()
    den = state.rooms["den"]
    info = room_info("den", owner="mia")
    info.update(private=True, moderators=["carl"], muted=["carl"])
    state.apply({"event": "room_updated", "room": info, "by": "mia"})
    lines = [e.plain for e in den.lines.entries]
    assert any("mia made carl a moderator of #den" in line for line in lines)
    assert any("mia took the moderator role of bob in #den" in line for line in lines)
    state.apply({"event": "muted", "room": "den", "user": "carl", "by": "mia", "on": False})
    assert "carl" not in den.muted and "mia unmuted carl in #den" in den.lines.entries[-1].plain
    kick = {"event": "kicked", "room": "den", "user": "bob", "by": "mia", "reason": "",
            "banned": True}  # fmt: skip
    state.apply(kick)  # type: ignore[arg-type]
    assert "bob was banned from #den by mia (no reason given)" in den.lines.entries[-1].plain
    assert "bob" not in den.members
    state.apply({**kick, "user": "ana", "reason": "spam", "banned": False})  # type: ignore[typeddict-item]
    assert "den" not in state.rooms
    assert "you were kicked from #den by mia: spam" in state.pane.entries[-1].plain
    alert = state.apply({"event": "invited", "room": room_info("den"), "by": "mia"})
    assert alert is not None and alert.sender == "mia"
    assert "mia invited you to #den: /join den" in state.pane.entries[-1].plain


def test_a_ban_or_unban_by_other_staff_reads_as_a_line():
    """`banned` (a ban of someone not in the room, or an unban, by another of
    its staff) shows in the room's buffer, or where I am if I am not in it."""
    state = _state()
    den = state.rooms["den"]
    ban = {"event": "banned", "room": "den", "user": "bob", "by": "root", "reason": "",
           "on": True}  # fmt: skip
    state.apply(ban)  # type: ignore[arg-type]
    assert "root banned bob from #den (no reason given)" in den.lines.entries[-1].plain
    state.apply({**ban, "on": False, "by": "mia"})  # type: ignore[typeddict-item]
    assert "mia unbanned bob in #den" in den.lines.entries[-1].plain
    state.apply({**ban, "room": "vault", "reason": "spam"})  # type: ignore[typeddict-item]
    assert "root banned bob from #vault: spam" in state.pane.entries[-1].plain


async def test_a_suspended_account_is_told_why_at_login_and_exits(server, connect):
    """nexus-chat for a suspended account: one line saying so, exit 1."""
    root, _ = await connect()  # the first account: an admin
    _, login = await connect()
    name = login["user"]["username"]
    await root.request("suspend", username=name, reason="spam bot")
    code, _, err = await run_cli(server.host, str(server.port), "--user", name, password=PASSWORD)
    assert code == 1 and err.count("\n") == 1
    assert err == "nexus-chat: login failed: this account is suspended\n"
