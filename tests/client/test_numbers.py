"""Buffer numbers stay where they are: in the order buffers were opened, moved only by
/buffer move, and kept across restarts; through the Application against a real server
and the real binary in tmux."""

from __future__ import annotations

import re

from nexus.client.commands import completions
from tests.client.conftest import until
from tests.client.tmux import CHAT, PASSWORD


def _numbers(driver) -> dict[str, int]:
    return {b.label: driver.state.number(b) for b in driver.state.buffers}


async def test_a_new_room_takes_the_next_number_and_the_others_keep_theirs(chat):
    """#general 1, #tech 2; /create aaa (first by name) is 3, and Alt-2 is still #tech."""
    ana = await chat()
    ana.type("/join tech\r")
    await until(lambda: ana.state.room == "tech")
    ana.type("/create aaa\r")
    await until(lambda: ana.state.room == "aaa")
    assert _numbers(ana) == {"#general": 1, "#tech": 2, "#aaa": 3}
    ana.type("\x1b2")  # Alt-2
    await until(lambda: ana.state.room == "tech")


async def test_buffer_move_puts_the_current_buffer_at_a_number(chat):
    """/buffer move 1 makes this buffer number 1 and moves the ones before it down by one;
    completion offers `move`."""
    ana = await chat()
    for room in ("tech", "random"):
        ana.type(f"/join {room}\r")
        await until(lambda room=room: ana.state.room == room)
    ana.type("/buffer move 1\r")
    await until(lambda: _numbers(ana)["#random"] == 1)
    assert _numbers(ana) == {"#random": 1, "#general": 2, "#tech": 3}
    ana.type("/buffer move +1\r")
    await until(lambda: _numbers(ana)["#random"] == 2)
    assert "move" in completions("/buffer mo", ana.state)[1]


def test_numbers_are_kept_across_restarts(tmux, server_port):
    """ana moves #tech to number 1 and quits; started again, #tech is still buffer 1."""
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "/join tech")
    tmux.wait_for("ana", "ana@#tech")
    tmux.keys("ana", "/buffer move 1")
    tmux.wait_for("ana", re.compile(r"│ 1 #tech"))
    tmux.keys("ana", "/quit")
    env = {"NEXUS_PASSWORD": PASSWORD, "XDG_STATE_HOME": str(tmux.home / "ana" / "state")}
    tmux.start("ana2", CHAT, "127.0.0.1", str(server_port), "--user", "ana", env=env)
    tmux.wait_for("ana2", "ana@#general")
    screen = tmux.wait_for("ana2", "#tech")
    assert re.search(r"│ 1 #tech", screen) and re.search(r"│ 2 #general", screen), screen
