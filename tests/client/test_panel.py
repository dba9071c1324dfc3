"""The side panel (buffers and people) hides on a narrow terminal and with a key, through
the real binary in tmux."""

from __future__ import annotations

import re

from tests.client.test_e2e_tmux import MESSAGE_ROW


def _said(screen: str) -> str:
    """The text of the last message row on `screen`."""
    rows = [MESSAGE_ROW.match(row) for row in screen.splitlines()]
    return [match.group(2) for match in rows if match][-1]


def test_a_narrow_terminal_hides_the_panel_and_the_text_takes_the_width(tmux, server_port):
    """At 40x12 the panel goes and the messages take every column; the status bar says
    which buffer number this is. At 100 columns it is back."""
    tmux.chat("ana", server_port, "--register")
    tmux("resize-window", "-t", "ana", "-x", "40", "-y", "12")
    tmux.keys("ana", "a message long enough to need more than eight columns")
    # The message's row, not the input line, which shows the same words before Enter.
    screen = tmux.wait_for("ana", lambda s: "Buffers" not in s and "│ a message long enough" in s)
    assert "[1] ana@#general" in screen, screen
    tmux("resize-window", "-t", "ana", "-x", "100", "-y", "30")
    tmux.wait_for("ana", "Buffers")


def test_alt_shift_n_hides_and_shows_the_panel(tmux, server_port):
    """Alt-Shift-N, WeeChat's key for its nick list, hides the panel and shows it again."""
    tmux.chat("ana", server_port, "--register")
    tmux.keys("ana", "hello")
    screen = tmux.wait_for("ana", re.compile(r"ana │ hello"))
    assert "Buffers" in screen
    tmux.press("ana", "M-N")
    screen = tmux.wait_for("ana", lambda s: "Buffers" not in s)
    assert not any(row.rstrip().endswith("│") for row in screen.splitlines()), screen
    assert _said(screen).startswith("hello")
    tmux.press("ana", "M-N")
    tmux.wait_for("ana", "Buffers")
