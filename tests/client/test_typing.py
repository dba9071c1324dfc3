"""Typing notifications: who shows as typing and for how long, when the client says it
types, and both through the Application against a real server."""

from __future__ import annotations

from nexus.client.layout import status_bar
from nexus.client.state import ChatState
from nexus.client.typists import (
    TYPING_EVERY,
    TYPING_SHOWN,
    TYPING_TOLD,
    Composer,
    Typists,
    typing_line,
)
from tests.client.conftest import room_info, until


def test_someone_shows_as_typing_until_six_seconds_after_their_last_on():
    typists = Typists()
    typists.typing("#den", "ana", True, now=100.0)
    assert typists.names("#den", 100.0 + TYPING_SHOWN - 0.1) == ["ana"]
    typists.typing("#den", "ana", True, now=103.0)  # typing on: the time starts again
    assert typists.names("#den", 100.0 + TYPING_SHOWN + 1) == ["ana"]
    assert typists.names("#den", 103.0 + TYPING_SHOWN) == []
    assert typists.names("#elsewhere", 100.0) == []


def test_off_and_their_message_end_it_at_once():
    typists = Typists()
    typists.typing("#den", "ana", True, now=0.0)
    typists.typing("#den", "Bob", True, now=0.0)
    typists.typing("#den", "ANA", False, now=1.0)
    assert typists.names("#den", 1.0) == ["Bob"]
    typists.stopped("#den", "bob")
    assert typists.names("#den", 1.0) == []


def test_the_typing_line_names_one_or_two_and_counts_more():
    assert typing_line([]) == ""
    assert typing_line(["ana"]) == "ana is typing"
    assert typing_line(["ana", "bob"]) == "ana and bob are typing"
    assert typing_line(["ana", "bob", "cy"]) == "3 people are typing"


def test_the_status_bar_shows_who_types_in_the_current_buffer_only():
    state = ChatState("me", "here")
    state.add_room(room_info("den"))
    state.add_room(room_info("tech"))
    state.switch("den")
    state.apply({"event": "typing", "room": "den", "user": "ana", "on": True})
    state.apply({"event": "typing", "room": "tech", "user": "bob", "on": True})
    bar = "".join(text for _, text in status_bar(state))
    assert "[ana is typing]" in bar and "bob" not in bar
    state.apply({"event": "message", "room": "den", "seq": 1, "from": "ana", "text": "hi", "ts": 1})
    assert "typing" not in "".join(text for _, text in status_bar(state))


def test_a_dm_partner_typing_shows_in_their_buffer():
    state = ChatState("me", "here")
    state.switch(state.dm_buffer("Ana"))
    state.apply({"event": "typing", "with": "Ana", "user": "Ana", "on": True})
    assert "[Ana is typing]" in "".join(text for _, text in status_bar(state))


def test_the_composer_says_on_every_three_seconds_and_off_when_the_line_empties():
    said: list[tuple[tuple[str, str], bool]] = []
    composer = Composer(lambda target, on: said.append((target, on)))
    den = ("room", "den")
    composer.changed(den, "h", 10.0)
    composer.changed(den, "he", 11.0)
    composer.changed(den, "hel", 10.0 + TYPING_EVERY)
    composer.changed(den, "", 14.0)
    assert said == [(den, True), (den, True), (den, False)]


def test_a_new_message_says_on_once_the_server_would_tell_it():
    """The server tells one `on` a second for a place, an `off` or a message
    between or not: a quick talker's next line waits until then to say it, at
    its next key, rather than ask for nothing."""
    said: list[tuple[tuple[str, str], bool]] = []
    composer = Composer(lambda target, on: said.append((target, on)))
    den, bob = ("room", "den"), ("with", "bob")
    composer.changed(den, "ok", 10.0)
    composer.sent()
    composer.changed(den, "a", 10.4)  # the next line, 0.4 s on: the server would not tell it
    composer.changed(den, "", 10.5)  # nothing said to end either
    composer.changed(bob, "b", 10.6)  # elsewhere counts on its own
    composer.changed(den, "an", 10.9)
    assert said == [(den, True), (bob, True), (bob, False)]
    composer.changed(den, "and", 10.0 + TYPING_TOLD)
    assert said[3:] == [(den, True)]


def test_the_composer_is_quiet_for_commands_sent_lines_and_when_disabled():
    said: list[tuple[tuple[str, str], bool]] = []
    composer = Composer(lambda target, on: said.append((target, on)))
    den = ("room", "den")
    composer.changed(den, "/join tech", 0.0)
    composer.changed(None, "hello", 0.0)  # no room or person here
    assert said == []
    composer.changed(den, "/me waves", 0.0)  # becomes a message
    composer.sent()
    composer.changed(den, "", 0.1)  # the message ended it at the server
    assert said == [(den, True)]
    composer.changed(("with", "bob"), "hi", 0.2)
    composer.changed(den, "hi", 1.3)  # the line now goes elsewhere: off there, on here
    assert said[1:] == [(("with", "bob"), True), (("with", "bob"), False), (den, True)]
    quiet = Composer(lambda target, on: said.append((target, on)), enabled=False)
    quiet.changed(den, "secret plans", 0.0)
    assert len(said) == 4


async def test_typing_goes_both_ways_through_the_application(chat, server):
    """ana types in #general: a raw peer gets `typing` on, then off once the line is
    cleared; the peer types: ana's status bar says so until the peer stops."""
    ana = await chat()
    peer = await server.user("typist")
    await peer.ok("join", room="general")
    ana.type("hel")
    event = await peer.event("typing")
    assert event == {"event": "typing", "room": "general", "user": ana.state.me, "on": True}
    ana.type("\x15")  # Ctrl-U: the line is emptied, nothing sent
    event = await peer.event("typing")
    assert event["on"] is False

    def bar() -> str:
        return "".join(text for _, text in status_bar(ana.state))

    await peer.ok("typing", room="general")
    await until(lambda: f"[{peer.name} is typing]" in bar(), what="the typing line")
    await peer.ok("typing", room="general", on=False)
    await until(lambda: "typing" not in bar(), what="the typing line gone")
