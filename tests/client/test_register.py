"""Registering at the prompts of the real binary in tmux: a name that cannot be one,
or is taken, is said before the password is asked for; one taken meanwhile asks only
for another name."""

from __future__ import annotations

import asyncio

from nexus.client.connection import ChatConnection
from tests.client.tmux import CHAT, PASSWORD


async def _register(port: int, name: str) -> None:
    conn = ChatConnection(keep_events=False)
    await conn.connect("127.0.0.1", port)
    await conn.request("register", username=name, password=PASSWORD)
    await conn.quit()


def test_a_bad_or_taken_name_is_said_before_the_password(tmux, server_port):
    """`no spaces` is refused at once, and so is `ana`, taken (the server says
    so before any password: `available`); a free name then asks for the
    password twice and is in."""
    asyncio.run(_register(server_port, "ana"))
    tmux.start("dave", CHAT, "127.0.0.1", str(server_port))
    tmux.wait_for("dave", "Log in or register?")
    tmux.keys("dave", "r")
    tmux.wait_for("dave", "Username:")
    tmux.keys("dave", "no spaces")
    screen = tmux.wait_for("dave", "a username is 3-24 letters")
    assert "not shown" not in screen, screen
    tmux.wait_for("dave", lambda s: s.count("Username:") == 2)
    tmux.keys("dave", "ana")
    screen = tmux.wait_for("dave", "that name is taken")
    assert "not shown" not in screen, screen
    tmux.wait_for("dave", lambda s: s.count("Username:") == 3)
    tmux.keys("dave", "dave")
    tmux.wait_for("dave", "not shown):")
    tmux.keys("dave", PASSWORD)
    tmux.wait_for("dave", "Password again:")
    tmux.keys("dave", PASSWORD)
    tmux.wait_for("dave", "dave@#general")


def test_a_name_taken_while_the_password_was_typed_keeps_the_password(tmux, server_port):
    """The name was free when looked up and someone took it meanwhile:
    `register` says so after the passwords, and then only the name is asked
    for again: the password typed twice is kept."""
    tmux.start("dave", CHAT, "127.0.0.1", str(server_port))
    tmux.wait_for("dave", "Log in or register?")
    tmux.keys("dave", "r")
    tmux.wait_for("dave", "Username:")
    tmux.keys("dave", "erin")
    tmux.wait_for("dave", "not shown):")
    asyncio.run(_register(server_port, "erin"))  # taken now
    tmux.keys("dave", PASSWORD)
    tmux.wait_for("dave", "Password again:")
    tmux.keys("dave", PASSWORD)
    tmux.wait_for("dave", "that name is taken")
    screen = tmux.wait_for("dave", lambda s: s.count("Username:") == 2)
    assert screen.count("Log in or register?") == 1, screen
    tmux.keys("dave", "dave")
    tmux.wait_for("dave", "dave@#general")  # in, with no password typed again
