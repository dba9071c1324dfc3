"""End to end, protocol 3: the installed nexus-server and nexus-chat in tmux, another
client on a raw socket. Formatting drawn with styles (capture-pane -e keeps them),
typing shown and said, pins listed, a message link opened."""

from __future__ import annotations

import re
import time

import pytest

from tests.client.test_e2e_tmux import _click, pane_rows
from tests.client.tmux import CHAT, PASSWORD, Raw

pytestmark = pytest.mark.e2e

SGR = r"(?:\x1b\[[0-9;]*m)*"  # any run of style sequences


def _styled(screen: str, codes: str, text: str) -> bool:
    """Whether `text` is drawn right after an SGR sequence holding the parameter `codes`."""
    return bool(
        re.search(rf"\x1b\[(?:[0-9;]*;)?{codes}(?:;[0-9;]*)?m{SGR}{re.escape(text)}", screen)
    )


@pytest.fixture
def raw(server_port):
    """Opens raw-socket clients (registered as the names given); closed afterwards."""
    opened: list[Raw] = []

    def open_as(name: str) -> Raw:
        opened.append(Raw(server_port, name))
        return opened[-1]

    yield open_as
    for peer in opened:
        peer.close()


def test_formatting_is_drawn_with_styles_and_plain_text_as_typed(tmux, server_port, raw):
    tmux.chat("ana", server_port, "--register")
    bob = raw("bob")
    bob.ok(
        "say",
        room="general",
        text="**loud** *soft* ~~gone~~ `x = 1` [docs](https://e.org/d) [red]red[/red]",
    )
    tmux.wait_for("ana", "loud soft gone x = 1 docs <https://e.org/d> [red]red[/red]")
    screen = tmux.screen("ana", colours=True)
    assert _styled(screen, "1", "loud")  # bold
    assert _styled(screen, "3", "soft")  # italic
    assert _styled(screen, "9", "gone")  # strike
    assert _styled(screen, "48", "x = 1")  # code: on its own background
    assert _styled(screen, "4", "docs")  # the link, underlined, its address after it
    assert not _styled(screen, "31", "red[/red]")  # Rich markup is text

    bob.ok("say", room="general", text="```\nfor x in y:\n    **not bold**\n```")
    screen = tmux.wait_for("ana", "▌     **not bold**")
    rows = pane_rows(screen)
    code = next(i for i, row in enumerate(rows) if "▌ for x in y:" in row)
    assert "│ ▌     **not bold**" in rows[code + 1], screen  # a row of its own, as typed

    tmux.keys("ana", "/plain **as typed** `too`")
    screen = tmux.wait_for("ana", "ana │ **as typed** `too`")
    assert not _styled(tmux.screen("ana", colours=True), "1", "**as typed**")


def test_typing_shows_in_the_status_bar_and_is_said_while_composing(tmux, server_port, raw):
    tmux.chat("ana", server_port, "--register")
    bob = raw("bob")
    bob.ok("typing", room="general")
    tmux.wait_for("ana", "[bob is typing]")
    bob.ok("typing", room="general", on=False)
    tmux.wait_for("ana", lambda screen: "typing" not in screen)
    carol = raw("carol")
    time.sleep(1.0)  # the server tells one `on` a second a user, its `off` between or not
    bob.ok("typing", room="general")
    carol.ok("typing", room="general")
    tmux.wait_for("ana", "[bob and carol are typing]")
    carol.ok("say", room="general", text="done")  # her message ends her typing
    tmux.wait_for("ana", lambda screen: "[bob is typing]" in screen and "carol" in screen)
    tmux.wait_for("ana", lambda screen: "typing" not in screen, timeout=10)  # 6 s on

    tmux.keys("ana", "a long thought", enter=False)
    assert bob.event("typing", user="ana") == {
        "event": "typing",
        "room": "general",
        "user": "ana",
        "on": True,
    }
    tmux.press("ana", "C-u")  # the line emptied: no longer typing
    assert bob.event("typing", user="ana")["on"] is False


