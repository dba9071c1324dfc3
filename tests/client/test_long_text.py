"""Text over the 4,000 characters a message may have: refused before it is sent, kept in
the input line, and sent as several messages on request. The real binary in tmux, pasted
as a terminal pastes (bracketed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nexus.client.connection import ChatConnection
from nexus.protocol import MESSAGE_MAX
from tests.client.conftest import until
from tests.client.tmux import PASSWORD

PASTE, PASTED = "\x1b[200~", "\x1b[201~"  # a bracketed paste, as terminals send one


async def _said_in_general(port: int, ending: str) -> list[str]:
    """The texts of #general, once its newest message ends with `ending` (10 s at most)."""
    conn = ChatConnection(keep_events=False)
    await conn.connect("127.0.0.1", port)
    await conn.request("register", username="reader", password=PASSWORD)
    texts: list[str] = []
    for _ in range(100):
        page = await conn.request("history", room="general", limit=100)
        texts = [m["text"] for m in page["messages"]]
        if texts and texts[-1].endswith(ending):
            break
        await asyncio.sleep(0.1)
    await conn.quit()
    return texts


def test_a_paste_over_64_kib_is_kept_and_sent_in_parts(tmux, server_port, tmp_path: Path):
    """A 70,000-character paste: Enter sends nothing and drops nothing (the link stays up,
    the text stays in the input line), the pane says why; Ctrl-Y sends it as messages of
    at most 4,000 characters, cut at line ends, which put together are the paste."""
    lines = [f"line {i:04d} of the release notes, pasted whole" for i in range(1500)]
    text = "\n".join(lines)
    assert len(text) > 65_536
    paste = tmp_path / "paste.txt"
    paste.write_text(text)
    tmux.chat("ana", server_port, "--register")
    tmux("load-buffer", "-b", "notes", str(paste))
    tmux("paste-buffer", "-p", "-b", "notes", "-t", "ana")
    tmux.wait_for("ana", "line 1499 of the release notes", timeout=30)  # in the input line
    tmux.press("ana", "Enter")
    screen = tmux.wait_for("ana", "not sent", timeout=30)
    assert f"{len(text):,} characters" in screen and "Ctrl-Y" in screen, screen
    assert "online" in screen and "connection lost" not in screen, screen
    assert "line 1499 of the release notes" in screen, screen  # still in the input line
    tmux.press("ana", "C-y")
    said = asyncio.run(_said_in_general(server_port, lines[-1]))
    assert all(len(part) <= MESSAGE_MAX for part in said)
    assert "\n".join(said) == text


async def test_a_room_of_long_messages_can_be_joined(chat, connect):
    """Twenty messages of 4,000 characters make a join's history page of some 80 KB, more
    than a request may be but well within what the server sends: the client logs in, and
    the page is there."""
    bob, _ = await connect()
    await bob.request("join", room="general")
    for i in range(20):
        await bob.request("say", room="general", text=f"{i:02d} " + "x" * (MESSAGE_MAX - 3))
    ana = await chat()
    await until(lambda: ana.state.rooms["general"].last_seq == 20, what="the long page")


async def test_an_edit_too_long_for_a_frame_is_refused_here_and_the_link_stays(chat):
    """/edit with 70,000 characters: refused before it is sent, instead of a request the
    server would end the connection over."""
    ana = await chat()
    ana.type("short\r")
    await ana.shows("short")
    keys = f"{PASTE}/edit {'y' * 70_000}{PASTED}\r"  # pasted: one key press, not 70,000
    for start in range(0, len(keys), 8192):  # a pipe holds 64 KiB: the app reads meanwhile
        ana.type(keys[start : start + 8192])
        await asyncio.sleep(0.01)
    line = await ana.shows("not sent")
    assert "too_long" in line and ana.state.connected
