"""Defects a new user hit, each pinned through the Application driven by a pipe (the ones only a
real terminal shows are in test_e2e_tmux.py)."""

from __future__ import annotations

import asyncio

from nexus.client.layout import header
from nexus.client.session import BACKOFF, next_delay
from nexus.client.state import ChatState
from tests.client.conftest import END, PAGE_UP, room_info, until


async def _unread_at_login(connect, name: str) -> dict[str, int]:
    _, login = await connect(name, register=False)
    return login["unread"]["dms"]


async def _settled(driver) -> None:
    """Waits until the read positions are sent (a moment after they move) and every
    request the client sent before now has been answered."""
    await until(lambda: all(b.synced_seq >= b.read_seq for b in driver.state.buffers))
    count = len(driver.lines())
    driver.type("/ping\r")
    await until(lambda: len(driver.lines()) > count and "pong" in driver.lines()[-1])


async def test_dms_shown_on_screen_are_not_announced_again_at_the_next_login(chat, connect):
    """A DM that arrived with its conversation on screen, or was looked at later, is read."""
    ana = await chat()
    me = ana.state.me
    bob, bob_login = await connect()
    carol, carol_login = await connect()
    bob_name, carol_name = bob_login["user"]["username"], carol_login["user"]["username"]
    ana.type(f"/query {bob_name}\r")
    await until(lambda: ana.state.current is not None and ana.state.current.kind == "dm")
    await bob.request("dm", to=me, text="seen live")
    await ana.shows("seen live")
    await carol.request("dm", to=me, text="not looked at yet")
    buffer = await until(lambda: ana.state.dms.get(carol_name.casefold()))
    await until(lambda: buffer.unread == 1)
    await _settled(ana)
    assert await _unread_at_login(connect, me) == {carol_name: 1}
    ana.type("\x1b3")  # Alt-3: carol's conversation
    await until(lambda: ana.state.current is buffer)
    await _settled(ana)
    assert await _unread_at_login(connect, me) == {}


async def test_rate_limited_text_waits_and_goes_out_in_order(start_server, chat, connect):
    """Typed faster than the flood limit: every line still arrives, in the order typed."""
    limited = await start_server(rate_limit=True)
    ana = await chat(port=limited.port)
    ana.type("".join(f"line {i}\r" for i in range(45)))
    bob, _ = await connect(port=limited.port)

    async def said() -> list[str]:
        page = await bob.request("history", room="general", limit=100)
        return [m["text"] for m in page["messages"]]

    for _ in range(100):
        if len(await said()) >= 45:
            break
        await asyncio.sleep(0.1)
    assert await said() == [f"line {i}" for i in range(45)]
    assert any("sending too fast" in line for line in ana.lines())


async def test_text_refused_as_too_long_comes_back_to_the_input_line(chat):
    """`too_long` is explained and the text is back on the input line, ready to shorten."""
    ana = await chat()
    ana.type("x" * 4001 + "\r")
    line = await ana.shows("too_long")
    assert "the text is back in the input line" in line
    await until(lambda: ana.app.input.text == "x" * 4001)


async def test_a_dm_typed_offline_is_queued_and_sent_after_the_reconnect(chat, connect, proxy):
    """/dm while the link is down waits in the outbox like room text; nothing is lost."""
    ana = await chat(port=proxy.port, backoff=(0.05, 0.2))
    bob, reply = await connect()
    await proxy.cut()
    await until(lambda: "offline" in ana.state.connection)
    ana.type(f"/dm {reply['user']['username']} written offline\r")
    await ana.shows(f"queued for {reply['user']['username']}")
    await proxy.mend()
    await until(lambda: ana.state.connected, what="reconnected")

    async def delivered() -> list[str]:
        page = await bob.request("dms", with_=ana.state.me)
        return [m["text"] for m in page["messages"]]

    for _ in range(50):  # the outbox sends once the rooms are rejoined, just after
        if await delivered():
            break
        await asyncio.sleep(0.1)
    assert await delivered() == ["written offline"]


