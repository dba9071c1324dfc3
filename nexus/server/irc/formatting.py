"""Protocol 3's formatting as IRC shows it, and IRC's as Nexus keeps it.

Out: bold and italic become IRC's codes (`\\x02`, `\\x1d`); strike and
code keep their delimiters (`~~`, `` ` ``), as typed: irssi 1.4 and
WeeChat draw IRC's strike and monospace codes (`\\x1e`, `\\x11`) as
reverse-video letters, so "`v2`" would read "Qv2Q". A code block is one
line per line of code, `[label](url)` "label <url>"; quotes, items and
`#room/123` read as typed. A message sent `plain` goes as typed. In: a
client's codes become the delimiters (bold `**`, italic `*`, strike `~~`,
monospace `` ` ``); colours, underline, reverse and other control
characters go.
"""

from __future__ import annotations

import re

from nexus.protocol import markup

_CODES = (("bold", "\x02"), ("italic", "\x1d"))  # what IRC clients draw
_RESET = "\x0f"
_DELIMITERS = {"\x02": "**", "\x1d": "*", "\x1e": "~~", "\x11": "`"}
_KEPT = re.compile(r"([\x02\x1d\x1e\x11\x0f])")
# Colours (mIRC and hex), reverse and underline: nothing in the protocol says them.
_OTHER = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6})?|[\x16\x1f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def to_irc(text: str) -> str:
    """A message's text as IRC lines show it (LF between lines)."""
    if not _formatted(text):
        return text
    lines: list[str] = []
    for block in markup.parse(text):
        if block.kind == "code":
            lines.extend(block.spans[0].text.split("\n"))
            continue
        lead = "> " if block.kind == "quote" else f"{block.marker} " if block.kind == "item" else ""
        lines.append(lead + "".join(map(_span, block.spans)))
    return "\n".join(lines)


def _formatted(text: str) -> bool:
    """Whether `text` has a character formatting needs: most messages have
    none, and this is an IRC broadcast's path (six scans cost a quarter of
    a regex search)."""
    return "*" in text or "_" in text or "`" in text or "[" in text or "~" in text or "\\" in text


def _span(span: markup.Span) -> str:
    if span.kind == "code":
        return f"`{span.text}`"
    text = span.text
    if span.kind == "link" and span.url != span.text:
        text = f"{text} <{span.url}>"
    codes = "".join(code for style, code in _CODES if style in span.styles)
    if codes:
        text = f"{codes}{text}{codes[::-1]}"
    return f"~~{text}~~" if "strike" in span.styles else text


def bare(text: str) -> str:
    """A message's text with no formatting at all (a thread reply's quote
    of its root): its words as a reader sees them, code as typed."""
    if not _formatted(text):
        return text
    return " ".join(
        block.spans[0].text if block.kind == "code" else "".join(s.text for s in block.spans)
        for block in markup.parse(text)
    )


def from_irc(text: str) -> str:
    """A client's message text as Nexus keeps it: its styles as the
    protocol's delimiters, nothing else of IRC's codes or controls."""
    if text.isprintable():  # no codes at all: most lines
        return text
    kept = _OTHER.sub("", text)
    out: list[str] = []
    open_: list[str] = []
    for piece in _KEPT.split(kept):
        if not piece:
            continue
        if piece == _RESET:
            while open_:
                _close(out, open_.pop())
        elif piece in _DELIMITERS:
            delimiter = _DELIMITERS[piece]
            if delimiter in open_:
                open_.remove(delimiter)
                _close(out, delimiter)
            else:
                open_.append(delimiter)
                out.append(delimiter)
        else:
            out.append(_CONTROL.sub("", piece))
    while open_:
        _close(out, open_.pop())
    return "".join(out)


def _close(out: list[str], delimiter: str) -> None:
    """Closes a run: an empty one goes; spaces it ended with move outside
    it (a delimiter after a space closes nothing)."""
    if out and out[-1] == delimiter:
        out.pop()
        return
    last = out[-1] if out else ""
    trimmed = last.rstrip()
    if out and trimmed != last:
        out[-1] = trimmed
        out.append(delimiter + last[len(trimmed) :])
    else:
        out.append(delimiter)
