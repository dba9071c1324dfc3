"""/pin, /unpin and /pins through the Application against a real server, and the
`pinned` line a pin by someone else leaves in the room."""

from __future__ import annotations

from nexus.client.layout import header
from tests.client.conftest import until
from tests.client.test_goto import _den_with_three, _errors, _pong


def _header(driver) -> str:
    return "".join(text for _, text in header(driver.state))


async def test_pin_list_and_unpin_in_a_room(chat):
    ana, _ = await _den_with_three(chat)
    ana.type("/pin 1\r")
    line = await ana.shows("pinned #den/1")
    assert line.endswith(f"{ana.state.me} pinned #den/1 ({ana.state.me}: one)"), line
    assert "[1 pin: /pins]" in _header(ana)

    ana.type("/pin\r")  # the newest message by default
    await ana.shows("pinned #den/3")
    ana.type("/pin 3\r")
    await ana.shows("#den/3 was pinned already")

    ana.type("/pins\r")
    screen = await until(lambda: "Pinned in #den" in ana.screen() and ana.screen())
    rows = [row for row in screen.splitlines() if "#den/" in row and ana.state.me in row]
    assert rows[-2].split()[0] == "#den/3" and rows[-1].split()[0] == "#den/1", screen
    assert "three" in rows[-2] and "one" in rows[-1]

    ana.type("/unpin\r")  # the latest pin by default
    await ana.shows("unpinned #den/3")
    assert "[1 pin: /pins]" in _header(ana)
    ana.type("/unpin 3\r")
    await ana.shows("#den/3 is not pinned")
    ana.type("/unpin 1\r")
    await ana.shows("unpinned #den/1")
    ana.type("/pins\r")
    await ana.shows("nothing is pinned in #den")
    assert "pin" not in _header(ana)
    assert not _errors(ana), ana.lines()


async def test_someone_elses_pin_shows_as_a_line_and_refusals_as_errors(chat, server):
    owner = await server.user("pinner")  # the first account: the server's admin
    ana = await chat()
    await owner.ok("create", room="board")
    await owner.ok("say", room="board", text="**rules**: be kind")
    ana.type("/join board\r")
    board = await until(lambda: ana.state.rooms.get("board"), what="#board joined")
    await until(lambda: board.last_seq == 1)
    await owner.ok("pin", room="board", seq=1)
    await ana.shows("pinner pinned #board/1 (pinner: rules: be kind)")  # as drawn
    ana.type("/pin 1\r")  # a member, not the owner
    await ana.shows("(not_allowed)")
    ana.type("/query pinner\r")
    await until(lambda: ana.state.current is not board)
    ana.type("/pin 1\r")
    await ana.shows("messages are pinned in rooms only")
    await _pong(ana)
