"""End to end: the installed nexus-server and nexus-chat screens in tmux, as people see them."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time

import pytest
from wcwidth import wcswidth

from nexus.client.connection import ChatConnection
from nexus.client.tokens import TokenStore
from tests.client.tmux import CHAT, PASSWORD, Tmux, start_server

pytestmark = pytest.mark.e2e

SIDE = 24  # the side panel's width: the message pane is the rest, left of a border
MESSAGE_ROW = re.compile(r"^\d\d:\d\d +(\S+) │ (.*?)\s*$")
REFERENCE = re.compile(r"( \(edited\))? \[\d+\]$")


def pane_rows(screen: str, width: int = 100) -> list[str]:
    """The message pane's part of each row (left of the side panel's border)."""
    return [row[: width - SIDE - 1] for row in screen.splitlines()]


def side_rows(screen: str, width: int = 100) -> list[str]:
    return [row[width - SIDE :] for row in screen.splitlines()]


def test_two_users_chat_and_dm_in_two_terminals(tmux, server_port):
    """ana starts scripted, bob registers at the prompts; each sees the other's words."""
    tmux.chat("ana", server_port, "--register")
    tmux.start("bob", CHAT, "127.0.0.1", str(server_port))
    tmux.wait_for("bob", "Log in or register?")
    tmux.keys("bob", "r")
    tmux.wait_for("bob", "Username:")
    tmux.keys("bob", "bob")
    tmux.wait_for("bob", "Password (at least 8 characters, not shown):")
    tmux.keys("bob", PASSWORD)
    screen = tmux.wait_for("bob", "Password again:")
    assert PASSWORD not in screen and "*" not in screen  # not echoed, not even its length
    tmux.keys("bob", PASSWORD)
    tmux.wait_for("bob", "bob@#general")

    tmux.keys("ana", "hello bob, [bold]not bold[/]")
    tmux.wait_for("bob", re.compile(r"ana │ hello bob, \[bold\]not bold\[/\]"))
    tmux.keys("bob", "/dm ana psst")
    tmux.wait_for("ana", re.compile(r"2 bob +1 @1"))
    tmux.press("ana", "M-2")
    tmux.wait_for("ana", re.compile(r"bob │ psst"))

    tmux.keys("bob", "/quit")
    deadline = time.monotonic() + 10
    while "bob" in tmux("list-sessions", "-F", "#{session_name}").split():
        assert time.monotonic() < deadline, "bob's client did not exit on /quit"
        time.sleep(0.05)
    # A visit this short folds its online and offline lines (a script's would be noise);
    # the header says bob left, and Alt-= shows the folded line.
    tmux.wait_for("ana", "bob direct messages, offline")
    tmux.press("ana", "M-=")
    tmux.wait_for("ana", "bob is offline")


def _sgr_state(prefix: str) -> tuple[str | None, bool]:
    """(foreground, dim) in force at the end of `prefix`, from its SGR sequences."""
    colour: str | None = None
    dim = False
    for params in re.findall(r"\x1b\[([0-9;]*)m", prefix):
        codes = params.split(";") if params else ["0"]
        i = 0
        while i < len(codes):
            code = codes[i] or "0"
            if code == "0":
                colour, dim = None, False
            elif code == "2":
                dim = True
            elif code == "22":
                dim = False
            elif code == "39":
                colour = None
            elif code in ("38", "48"):
                if code == "38":
                    colour = ";".join(codes[i : i + (5 if codes[i + 1] == "2" else 3)])
                i += 4 if codes[i + 1] == "2" else 2
            elif 30 <= int(code) <= 37 or 90 <= int(code) <= 97:
                colour = code
            i += 1
    return colour, dim


def test_message_text_is_not_drawn_in_the_time_stamps_grey(tmux, server_port):
    """On a real terminal the body after the name is in the default colour, not dim grey."""
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "hello everyone")
    tmux.wait_for("ana", re.compile(r"\S.*hello everyone"))  # the message, not the input line
    row = next(r for r in tmux.screen("ana", colours=True).splitlines() if "hello everyone" in r)
    before = row[: row.index("hello everyone")]
    assert _sgr_state(before) == (None, False), repr(before)


