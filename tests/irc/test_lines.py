"""IRC lines without sockets: parsing, building, tag escaping, splitting, line safety."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nexus.server.irc.lines import build, parse, safe, split_text, strip_formatting, tagged


def test_parse_reads_tags_source_command_and_trailing() -> None:
    """Tags (escaped), source, upper-cased command, middle and trailing parameters."""
    line = parse(rb"@label=a\sb\:c;+draft/reply=general.1;flag :ana!a@h privmsg #x :hi there")
    assert line is not None
    assert line.tags == {"label": "a b;c", "+draft/reply": "general.1", "flag": ""}
    assert line.source == "ana!a@h"
    assert line.command == "PRIVMSG"
    assert line.params == ["#x", "hi there"]


def test_parse_drops_cr_and_nul_and_replaces_invalid_utf8() -> None:
    """A trailing CR goes, NULs vanish, invalid UTF-8 becomes U+FFFD."""
    line = parse(b"PRIVMSG #x :caf\xe9\x00!\r")
    assert line is not None and line.params == ["#x", "caf\ufffd!"]


def test_parse_splits_on_spaces_only() -> None:
    """Characters str.split() takes for white space (U+001F, U+00A0) stay in the
    parameters: a line of one such character is a command, not a crash."""
    line = parse(b"\x1f")
    assert line is not None and line.command == "\x1f" and line.params == []
    line = parse("PRIVMSG a\xa0b c".encode())
    assert line is not None and line.params == ["a\xa0b", "c"]


def test_parse_of_blank_and_commandless_lines_is_none() -> None:
    """Blank lines, a lone source and lone tags are nothing to answer."""
    for raw in (b"", b"   ", b"\r", b":src", b"@a=b", b"@a=b :src", b":"):
        assert parse(raw) is None, raw


def test_build_sends_text_as_trailing_and_words_bare() -> None:
    """PRIVMSG text and numerics' last parameter are trailing; 004's is bare; an
    empty or colon-led parameter is always trailing."""
    assert build("s", "PRIVMSG", "#x", "hi") == ":s PRIVMSG #x :hi"
    assert build("s", "353", "ana", "=", "#x", "ana") == ":s 353 ana = #x :ana"
    assert build("s", "004", "ana", "s", "v", "i", "ont") == ":s 004 ana s v i ont"
    assert build(None, "JOIN", "#x") == "JOIN #x"
    assert build(None, "JOIN", ":x") == "JOIN ::x"
    assert build(None, "PING", "") == "PING :"


def test_build_escapes_tags_and_never_lets_cr_lf_nul_through() -> None:
    """Tag values are escaped; CR, LF and NUL in parameters become spaces."""
    line = build("s", "PRIVMSG", "#x", "a\r\nQUIT\x00", tags={"k": "a;b c\\\n", "f": ""})
    assert line == r"@k=a\:b\sc\\\n;f :s PRIVMSG #x :a  QUIT "
    assert "\r" not in line and "\n" not in line and "\x00" not in line


def test_a_tag_added_to_a_built_line_is_escaped_once() -> None:
    """`tagged` escapes the value it adds as `build` does, and a value read from
    a client (unescaped by `parse`) goes back out exactly as the client wrote it."""
    sent = r"@label=a\r\nQUIT\s:x\:y\\z PING :one"
    read = parse(sent.encode())
    assert read is not None
    label = read.tags["label"]
    assert label == "a\r\nQUIT :x;y\\z"
    line = tagged(build("s", "PONG", "s", "one", tags={"time": "t"}), "label", label)
    assert line == r"@label=a\r\nQUIT\s:x\:y\\z;time=t :s PONG s one"
    assert tagged("PONG s", "batch", "L1") == "@batch=L1 PONG s"
    again = parse(line.encode())
    assert again is not None and again.tags == {"label": label, "time": "t"}


def test_safe_keeps_ordinary_text_as_it_is() -> None:
    """Text without CR, LF or NUL is returned unchanged (tabs and emoji included)."""
    assert safe("tab\there 🎉") == "tab\there 🎉"


def test_strip_formatting_removes_colours_and_styles() -> None:
    """Bold, colour with its digits, hex colour, reset, italics, underline are dropped."""
    assert strip_formatting("\x02b\x02 \x0304,12red\x03 \x04ff0000hex \x1di\x1d\x1fu\x0f") == (
        "b red hex iu"
    )


@given(st.text(min_size=1, max_size=3000), st.integers(min_value=60, max_value=500))
def test_split_text_fits_every_piece_and_loses_nothing(text: str, room: int) -> None:
    """Every piece fits `room` bytes, holds no line break, and the pieces of each line
    join back to it (empty lines become one space)."""
    pieces = split_text(text, room)
    assert all(len(piece.encode()) <= room for piece in pieces)
    assert not any("\n" in piece or "\r" in piece for piece in pieces)
    expected = [line.replace("\x00", "") or " " for line in text.replace("\r", "").split("\n")]
    rebuilt: list[str] = []
    for line in expected:
        taken = ""
        while taken != line:
            taken += pieces[len(rebuilt)]
            rebuilt.append("")
        assert taken == line
    assert len(rebuilt) == len(pieces)


def test_split_text_cuts_at_a_space_and_never_inside_a_character() -> None:
    """A long line is cut after a space near the end; multi-byte characters stay whole."""
    assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb ", "cccc"]
    pieces = split_text("é" * 100, 51)
    assert all(len(p.encode()) <= 51 for p in pieces) and "".join(pieces) == "é" * 100
