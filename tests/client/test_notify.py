"""Notifications: the bell, the terminal's desktop notification, a command of one's own."""

from __future__ import annotations

import logging
import sys

from nexus.client.config import Notifications
from nexus.client.notify import Notifier, desktop_sequence
from nexus.client.state import Alert
from tests.client.conftest import until

DM = Alert("bob", "bob", "are you there?", seen=False)


def test_foot_kitty_and_wezterm_get_osc_777():
    """The default is OSC 777 `notify;TITLE;BODY`, ended by ST."""
    assert desktop_sequence("Nexus: bob", "hi", {}) == "\x1b]777;notify;Nexus: bob;hi\x1b\\"


def test_iterm2_gets_osc_9():
    assert desktop_sequence("Nexus: bob", "hi", {"TERM_PROGRAM": "iTerm.app"}) == (
        "\x1b]9;Nexus: bob: hi\x07"
    )


def test_inside_tmux_the_sequence_is_wrapped_for_passthrough():
    """tmux passes on a DCS `tmux;` sequence with every ESC doubled."""
    wrapped = desktop_sequence("t", "b", {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert wrapped == "\x1bPtmux;\x1b\x1b]777;notify;t;b\x1b\x1b\\\x1b\\"


def test_remote_text_cannot_end_the_sequence_or_start_another():
    """Control characters (ESC, BEL, C1) leave the text; `;` cannot add a field to the
    title; a long message is cut."""
    sequence = desktop_sequence("ev;il\x1b]0;x", "a\x07b\x1b\\c\x9bd" + "z" * 500, {})
    assert sequence.count("\x1b") == 2  # the sequence's own ESC ] and ST, nothing more
    assert "\x07" not in sequence and "\x9b" not in sequence
    fields = sequence[len("\x1b]") : -len("\x1b\\")].split(";")
    assert fields[:3] == ["777", "notify", "ev,il ]0,x"]
    assert len(fields[3]) <= 200 and fields[3].endswith("…")


def test_an_alert_not_on_screen_rings_and_notifies():
    written: list[str] = []
    Notifier(Notifications(), written.append, environ={})(DM)
    assert written == ["\a", "\x1b]777;notify;Nexus: bob;are you there?\x1b\\"]


def test_an_alert_on_screen_only_rings():
    """The person is looking at it: a bell, as before, and no notification."""
    written: list[str] = []
    Notifier(Notifications(), written.append, environ={})(
        Alert("#tech", "bob", "@ana look", seen=True)
    )
    assert written == ["\a"]


def test_each_way_can_be_switched_off():
    written: list[str] = []
    notifier = Notifier(Notifications(bell=False, desktop=False), written.append, environ={})
    notifier(DM)
    notifier(Alert("#tech", "bob", "@ana", seen=True))
    assert written == []


async def test_the_configured_command_runs_with_the_text_as_its_last_argument(tmp_path):
    """A real process, no shell: the argument arrives as one string, quotes and all."""
    out = tmp_path / "argv"
    script = f"import sys; open({str(out)!r}, 'w').write(repr(sys.argv[1:]))"
    settings = Notifications(bell=False, desktop=False, command=(sys.executable, "-c", script))
    notifier = Notifier(settings, lambda text: None, environ={})
    notifier(Alert("#tech", "bob", "it's $(rm -rf ~) time", seen=False))
    await notifier.close()
    assert out.read_text() == repr(["bob in #tech: it's $(rm -rf ~) time"])


async def test_a_missing_command_is_a_warning_not_a_crash(caplog):
    settings = Notifications(bell=False, desktop=False, command=("/nonexistent/notify-send",))
    notifier = Notifier(settings, lambda text: None, environ={})
    with caplog.at_level(logging.WARNING, logger="nexus.client.notify"):
        notifier(DM)
        await notifier.close()
    await until(lambda: "notification command /nonexistent/notify-send failed" in caplog.text)


async def test_a_dm_in_another_buffer_notifies_through_the_terminal(chat, connect, monkeypatch):
    """Through the Application: bob's DM while ana reads #general rings and asks the
    terminal for a desktop notification; bob's message in #general, on screen, rings only
    when it names her, and asks for nothing."""
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TERM_PROGRAM", raising=False)
    ana = await chat()
    bob, bob_login = await connect()
    name = bob_login["user"]["username"]
    await bob.request("dm", to=ana.state.me, text="lunch?")
    await until(lambda: ana.output.notifications(), what="a notification")
    assert ana.output.notifications() == [f"\x1b]777;notify;Nexus: {name};lunch?\x1b\\"]
    assert ana.output.bells == 1
    await bob.request("join", room="general")
    await bob.request("say", room="general", text=f"{ana.state.me}: and you?")
    await ana.shows("and you?")
    assert ana.output.bells == 2
    assert len(ana.output.notifications()) == 1