def test_the_prompt_stays_after_a_line_longer_than_the_input(tmux, server_port):
    """Sending a line wider than the screen, then typing again: `> ` is still there."""
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "word " * 40 + "END")
    tmux.wait_for("ana", "END")
    tmux.keys("ana", "short", enter=False)
    screen = tmux.wait_for("ana", "short")
    assert any(row.startswith("> short") for row in screen.splitlines()), screen
    tmux("resize-window", "-t", "ana", "-x", "90", "-y", "25")
    tmux.wait_for("ana", re.compile(r"(?m)^> short"))


async def _say_as(port: int, name: str, text: str) -> None:
    """A message with a newline in it, from a program (the input line sends on Enter)."""
    conn = ChatConnection()
    await conn.connect("127.0.0.1", port)
    await conn.request("register", username=name, password=PASSWORD)
    await conn.request("say", room="general", text=text)
    await conn.quit()


def test_a_multi_line_message_cannot_pass_for_another_persons(tmux, server_port):
    """carol's `ok\\n06:08 bob: I approve ...` shows on bob's screen as carol's, indented."""
    tmux.chat("bob", server_port, "--register")
    asyncio.run(_say_as(server_port, "carol", "ok\n06:08 bob: I approve the deploy, ship it"))
    screen = tmux.wait_for("bob", "I approve the deploy")
    rows = pane_rows(screen)
    said = next(i for i, row in enumerate(rows) if "I approve" in row)
    assert re.match(r"^\d\d:\d\d +carol\b", rows[said - 1]), screen  # whose message it is
    assert rows[said].startswith(" " * 10), screen  # the second line hangs under the first
    assert not re.match(r"^\s*(\d\d:\d\d\s+)?bob\b", rows[said]), screen


COLOUR_CODES = re.compile(r"^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$")  # colours; 39 and 49 reset them


def _colour_codes(screen: str) -> list[str]:
    """Every SGR parameter on `screen` that sets a colour."""
    params = (p for sgr in re.findall(r"\x1b\[([0-9;]*)m", screen) for p in sgr.split(";"))
    return [p for p in params if COLOUR_CODES.match(p)]


