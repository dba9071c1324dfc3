"""Formatting drawn in the terminal: the markup parser's blocks and spans as styled rows,
and a `plain` message exactly as typed."""

from __future__ import annotations

from nexus.client import formatting, render
from nexus.client.state import ChatState
from tests.client.conftest import room_info


def _rows(text: str, width: int = 120, **fields) -> list[list[tuple[str, str]]]:
    """The body's rows (right of the bar) of a message saying `text`."""
    msg = {"from": "ana", "text": text, "ts": 0, "seq": 1, **fields}
    rows = render.rows(render.message(msg), width)
    return [row[row.index(next(f for f in row if f[1] == " │ ")) + 1 :] for row in rows]


def _style_of(rows, text: str) -> str:
    return next(style for row in rows for style, piece in row if piece == text)


def test_spans_are_drawn_with_their_styles_without_their_delimiters():
    rows = _rows("**loud** *soft* _also_ ~~gone~~ `x = 1` **_both_**")
    assert "".join(t for _, t in rows[0]) == "loud soft also gone x = 1 both"
    assert _style_of(rows, "loud") == "bold"
    assert _style_of(rows, "soft") == _style_of(rows, "also") == "italic"
    assert _style_of(rows, "gone") == "strike"
    assert _style_of(rows, "both") == "bold italic"
    code = _style_of(rows, "x = 1")
    assert code == render.pt_style_of(formatting.CODE) and "bg:" in code  # set apart


def test_links_show_label_and_address_underlined():
    rows = _rows("[the docs](https://example.org/a) or https://example.org/b #den/12")
    text = "".join(t for _, t in rows[0])
    assert text == "the docs <https://example.org/a> or https://example.org/b #den/12"
    for label in ("the docs", "https://example.org/b", "#den/12"):
        assert "underline" in _style_of(rows, label)
    assert "underline" not in _style_of(rows, " <https://example.org/a>")


def test_a_code_block_keeps_its_rows_and_is_never_joined_to_prose():
    rows = _rows("before\n```python\ndef f():\n    return **1**\n```\nafter")
    texts = ["".join(t for _, t in row) for row in rows]
    assert texts[:5] == [
        "before",
        "▌ python",
        "▌ def f():",
        "▌     return **1**",  # no formatting inside code, indentation kept
        "after",
    ]
    assert _style_of(rows, "    return **1**") == render.pt_style_of(formatting.CODE)


def test_quotes_and_list_items_get_their_marks():
    rows = _rows("> said before\n- one\n2. two\n# not a heading")
    texts = ["".join(t for _, t in row) for row in rows]
    assert texts == ["▎ said before", "• one", "2. two", "# not a heading"]


def test_a_plain_message_is_shown_exactly_as_typed():
    source = "**not bold** `x` [a](https://e.org)\n> not a quote"
    rows = _rows(source, plain=True)
    texts = ["".join(t for _, t in row) for row in rows]
    assert texts == ["**not bold** `x` [a](https://e.org)", "> not a quote"]
    assert all(style in ("", render.pt_style_of(render.DIM)) for row in rows for style, _ in row)


def test_nothing_in_formatted_text_is_markup_or_an_escape():
    """Rich markup, prompt_toolkit style words and escapes inside formatting stay text."""
    rows = _rows("**[bold red]x[/]** `\x1b[31mred\x1b]0;title\x07` [<b>](https://e.org/\x1b[2J)")
    text = "".join(t for row in rows for _, t in row)
    assert "\x1b" not in text and "\x07" not in text
    assert text.startswith("[bold red]x[/] red ")
    assert _style_of(rows, "[bold red]x[/]") == "bold"


def test_mentions_are_highlighted_in_the_drawn_text():
    msg = {"from": "bob", "text": "**hey ana** look", "ts": 0, "seq": 1}
    line = render.message(msg, render.mention_pattern("ana"))
    rows = render.rows(line, 80)
    assert any("reverse" in style and text == "ana" for style, text in rows[0])


def test_a_name_in_code_names_nobody():
    """`ana` inside code is neither highlighted nor a mention that rings the bell."""
    msg = {"from": "bob", "text": "`ana` is a variable, ana", "ts": 0, "seq": 1}
    rows = render.rows(render.message(msg, render.mention_pattern("ana")), 120)
    marked = [text for style, text in rows[0] if "reverse" in style]
    assert marked == ["ana"]  # the last one: the code's stays as code
    assert (render.pt_style_of(formatting.CODE), "ana") in rows[0]
    state = ChatState("me", "here")
    state.add_room(room_info("den"))
    state.apply({"event": "message", "room": "den", "seq": 1, "from": "bob", "ts": 0,
                 "text": "try `me --help`\n```\nme\n```"})  # fmt: skip
    state.apply({"event": "message", "room": "den", "seq": 2, "from": "bob", "ts": 0,
                 "text": "`me`", "plain": True})  # fmt: skip
    assert [e.highlight for e in state.rooms["den"].messages()] == [False, True]
