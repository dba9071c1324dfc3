"""The renderer: remote text shown as text, styled by Rich, converted for prompt_toolkit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.style import Style

from nexus.client import render

HOSTILE = [
    "\x1b[31mred\x1b[0m",  # SGR colour
    "\x1b]0;pwned title\x07",  # OSC window title, BEL-ended
    "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink, ST-ended
    "\x9b2J",  # 8-bit CSI: clear screen
    "\x1bP+q544e\x1b\\",  # DCS request
    "a\x07b\x08c\x7fd\x85e",  # BEL, BS, DEL, C1 NEL
    "\u202eevil\u202c",  # right-to-left override
]


def test_clean_strips_escape_sequences_and_controls():
    """CSI, OSC, DCS, 8-bit C1 sequences and stray controls vanish; their text stays."""
    cleaned = [render.clean(text) for text in HOSTILE]
    assert cleaned == ["red", "", "link", "", "", "abcde", "evil"]


@given(st.text())
def test_clean_never_leaves_a_control_character(text):
    """Whatever arrives, only printable characters (and newlines) reach the screen."""
    out = render.clean(text)
    assert not any(
        (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\x1b" for c in out
    )


def test_markup_in_user_text_is_shown_as_typed():
    """`[bold red]x[/]` from a peer is printed literally, not interpreted."""
    line = render.message({"from": "eve", "text": "[bold red]x[/] [link=http://e]y", "ts": 0})
    assert line.plain.endswith("eve: [bold red]x[/] [link=http://e]y")
    rows = render.rows(line, 80)
    assert "".join(text for _, text in rows[0]).endswith("[bold red]x[/] [link=http://e]y")


def test_user_names_with_escapes_are_cleaned_too():
    """A sender name cannot smuggle escape sequences either."""
    line = render.message({"from": "\x1b[2Jeve", "text": "hi", "ts": 0})
    assert "\x1b" not in line.plain and "eve: hi" in line.plain


def test_user_colour_is_stable_and_spreads_names():
    """The same name (any case) always gets the same colour; names differ across the palette."""
    assert render.user_style("Mike") == render.user_style("mike")
    colours = {render.user_style(f"user{i}") for i in range(50)}
    assert len(colours) > 6


def test_long_lines_wrap_to_the_width():
    """A 10,000-character word folds into rows no wider than the pane."""
    rows = render.rows(render.message({"from": "a", "text": "x" * 10_000, "ts": 0}), 50)
    assert len(rows) > 190
    assert all(sum(len(text) for _, text in row) <= 50 for row in rows)


def test_mentions_of_my_name_are_highlighted():
    """My name as a word, with or without @, any case, is reversed; a longer word is not."""
    pattern = render.mention_pattern("ana")
    line = render.message({"from": "bob", "text": "hi @Ana and ana, not banana", "ts": 0}, pattern)
    marked = [line.plain[s.start : s.end] for s in line.spans if s.style == render.MENTION]
    assert marked == ["@Ana", "ana"]


def test_direct_messages_are_marked_with_their_direction():
    """Received DMs read `DM <- sender`, sent ones `DM -> recipient`."""
    msg = {"from": "mike", "to": "ana", "text": "yo", "ts": 0}
    assert "DM <- mike: yo" in render.direct(msg, "ana").plain
    assert "DM -> ana: yo" in render.direct(msg, "Mike").plain


def test_room_events_read_as_sentences():
    """Join, leave, presence and topic events become one notice line each."""
    lines = [
        render.event_line({"event": "joined", "room": "tech", "user": "bob"}),
        render.event_line({"event": "left", "room": "tech", "user": "bob"}),
        render.event_line({"event": "presence", "user": "bob", "online": False}),
        render.event_line({"event": "topic", "room": "tech", "topic": "[b]x", "by": "bob"}),
    ]
    assert [line.plain[6:] for line in lines] == [
        "-- bob joined #tech",
        "-- bob left #tech",
        "-- bob is offline",
        "-- bob set the topic of #tech: [b]x",
    ]
    assert render.event_line({"event": "hello"}) is None


def test_rich_styles_become_prompt_toolkit_styles():
    """Colours, attributes and dim text map to prompt_toolkit style strings."""
    assert render.pt_style(Style.parse("bold red on blue")) == "fg:ansired bg:ansiblue bold"
    assert render.pt_style(Style.parse("#e06c75 italic")) == "fg:#e06c75 italic"
    assert render.pt_style(Style(dim=True)) == "fg:ansibrightblack"
    assert render.pt_style(None) == ""


def test_tables_render_to_rows_without_escape_codes():
    """A Rich table becomes plain fragment rows (styles apart), hostile cells cleaned."""
    table = render.rooms_table(
        [{"name": "tech", "topic": "\x1b]0;x\x07[red]t", "owner": None, "members": 2, "online": 1}],
        ["tech"],
    )
    text = "\n".join("".join(t for _, t in row) for row in render.rows(table, 60))
    assert "#tech" in text and "[red]t" in text and "\x1b" not in text