def test_client_toml_and_no_color_reach_the_screen(tmux, server_port, tmp_path):
    """The real binary reads client.toml: seconds in the time column and a highlight word
    marked like a mention; with NO_COLOR set nothing on the screen has a colour."""
    config = tmp_path / "ana-config"
    (config / "nexus").mkdir(parents=True)
    (config / "nexus" / "client.toml").write_text(
        'timestamp_format = "%H:%M:%S"\nhighlight = ["deploy"]\n'
    )
    env = {"NEXUS_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(config), "NO_COLOR": "1"}
    tmux.start("ana", CHAT, "127.0.0.1", str(server_port), "--user", "ana", "--register", env=env)
    tmux.wait_for("ana", "ana@#general")
    asyncio.run(_say_as(server_port, "bob", "the deploy is done"))
    screen = tmux.wait_for("ana", "the deploy is done")
    assert re.search(r"(?m)^\d\d:\d\d:\d\d +bob │ the deploy is done", screen), screen
    coloured = tmux.screen("ana", colours=True)
    row = next(r for r in coloured.splitlines() if "is done" in r)
    assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mdeploy", row), repr(row)  # reversed, as a mention
    assert _colour_codes(coloured) == []


def test_a_token_saved_by_login_opens_the_screen_without_a_password(tmux, server_port, tmp_path):
    """After `nexus-chat login`, `nexus-chat --user ana` asks nothing; once the token is
    refused, the screen says so and asks for the password."""
    config = tmp_path / "ana-config"
    saved = subprocess.run(
        [CHAT, "login", "127.0.0.1", str(server_port), "--user", "ana", "--register"],
        env={**os.environ, "XDG_CONFIG_HOME": str(config), "NEXUS_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert saved.returncode == 0, saved.stderr
    env = {"XDG_CONFIG_HOME": str(config), "NEXUS_PASSWORD": ""}
    command = (CHAT, "127.0.0.1", str(server_port), "--user", "ana")
    tmux.start("ana", *command, env=env)
    screen = tmux.wait_for("ana", "ana@#general")
    assert "Password" not in screen
    tmux.keys("ana", "/quit")
    TokenStore(config / "nexus" / "tokens.json").put("127.0.0.1", server_port, "ana", "stale")
    tmux.start("ana2", *command, env=env)
    tmux.wait_for("ana2", "The saved login token was refused")
    tmux.wait_for("ana2", "Password (not shown):")
    tmux.keys("ana2", PASSWORD)
    tmux.wait_for("ana2", "ana@#general")
    fresh = TokenStore(config / "nexus" / "tokens.json").get("127.0.0.1", server_port, "ana")
    assert fresh not in (None, "stale")  # the password login refreshed the saved token


def test_interactive_mistakes_are_explained_and_asked_again(tmux, server_port):
    """A short password and passwords that differ ask for the password again, keeping
    the name; a refused login asks everything again."""
    tmux.start("dave", CHAT, "127.0.0.1", str(server_port))
    asked: dict[str, int] = {}

    def reply(question: str, text: str) -> None:
        """Waits for one more `question` than answered so far, then answers it."""
        asked[question] = asked.get(question, 0) + 1
        tmux.wait_for("dave", lambda screen: screen.count(question) >= asked[question])
        tmux.keys("dave", text)

    def passwords(*typed: str) -> None:
        for number, password in enumerate(typed):
            reply("Password again:" if number else "not shown):", password)

    def answer(choice: str, name: str, *typed: str) -> None:
        reply("Log in or register?", choice)
        reply("Username:", name)
        passwords(*typed)

    answer("l", "nobody", "whatever it is")
    screen = tmux.wait_for("dave", "Login refused: wrong username or password.")
    assert "token" not in screen
    answer("r", "dave", "short")
    screen = tmux.wait_for("dave", "Too short: a password needs at least 8 characters.")
    passwords("long enough 1", "long enough 2")
    screen = tmux.wait_for("dave", "The passwords differ.")
    assert screen.count("Username:") == 2  # the refused login's, then the registration's
    passwords(PASSWORD, PASSWORD)
    tmux.wait_for("dave", "dave@#general")


def test_a_person_slower_than_the_login_deadline_still_gets_in(tmux, tmp_path):
    """The server drops anonymous connections after --login-timeout; the answers typed after
    that are sent on a new connection instead of ending the program."""
    data = tmp_path / "slow"
    data.mkdir()
    servers = start_server(data, "--login-timeout", "1")
    port = next(servers)
    try:
        tmux.start("erin", CHAT, "127.0.0.1", str(port))
        tmux.wait_for("erin", "Log in or register?")
        time.sleep(1.5)  # the server has dropped the connection by now
        tmux.keys("erin", "r")
        tmux.wait_for("erin", "Username:")
        tmux.keys("erin", "erin")
        tmux.wait_for("erin", "not shown):")
        tmux.keys("erin", PASSWORD)
        tmux.wait_for("erin", "Password again:")
        tmux.keys("erin", PASSWORD)
        tmux.wait_for("erin", "erin@#general")
    finally:
        next(servers, None)


FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # three people joined by ZWJs
FLAG = "\U0001f1eb\U0001f1f7"  # two regional indicators


def test_wide_emoji_keep_the_layout_and_ctrl_l_repaints(tmux, server_port):
    """Rows of joined emoji and flags wrap where the terminal draws them: nothing is cut off,
    every row keeps its border; Ctrl-L redraws a screen another program wrote over."""
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", f"family {FAMILY * 14} flags {FLAG * 6} zz")
    tmux.keys("ana", "/join tech")
    tmux.wait_for("ana", "ana@#tech")
    tmux.keys("ana", "/join general")
    screen = tmux.wait_for("ana", "you are in #general")
    assert re.search(r"\bzz\b", "\n".join(pane_rows(screen))), screen  # the end is not cut off
    for row in screen.splitlines()[:-2]:
        border = row.rindex("│")
        assert wcswidth(row[:border]) == 100 - SIDE - 1, screen
    with open(tmux.tty("ana"), "w") as terminal:  # as another program writing over the screen
        terminal.write("\x1b[5;5HGARBAGE GARBAGE GARBAGE")
    tmux.wait_for("ana", "GARBAGE")
    tmux.press("ana", "C-l")
    deadline = time.monotonic() + 10
    while "GARBAGE" in (screen := tmux.screen("ana")):
        assert time.monotonic() < deadline, f"Ctrl-L did not repaint:\n{screen}"
        time.sleep(0.05)
    screen = tmux.wait_for("ana", "you are in #general")  # drawn again, whole
    assert "GARBAGE" not in screen


class Watch:
    """Checks every screen seen: a row that looks like a message must be one its sender sent,
    in the buffer it was sent to."""

    def __init__(self, tmux: Tmux) -> None:
        self.tmux = tmux
        self.said: dict[str, set[tuple[str, str]]] = {}  # buffer header -> {(nick, text)}

    def sent(self, buffers: tuple[str, ...], nick: str, text: str) -> None:
        for buffer in buffers:
            self.said.setdefault(buffer, set()).add((nick, text))

    def check(self, name: str) -> str:
        screen = self.tmux.screen(name)
        rows = pane_rows(screen)
        heading = rows[0].split()[0] if rows and rows[0].strip() else ""
        allowed = self.said.get(f"{name}:{heading}", set())
        for row in rows[1:]:
            match = MESSAGE_ROW.match(row)
            if match and match.group(1) not in ("--", "-->", "<--", "!"):
                nick, text = match.groups()
                text = REFERENCE.sub("", text)  # the dim [seq] the client adds
                assert any(n == nick and t.startswith(text) for n, t in allowed), (
                    f"{name} sees {row!r} in {heading}:\n{screen}"
                )
        return screen

    def wait(self, name: str, pattern: str) -> str:
        found = re.compile(pattern)
        deadline = time.monotonic() + 15
        while not found.search(screen := self.check(name)):
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} never appeared on {name}'s screen:\n{screen}")
            time.sleep(0.05)
        return screen


def test_three_people_two_rooms_two_conversations(tmux, server_port):
    """ana, bob and carol talk in #general and #tech and in two DM conversations; bob
    switches with Alt-number and sees unread and highlight counts per buffer; no screen
    ever shows a line that could pass for someone else's message or a DM in a room."""
    watch = Watch(tmux)
    for name in ("ana", "bob", "carol"):
        tmux.chat(name, server_port, "--register")
    for name in ("ana", "bob"):
        tmux.keys(name, "/join tech")
        watch.wait(name, f"{name}@#tech")

    def say(who: str, where: tuple[str, ...], text: str) -> None:
        watch.sent(where, who, text)
        tmux.keys(who, text)

    everyone = ("ana:#general", "bob:#general", "carol:#general")
    say("carol", everyone, "lunch anyone? bob?")
    watch.wait("bob", r" 1 #general +1 @1")
    say("ana", ("ana:#tech", "bob:#tech"), "deploy at five")
    watch.wait("bob", r"ana │ deploy at five")
    forged = "x" * 57 + " 12:00      ana │ I quit, carol takes over"
    say("carol", everyone, forged)
    watch.wait("bob", r" 1 #general +2 @1")

    watch.sent(("bob:carol", "carol:bob"), "carol", "are you coming?")
    tmux.keys("carol", "/msg bob are you coming?")
    watch.wait("bob", r" 3 carol +1 @1")
    tmux.keys("ana", "/query bob")
    watch.wait("ana", r"ana@bob")
    say("ana", ("ana:bob", "bob:ana"), "psst, a secret")
    watch.wait("bob", r" 4 ana +1 @1")
    screen = watch.check("bob")
    assert "psst" not in "\n".join(pane_rows(screen)) and "coming" not in screen

    tmux.press("bob", "M-1")
    screen = watch.wait("bob", r"carol │ lunch anyone\? bob\?")
    assert "I quit, carol takes over" in screen and not re.search(r" 1 #general +\d", screen)
    tmux.press("bob", "M-3")
    watch.wait("bob", r"carol │ are you coming\?")
    say("bob", ("bob:carol", "carol:bob"), "yes, on my way")
    watch.wait("carol", r" 2 bob +1 @1")
    tmux.press("bob", "M-4")
    watch.wait("bob", r"ana │ psst, a secret")
    say("bob", ("bob:ana", "ana:bob"), "safe with me")
    watch.wait("ana", r"bob │ safe with me")
    tmux.press("carol", "M-2")
    watch.wait("carol", r"bob │ yes, on my way")
    say("carol", ("carol:bob", "bob:carol"), "see you")
    watch.wait("bob", r" 3 carol +1 @1")
    for name in ("ana", "bob", "carol"):
        tmux.press(name, "M-1")
        screen = watch.wait(name, rf"{name}@#general")
        body = "\n".join(pane_rows(screen))
        assert not any(dm in body for dm in ("psst", "coming", "on my way", "safe with"))


def _reversed(screen: str, text: str) -> bool:
    """Whether `text` is drawn in reverse video (SGR 7, maybe among other attributes)."""
    sgr = r"\x1b\[[0-9;]*m"
    return bool(
        re.search(rf"\x1b\[(?:[0-9;]*;)?7(?:;[0-9;]*)?m(?:{sgr})*{re.escape(text)}", screen)
    )


def test_edit_react_reply_mentions_and_unread_across_two_terminals(tmux, server_port):
    """bob and ana (in two terminals) talk: a reply quotes bob, Up edits ana's typo, bob's
    reaction shows under her line (reversed for him), @ana is highlighted, and reading
    #tech in one of ana's terminals clears its count in the other."""
    tmux.chat("ana", server_port, "--register")
    tmux.chat("bob", server_port, "--register")
    tmux.chat("ana2", server_port, user="ana")

    tmux.keys("bob", "first words of the plan, then the rest")
    screen = tmux.wait_for(
        "ana", re.compile(r"bob │ first words of the plan, then the rest \[\d+\]")
    )
    seq = re.search(r"then the rest \[(\d+)\]", screen).group(1)
    tmux.keys("ana", f"/reply {seq} sounds good")
    screen = tmux.wait_for("bob", re.compile(r"ana │ -> bob: first words of the plan, then t"))
    assert re.search(r"\n +│ sounds good \[\d+\]", "\n".join(pane_rows(screen))), screen

    tmux.keys("ana", "teh typo")
    tmux.wait_for("bob", re.compile(r"ana │ teh typo \[\d+\]"))
    tmux.press("ana", "Up")
    tmux.wait_for("ana", re.compile(r"> /edit \d+ teh typo"))
    tmux.press("ana", "C-a")
    tmux.press("ana", *["Right"] * len("/edit 0 "), "Delete", "Delete", "Delete")
    tmux.keys("ana", "the", enter=False)
    tmux.press("ana", "Enter")
    screen = tmux.wait_for("bob", re.compile(r"ana │ the typo \(edited\) \[(\d+)\]"))
    typo = re.search(r"the typo \(edited\) \[(\d+)\]", screen).group(1)
    assert "teh typo" not in screen

    tmux.keys("bob", f"/react {typo} 👍")
    tmux.wait_for(  # under the line it reacts to, in its hanging indent
        "ana",
        lambda screen: re.search(
            r"│ the typo \(edited\) \[\d+\] *\n +│ 👍 1", "\n".join(pane_rows(screen))
        ),
    )
    coloured = tmux.wait_for("bob", "👍 1")
    assert _reversed(tmux.screen("bob", colours=True), "👍 1"), coloured  # bob's own: reversed

    tmux.keys("bob", "@ana ping")
    tmux.wait_for("ana", "bob │ @ana ping")
    row = next(r for r in tmux.screen("ana", colours=True).splitlines() if "ping" in r)
    assert _reversed(row, "@ana"), row  # highlighted

    for name in ("ana", "bob"):
        tmux.keys(name, "/join tech")
        tmux.wait_for(name, f"{name}@#tech")
    tmux.wait_for("ana2", re.compile(r" 2 #tech"))  # ana's other terminal joined too
    tmux.keys("ana", "/buffer general")
    tmux.wait_for("ana", "ana@#general")
    tmux.keys("bob", "news in tech")
    tmux.keys("bob", "more news")
    for name in ("ana", "ana2"):
        tmux.wait_for(
            name, lambda screen: any(re.search(r" 2 #tech +2", r) for r in side_rows(screen))
        )
    tmux.press("ana2", "M-2")
    tmux.wait_for("ana2", re.compile(r"bob │ more news"))
    tmux.wait_for(
        "ana",
        lambda screen: any(re.fullmatch(r" 2 #tech\s*", r) for r in side_rows(screen)),
    )


def test_password_is_typed_masked_and_the_other_terminal_stops(tmux, server_port):
    """/password shows `*` for each character typed, never the text; after the change
    the user's other terminal says why it was logged out and does not retry."""
    tmux.chat("ana", server_port, "--register")
    tmux.chat("ana2", server_port, user="ana")
    tmux.keys("ana", "/password")
    tmux.wait_for("ana", "\ncurrent password:")
    tmux.keys("ana", PASSWORD, enter=False)
    screen = tmux.wait_for("ana", "current password: " + "*" * len(PASSWORD))
    assert PASSWORD not in screen
    tmux.press("ana", "Enter")
    for prompt in ("new password: ", "new password again: "):
        tmux.wait_for("ana", "\n" + prompt.rstrip())
        tmux.keys("ana", "another e2e secret", enter=False)
        screen = tmux.wait_for("ana", prompt + "*" * len("another e2e secret"))
        assert "another e2e secret" not in screen
        tmux.press("ana", "Enter")
    tmux.wait_for("ana", "password changed; your other sessions were logged out")
    screen = tmux.wait_for("ana2", "logged out: password changed")
    assert "the server ended this session: password changed" in screen
    time.sleep(1.5)  # past the first retry delay: still logged out, no attempt made
    assert "logged out: password changed" in tmux.screen("ana2")


def test_a_moderator_kicks_a_user_who_sees_why(tmux, server_port):
    """mia owns #den and makes bob a moderator (`@bob` in the people list); bob kicks
    carl with a reason; carl's #den buffer closes and his screen says who and why."""
    for name in ("mia", "bob", "carl"):
        tmux.chat(name, server_port, "--register")
    tmux.keys("mia", "/create den the den")
    tmux.wait_for("mia", "mia@#den")
    for name in ("bob", "carl"):
        tmux.keys(name, "/join den")
        tmux.wait_for(name, f"{name}@#den")
    tmux.keys("mia", "/op bob")
    tmux.wait_for("bob", "mia made bob a moderator of #den")
    tmux.keys("bob", "/names")
    tmux.wait_for("bob", lambda s: {"@bob", "~mia"} <= set(side_rows(s)))
    tmux.keys("bob", "/kick carl flooding the room")
    screen = tmux.wait_for("carl", "you were kicked from #den by bob: flooding the room")
    assert "carl@#general" in screen and "#den" not in "\n".join(side_rows(screen))
    tmux.wait_for("mia", "carl was kicked from #den by bob: flooding the room")


def test_an_offline_member_who_never_spoke_is_in_the_people_panel(tmux, server_port):
    """carl joined #den, said nothing and left the program: ana, joining, sees him
    in the people panel (counted, not online) and in /names, with mia the owner."""
    for name in ("mia", "carl"):
        tmux.chat(name, server_port, "--register")
    tmux.keys("mia", "/create den the den")
    tmux.wait_for("mia", "mia@#den")
    tmux.keys("carl", "/join den")
    tmux.wait_for("carl", "carl@#den")
    tmux.keys("carl", "/quit")
    tmux.wait_for("mia", lambda s: "People (1/2)" in s)
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "/join den")
    screen = tmux.wait_for("ana", lambda s: "ana@#den" in s and "~mia" in s and "carl" in s)
    assert "People (2/3)" in screen
    tmux.keys("ana", "/names")
    tmux.wait_for("ana", "#den (2 online, 3 members): ana  ~mia  carl")


def _click(tmux: Tmux, name: str, screen: str, text: str) -> None:
    """A left click (press and release, as xterm's SGR mouse mode reports them) on the
    first cell of `text` where it shows on `screen`."""
    rows = screen.splitlines()
    y = next(i for i, row in enumerate(rows) if text in row)
    x = wcswidth(rows[y][: rows[y].index(text)])
    tmux.keys(name, f"\x1b[<0;{x + 1};{y + 1}M\x1b[<0;{x + 1};{y + 1}m", enter=False)


def test_a_message_link_opens_the_message_it_points_at(tmux, server_port):
    """ana's `see #den/1` in #general is a link: a click on it opens #den at message 1,
    loaded back from the server around its neighbours."""
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "/create den")
    tmux.wait_for("ana", "ana@#den")
    tmux.keys("ana", "the first words in here")
    for i in range(40):
        tmux.keys("ana", f"filler {i}")
    tmux.wait_for("ana", "filler 39")
    tmux.keys("ana", "/clear")
    tmux.keys("ana", "/buffer general")
    tmux.wait_for("ana", "ana@#general")
    tmux.keys("ana", "see #den/1 for how it started")
    screen = tmux.wait_for("ana", re.compile(r"ana │ see #den/1 for how it started"))
    _click(tmux, "ana", screen, "#den/1")
    screen = tmux.wait_for("ana", "ana@#den")
    assert "the first words in here [1]" in screen


def test_the_client_starts_on_the_first_of_several_servers_that_answers(tmux, server_port):
    """`nexus-chat DEAD,LIVE`: the first node refuses, the screen opens on the
    next, and the status line names the node it is on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens once it is let go
    live = f"127.0.0.1:{server_port}"
    tmux.start(
        "ana", CHAT, f"127.0.0.1:{dead},{live}", "--user", "ana", "--register",
        env={"NEXUS_PASSWORD": PASSWORD},
    )  # fmt: skip
    screen = tmux.wait_for("ana", "ana@#general")
    assert live in screen