def test_backoff_after_a_12_second_outage_retries_within_a_few_seconds():
    """The waits grow by half up to 10 s: a server back after 12 s is tried again within 5 s."""
    waits, delay = [], BACKOFF[0]
    while sum(waits) < 12:
        waits.append(delay)
        delay = next_delay(delay)
    assert sum(waits) - 12 < 5
    assert max(waits) <= BACKOFF[1] == 10


async def test_reconnect_retries_at_once(chat, proxy):
    """/reconnect ends the wait for the next attempt: back online long before it was due."""
    ana = await chat(port=proxy.port, backoff=(30.0, 30.0))
    await proxy.cut()
    await until(lambda: "retrying in 30 s" in ana.state.connection)
    await proxy.mend()
    ana.type("/reconnect\r")
    await until(lambda: ana.state.connected, timeout=5, what="reconnected at once")


async def test_end_jumps_to_the_newest_line(chat, connect):
    """End on an empty input line brings a scrolled pane back to the bottom."""
    ana = await chat()
    bob, _ = await connect()
    for i in range(60):
        await bob.request("say", room="general", text=f"line {i}")
    await ana.shows("line 59")
    ana.type(PAGE_UP + PAGE_UP)
    await until(lambda: ana.state.pane.scroll > 0)
    ana.type(END)
    await until(lambda: ana.state.pane.scroll == 0)


async def test_help_says_what_the_rooms_star_means(chat):
    """/help rooms and the table both say `*` marks the rooms you are in."""
    ana = await chat()
    ana.type("/help rooms\r")
    await ana.shows("* marks the ones you are in")


def test_a_long_topic_is_cut_with_an_ellipsis():
    """The header keeps to its width and shows that the topic goes on."""
    state = ChatState("ana", "x")
    state.add_room(room_info("tech", "a very long topic " * 10))
    state.switch("tech")
    row = "".join(text for _, text, *_ in header(state, 40))
    assert len(row) == 40 and row.endswith("…")


async def test_topic_can_be_cleared_and_shown(chat):
    """/topic -delete clears the topic; /topic alone shows it."""
    ana = await chat()
    ana.type("/create den warm and cosy\r")
    await until(lambda: ana.state.room == "den")
    ana.type("/topic\r")
    await ana.shows("topic of #den: warm and cosy")
    ana.type("/topic -delete\r")
    await ana.shows("cleared the topic of #den")
    assert ana.state.rooms["den"].topic == ""


async def test_bio_without_text_shows_it_and_keeps_it(chat, connect):
    """/bio alone shows the bio instead of clearing it; /bio -delete clears."""
    ana = await chat()
    ana.type("/bio tea drinker\r")
    await ana.shows("bio updated")
    ana.type("/bio\r")
    await ana.shows("your bio: tea drinker")
    bob, _ = await connect()
    profile = await bob.request("whois", username=ana.state.me)
    assert profile["user"]["bio"] == "tea drinker"
    ana.type("/bio -delete\r")
    await ana.shows("bio cleared")


def _said_in(buffer, words: str) -> list[str]:
    return [e.plain for e in buffer.lines.entries if words in e.plain]


async def test_deleting_a_room_says_so_once(chat):
    """/delete shows one line, `you deleted #secret`: the event the server sends before its
    reply and the command's own confirmation are not both shown."""
    ana = await chat()
    ana.type("/create secret\r")
    await until(lambda: ana.state.room == "secret")
    ana.type("/delete secret\r")
    await until(lambda: "secret" not in ana.state.rooms)
    await _settled(ana)
    assert _said_in(ana.state.current, "deleted #secret") == [
        next(line for line in ana.lines() if line.endswith("you deleted #secret"))
    ]


