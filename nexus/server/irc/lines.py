"""IRC lines, sans I/O: parsing what a client sends, building what it gets.

Follows https://modern.ircdocs.horse: `@tags :source COMMAND params :trailing`.
A line is at most 512 bytes without its tags (CR LF included) and its tags at
most 8,191 more; text that does not fit is cut at character boundaries into
several lines, never mid-character, and CR, LF and NUL never reach a client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LINE_MAX = 512  # bytes of a line without tags, CR LF included (RFC 1459)
TAGS_MAX = 8_191  # bytes of a client's tags, '@' and the space included (IRCv3)
CLIENT_TAGS_MAX = 4_094  # bytes of the tags a client sends, without '@' and the space (IRCv3)
INPUT_MAX = LINE_MAX + TAGS_MAX  # the longest line a client may send

_TAG_ESCAPES = {";": r"\:", " ": r"\s", "\\": "\\\\", "\r": r"\r", "\n": r"\n"}
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPE_RE = re.compile(r"[; \\\r\n]")
_TAG_UNESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)

# What a client's text may hold that a Nexus message may not: mIRC formatting
# (bold, colour with its digits, reset, reverse, italics, underline...).
_FORMATTING_RE = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6})?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
# Commands whose last parameter is text: always sent as a trailing parameter,
# as servers do, so clients that read only the trailing one get it; a target
# before it (`PART #room` without a reason) is not text.
_TEXT = frozenset({"QUIT", "AWAY", "ERROR", "CAP"})
_TEXT_AFTER = {"PRIVMSG": 1, "NOTICE": 1, "TOPIC": 1, "PART": 1, "KICK": 2}  # its targets
_BARE_NUMERICS = frozenset({"004", "221", "324", "333"})  # whose last parameter is a word
# Control characters that must never reach a client raw.
_UNSAFE_RE = re.compile(r"[\x00\r\n]")


@dataclass(frozen=True, slots=True)
class Line:
    """One parsed client line."""

    command: str  # upper case
    params: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    utf8: bool = True  # False: invalid UTF-8 was replaced (U+FFFD)
    tags_size: int = 0  # bytes of its tags, without '@' and the space


def escape_tag(value: str) -> str:
    return _TAG_ESCAPE_RE.sub(lambda m: _TAG_ESCAPES[m.group()], value)


def _tag(key: str, value: str) -> str:
    """One tag as a line carries it: every value the server writes is escaped
    here and only here, from its plain text (a client's label included, which
    `parse` unescaped), so none is sent raw and none is escaped twice."""
    return f"{key}={escape_tag(value)}" if value else key


def unescape_tag(value: str) -> str:
    return _TAG_UNESCAPE_RE.sub(lambda m: _TAG_UNESCAPES.get(m.group(1), m.group(1)), value)


def parse(raw: bytes) -> Line | None:
    """A client's line (without LF; a trailing CR is dropped) -> Line, None if blank.

    Invalid UTF-8 is decoded with replacement characters (`utf8` says so): a
    client's wrong encoding costs it some characters, never the connection."""
    try:
        text, utf8 = raw.decode(), True
    except UnicodeDecodeError:
        text, utf8 = raw.decode("utf-8", "replace"), False
    text = text.rstrip("\r").replace("\x00", "")
    tags: dict[str, str] = {}
    tags_size = 0
    if text.startswith("@"):
        tag_text, _, text = text[1:].partition(" ")
        tags_size = len(tag_text.encode())
        for item in tag_text.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = unescape_tag(value)
    text = text.lstrip(" ")
    source = None
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
    text = text.lstrip(" ")
    if not text:
        return None
    head, sep, trailing = text.partition(" :")
    # Only spaces separate parameters: str.split() would also split on
    # characters such as U+001F, leaving a line with no command at all.
    params = [param for param in head.split(" ") if param]
    if sep:
        params.append(trailing)
    elif head.startswith(":"):  # a command of ":..." alone
        return None
    command = params.pop(0).upper()
    return Line(command, params, tags, source, utf8, tags_size)


def strip_formatting(text: str) -> str:
    """A client's text without mIRC formatting codes (Nexus text is plain)."""
    return _FORMATTING_RE.sub("", text)


def safe(text: str) -> str:
    """Text that cannot end a line or smuggle a NUL: CR, LF and NUL become spaces."""
    if "\r" in text or "\n" in text or "\x00" in text:
        return _UNSAFE_RE.sub(" ", text)
    return text


def build(
    source: str | None, command: str, *params: str, tags: dict[str, str] | None = None
) -> str:
    """One line (without CR LF). The last parameter is sent as trailing when
    it is text or could not otherwise be read back (empty, a space, a leading
    colon)."""
    parts: list[str] = []
    if tags:
        parts.append("@" + ";".join(_tag(k, v) for k, v in tags.items()))
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        *middle, last = (safe(p) for p in params)
        parts.extend(middle)
        after = _TEXT_AFTER.get(command)
        if after is not None:
            text = len(params) > after
        else:
            text = command in _TEXT or (command.isdecimal() and command not in _BARE_NUMERICS)
        if text or not last or " " in last or last.startswith(":"):
            last = ":" + last
        parts.append(last)
    return " ".join(parts)


def tagged(line: str, key: str, value: str) -> str:
    """A built `line` with one more tag in front (a label, a batch reference)."""
    tag = _tag(key, value)
    if line.startswith("@"):
        return f"@{tag};{line[1:]}"
    return f"@{tag} {line}"


def split_text(text: str, room: int) -> list[str]:
    """Cuts `text` into pieces of at most `room` UTF-8 bytes each, on a space
    where one is near, never inside a character. Lines of the text (LF) are
    pieces of their own; an empty line becomes a single space so it shows."""
    pieces: list[str] = []
    for line in text.replace("\r", "").split("\n"):
        line = line.replace("\x00", "")
        encoded = line.encode()
        if not encoded:
            pieces.append(" ")
            continue
        while len(encoded) > room:
            cut = room
            while cut > 0 and (encoded[cut] & 0xC0) == 0x80:  # not inside a character
                cut -= 1
            space = encoded.rfind(b" ", cut - room // 4, cut)
            if space > 0:
                cut = space + 1
            pieces.append(encoded[:cut].decode())
            encoded = encoded[cut:]
        pieces.append(encoded.decode())
    return pieces
