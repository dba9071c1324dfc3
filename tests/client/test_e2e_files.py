"""End to end: files between the installed nexus-server (with a web port) and nexus-chat
screens in tmux, and `nexus-chat send --file` from a script."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.client.test_e2e_tmux import pane_rows
from tests.client.tmux import CHAT, PASSWORD, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def files_port(tmp_path) -> Iterator[int]:
    """A nexus-server process with files (its web port on a free port too)."""
    yield from start_server(tmp_path, "--web-port", "0")


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (30, 200, 30)).save(out, "PNG")
    return out.getvalue()


def reference(screen: str, text: str) -> int:
    """The [seq] shown after the message saying `text`."""
    match = re.search(rf"{re.escape(text)} \[(\d+)\]", screen)
    assert match, screen
    return int(match.group(1))


def test_an_upload_shows_its_row_and_preview_and_saves_the_same_bytes(tmux, files_port, tmp_path):
    source = tmp_path / "green.png"
    source.write_bytes(picture())
    tmux.chat("ana", files_port, "--register")
    tmux.chat("bob", files_port, "--register")
    tmux.keys("ana", f"/upload {tmp_path}/gr", enter=False)
    tmux.press("ana", "Tab")  # completes the path from the disk
    tmux.wait_for("ana", re.compile(r"(?m)^> /upload \S+/green\.png$"))
    tmux.keys("ana", "the lawn")
    screen = tmux.wait_for("bob", "📎 green.png")
    rows = pane_rows(screen)
    said = next(i for i, row in enumerate(rows) if "the lawn" in row)
    assert re.search(r"📎 green\.png  \d+ B  image/png", rows[said + 1]), screen
    screen = tmux.wait_for("bob", "▀▀▀▀")  # the preview, in half blocks
    preview = [row for row in pane_rows(screen) if "▀" in row]
    assert 1 <= len(preview) <= 8, screen
    assert all(re.search(r"│ ▀+\s*$", row) for row in preview), screen

    saved = tmp_path / "saved" / "lawn.png"
    tmux.keys("bob", f"/save {reference(screen, 'the lawn')} {saved}")
    tmux.wait_for("bob", "│ saved ")  # the note, not the typed path (".../saved/...")
    assert saved.read_bytes() == source.read_bytes()


def test_send_file_from_a_script_shows_on_the_screen(tmux, files_port, tmp_path):
    tmux.chat("bob", files_port, "--register")
    notes = tmp_path / "notes.txt"
    notes.write_text("minutes of the meeting\n")
    env = {**os.environ, "NEXUS_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    command = [CHAT, "send", "127.0.0.1", str(files_port), "--user", "ana", "--room", "general"]
    registered = subprocess.run(
        [CHAT, "login", "127.0.0.1", str(files_port), "--user", "ana", "--register"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert registered.returncode == 0, registered.stderr
    sent = subprocess.run(
        [*command, "--file", str(notes), "the minutes"],
        env={**env, "NEXUS_PASSWORD": ""},  # the token `login` saved
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (sent.returncode, sent.stderr) == (0, "")
    screen = tmux.wait_for("bob", "📎 notes.txt")
    assert re.search(r"ana │ the minutes \[\d+\]", screen), screen
    assert "23 B  text/plain" in screen