async def test_a_ban_shows_one_line_whether_or_not_the_user_was_kicked_first(chat):
    """Banning a member: the room's `was banned ... by` line only. Banning someone kicked
    before, and unbanning: one line each, on the screen of the one who did it."""
    from tests.client.test_moderation import _room_with

    ana, bob = await _room_with(chat)
    him, den = bob.state.me, ana.state.rooms["den"]
    ana.type(f"/ban {him} spam\r")
    await until(lambda: "den" not in bob.state.rooms)
    await _settled(ana)
    assert len(_said_in(den, "banned from #den")) == 1
    ana.type(f"/unban {him}\r")
    await _settled(ana)
    assert len(_said_in(den, "no longer banned")) == 1
    bob.type("/join den\r")
    await until(lambda: him.casefold() in den.members)
    ana.type(f"/kick {him} out\r")
    await until(lambda: "den" not in bob.state.rooms)
    ana.type(f"/ban {him} and stay out\r")
    await _settled(ana)
    assert len(_said_in(den, "and stay out")) == 1
    ana.type(f"/unban {him}\r")
    await _settled(ana)
    assert len(_said_in(den, "no longer banned")) == 2


async def test_one_missed_message_is_said_in_the_singular(chat, connect, proxy):
    """After a reconnect that filled in a single message: `1 missed message`."""
    ana = await chat(port=proxy.port, backoff=(0.05, 0.2))
    bob, _ = await connect()
    await bob.request("join", room="general")
    await proxy.cut()
    await until(lambda: "offline" in ana.state.connection)
    await bob.request("say", room="general", text="while you were out")
    await proxy.mend()
    line = await ana.shows("reconnected:")
    assert line.endswith("reconnected: 1 missed message filled in")


async def test_after_clear_the_date_rule_goes_above_the_first_table(chat):
    """/clear, then /rooms: the day's rule is at the top, above the table, not under it."""
    ana = await chat()
    ana.type("/clear\r")
    await until(lambda: not ana.state.pane.entries)
    ana.type("/rooms\r")
    await _settled(ana)
    days = [i for i, entry in enumerate(ana.state.pane.entries) if entry.day is not None]
    assert days == [0], ana.screen()


async def test_a_bot_that_sends_and_goes_leaves_no_presence_lines(chat, connect, server):
    """Each `nexus-chat send` of a bot logs in, says its line and logs out within a
    second: the room shows its messages, not an online and an offline line each run."""
    from tests.client.test_script import at
    from tests.client.test_script import chat as script

    ana = await chat()
    bot, login = await connect()
    name = login["user"]["username"]
    await bot.quit()
    general = ana.state.rooms["general"]
    for run in range(2):
        args = ("--user", name, "--room", "general", f"run {run}")
        code, _, err = await script("send", *at(server), *args)
        assert code == 0, err
        await ana.shows(f"run {run}")
        await until(lambda: name not in ana.state.online, what="the bot offline")
    await _settled(ana)
    shown = [e.plain for e in general.lines.entries if not e.folded]
    assert not [line for line in shown if f"{name} is o" in line], "\n".join(shown)
    ana.type("\x1b=")  # Alt-=: the folded lines are still there to see
    await until(lambda: ana.state.show_folded)
    assert any(f"{name} is online" in e.plain for e in general.lines.entries)


async def test_mentions_lists_what_the_screen_highlights(chat, connect):
    """A message naming me without an @ is highlighted on screen; /mentions lists it too."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("join", room="general")
    await bob.request("say", room="general", text=f"thanks {ana.state.me}, that helped")
    entry = await until(
        lambda: next((e for e in ana.state.current.messages() if "helped" in e.text), None)
    )
    assert entry.highlight
    count = len(ana.state.pane.entries)
    ana.type("/mentions\r")
    await _settled(ana)
    answer = list(ana.state.pane.entries)[count:]
    rows = ["".join(t for _, t in row) for e in answer for row in e.rows(100)]
    assert any("that helped" in row for row in rows), "\n".join(rows)
