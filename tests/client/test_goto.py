"""/clear, /goto, /history and `#room/123` message links through the Application (pipe
input) against a real server: clearing the screen never makes the client forget what the
server holds."""

from __future__ import annotations

from tests.client.conftest import until


async def _den_with_three(chat):
    """ana in a new #den holding messages 1-3 (`one`, `two`, `three`), all on screen."""
    ana = await chat()
    ana.type("/create den\r")
    await until(lambda: ana.state.room == "den", what="#den created")
    for text in ("one", "two", "three"):
        ana.type(text + "\r")
    den = ana.state.rooms["den"]
    await until(lambda: den.last_seq == 3, what="three messages")
    return ana, den


def _errors(driver) -> list[str]:
    return [line for line in driver.lines() if " ! " in line]


async def _pong(driver) -> None:
    """Every line typed before has been run and answered."""
    count = sum("pong" in line for line in driver.lines())
    driver.type("/ping\r")
    await until(lambda: sum("pong" in line for line in driver.lines()) > count, what="pong")


async def test_goto_after_clear_fetches_the_message_again(chat):
    """/clear empties the screen; /goto #den 1 then brings message 1 back among its
    neighbours instead of saying it was never sent."""
    ana, den = await _den_with_three(chat)
    ana.type("/clear\r")
    await until(lambda: not den.lines.entries, what="cleared")
    ana.type("/goto #den 1\r")
    await _pong(ana)
    assert not _errors(ana), ana.lines()
    assert [e.text for e in den.messages()] == ["one", "two", "three"]


async def test_history_after_clear_pages_back_from_what_was_fetched(chat):
    """/history after /clear loads the messages the screen no longer shows: 3 of them."""
    ana, den = await _den_with_three(chat)
    ana.type("/clear\r")
    await until(lambda: not den.lines.entries, what="cleared")
    ana.type("/history\r")
    line = await ana.shows("loaded above")
    assert "3 older messages of #den loaded above" in line, line
    assert [e.text for e in den.messages()] == ["one", "two", "three"]


async def test_a_cleared_screen_stays_clear_until_asked(chat):
    """The empty pane after /clear does not fetch what was just cleared by itself."""
    ana, den = await _den_with_three(chat)
    ana.type("/clear\r")
    await until(lambda: not den.lines.entries, what="cleared")
    await _pong(ana)
    assert not list(den.messages())


async def test_search_then_goto_after_clear(chat):
    """/clear, /search two, then /goto #den 2 as the search note says: message 2 is shown."""
    ana, den = await _den_with_three(chat)
    ana.type("/clear\r")
    await until(lambda: not den.lines.entries, what="cleared")
    ana.type("/search two\r")
    await ana.shows("1 found")
    ana.type("/goto #den 2\r")
    await _pong(ana)
    assert not _errors(ana), ana.lines()
    assert den.find(2) is not None and den.find(2).text == "two"


async def test_goto_takes_a_message_link(chat):
    """`/goto #den/2`, the form a link to a message takes, is /goto #den 2."""
    ana, den = await _den_with_three(chat)
    ana.type("/join general\r")
    await until(lambda: ana.state.room == "general")
    ana.type("/goto #den/2\r")
    await until(lambda: ana.state.current is den, what="back in #den")
    await _pong(ana)
    assert not _errors(ana), ana.lines()