def test_typing_false_in_client_toml_never_says_that_i_type(tmux, server_port, raw, tmp_path):
    config = tmp_path / "ana-config"
    (config / "nexus").mkdir(parents=True)
    (config / "nexus" / "client.toml").write_text("typing = false\n")
    env = {"NEXUS_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(config)}
    tmux.start("ana", CHAT, "127.0.0.1", str(server_port), "--user", "ana", "--register", env=env)
    tmux.wait_for("ana", "ana@#general")
    bob = raw("bob")
    tmux.keys("ana", "a quiet thought", enter=False)
    tmux.wait_for("ana", "> a quiet thought")
    tmux.press("ana", "Enter")
    bob.event("message", text="a quiet thought")
    assert not [e for e in bob.events if e.get("event") == "typing"], bob.events
    bob.ok("typing", room="general")  # others' typing still shows
    tmux.wait_for("ana", "[bob is typing]")


def test_pins_are_listed_with_who_pinned_them(tmux, server_port):
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "/create den")
    tmux.wait_for("ana", "ana@#den")
    tmux.keys("ana", "the **rules** of the den")
    tmux.keys("ana", "chatter")
    tmux.wait_for("ana", "chatter [2]")
    tmux.keys("ana", "/pin 1")
    tmux.wait_for("ana", "ana pinned #den/1 (ana: the rules of the den)")
    tmux.wait_for("ana", "#den [1 pin: /pins]")
    tmux.keys("ana", "/pins")
    screen = tmux.wait_for("ana", "Pinned in #den")
    assert re.search(r"#den/1 +ana +the rules of the den +ana +\d\d \w\w\w \d\d:\d\d", screen)


def test_a_message_link_opens_the_room_at_the_message_marked(tmux, server_port, raw):
    tmux.chat("ana", server_port, "--register")
    bob = raw("bob")
    bob.ok("create", room="den")
    for i in range(1, 31):
        bob.ok("say", room="den", text=f"den line {i}")
    tmux.keys("ana", "/join den")
    tmux.wait_for("ana", "den line 30")
    tmux.keys("ana", "/buffer general")
    tmux.wait_for("ana", "ana@#general")
    bob.ok("say", room="general", text="where it started: #den/4")
    screen = tmux.wait_for("ana", "bob │ where it started: #den/4")
    assert _styled(tmux.screen("ana", colours=True), "4", "#den/4")
    _click(tmux, "ana", screen, "#den/4")
    screen = tmux.wait_for("ana", "den line 4 [4]")
    assert "ana@#den" in screen
    coloured = tmux.screen("ana", colours=True)
    assert _styled(coloured, "43", "den line 4") and not _styled(coloured, "43", "den line 5")


def test_a_thread_opens_in_its_own_buffer_and_the_inbox_counts_it(tmux, server_port, raw):
    tmux.chat("ana", server_port, "--register")
    bob = raw("bob")
    seq = bob.ok("say", room="general", text="retro notes, what went well?")["seq"]
    bob.ok("say", room="general", text="the *deploy*", thread=seq)
    screen = tmux.wait_for("ana", re.compile(rf"↳ 1 reply, last \d\d:\d\d \(bob\)  /thread {seq}"))
    assert "the deploy" not in screen  # not in the room's timeline

    tmux.keys("ana", f"/thread {seq}")
    screen = tmux.wait_for("ana", f"#general/{seq} thread of bob: retro notes")
    rows = "\n".join(pane_rows(screen))
    assert rows.index("retro notes, what went well?") < rows.index("the deploy")
    assert re.search(rf"(?m) 2 #general/{seq}\s*$", screen)  # numbered like any buffer
    tmux.keys("ana", "agreed")
    event = bob.event("message", text="agreed")
    assert (event["thread"], event.get("broadcast")) == (seq, None)

    tmux.press("ana", "M-1")
    tmux.wait_for("ana", "ana@#general")
    bob.ok("say", room="general", text="and the retro itself", thread=seq)
    screen = tmux.wait_for("ana", "[1 unread thread: /threads]")
    assert re.search(rf"(?m) 2 #general/{seq} 1\s*$", screen)
    tmux.press("ana", "M-2")
    tmux.wait_for("ana", "and the retro itself")
    tmux.wait_for("ana", lambda screen: "unread thread" not in screen)
