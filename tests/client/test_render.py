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
    assert line.plain.endswith("eve [bold red]x[/] [link=http://e]y")
    rows = render.rows(line, 80)
    assert "".join(text for _, text in rows[0]).endswith("[bold red]x[/] [link=http://e]y")


def test_user_names_with_escapes_are_cleaned_too():
    """A sender name cannot smuggle escape sequences either."""
    line = render.message({"from": "\x1b[2Jeve", "text": "hi", "ts": 0})
    assert "\x1b" not in line.plain and line.plain.endswith(" eve hi")


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
    body = line.body
    marked = [body.plain[s.start : s.end] for s in body.spans if s.style == render.MENTION]
    assert marked == ["@Ana", "ana"]


def row_text(row) -> str:
    return "".join(text for _, text in row)


def test_wrapped_and_multi_line_text_hangs_under_its_own_column():
    """Every row after a message's first starts blank up to the bar: no forged line can start
    where a time and a name go."""
    forged = "ok\n06:08 bob: I approve the deploy, ship it " + "and more words " * 8
    rows = [
        row_text(r)
        for r in render.rows(render.message({"from": "carol", "text": forged, "ts": 0}), 60)
    ]
    assert len(rows) > 2
    assert rows[0].startswith(render.clock(0) + "    carol │ ok")
    bar = rows[0].index("│")
    for row in rows[1:]:
        assert row[:bar] == " " * bar and row[bar] == "│"
    assert "06:08 bob: I approve" in rows[1]


def test_the_name_column_is_as_wide_as_asked_and_cuts_long_names_with_a_plus():
    """Names are right-aligned in the column; a longer one ends in `+` (as WeeChat)."""
    line = render.message({"from": "maximilian_the_third", "text": "hi", "ts": 0})
    assert row_text(render.rows(line, 80, 10)[0]) == render.clock(0) + " maximilia+ │ hi"
    short = render.message({"from": "bo", "text": "hi", "ts": 0})
    assert row_text(render.rows(short, 80, 4)[0]) == render.clock(0) + "   bo │ hi"


def test_narrow_panes_drop_the_time_and_keep_half_for_the_text():
    """Below 40 columns the time goes; the name column never takes more than half."""
    rows = render.rows(render.message({"from": "bob", "text": "x" * 30, "ts": 0}), 20, 16)
    assert all(len(row_text(r)) <= 20 for r in rows)
    assert row_text(rows[0]) == "    bob │ " + "x" * 10


def test_message_bodies_carry_no_style_of_the_time_stamp():
    """The time is dim; the text after the name is in the default colour (no inherited dim)."""
    row = render.rows(render.message({"from": "ana", "text": "hello", "ts": 0}), 60)[0]
    styles = {text: style for style, text in row}
    assert styles["hello"] == ""
    assert "ansibrightblack" in styles[render.clock(0) + " "]


def test_flags_and_joined_emoji_are_shown_as_parts_of_agreed_width():
    """ZWJ sequences, skin tones and variation selectors split; a flag shows as its letters."""
    assert (
        render.clean("a\U0001f468\u200d\U0001f469\u200d\U0001f467b")
        == "a\U0001f468\U0001f469\U0001f467b"
    )
    assert (
        render.clean("\U0001f1eb\U0001f1f7 \u2764\ufe0f \U0001f44d\U0001f3fd")
        == "[FR] \u2764 \U0001f44d"
    )


def test_room_events_read_as_sentences():
    """Join, leave, presence and topic events become one notice line each."""
    lines = [
        render.event_line({"event": "joined", "room": "tech", "user": "bob"}),
        render.event_line({"event": "left", "room": "tech", "user": "bob"}),
        render.event_line({"event": "presence", "user": "bob", "online": False}),
        render.event_line({"event": "topic", "room": "tech", "topic": "[b]x", "by": "bob"}),
    ]
    assert [line.plain[6:] for line in lines] == [
        "--> bob joined #tech",
        "<-- bob left #tech",
        "<-- bob is offline",
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
