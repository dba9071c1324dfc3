"""Protocol 3's text formatting: a small, safe Markdown subset, parsed into
blocks and spans that a client draws with its own means (styles in a
terminal, DOM nodes on the page, formatting codes on IRC); nothing of the
text is ever markup for the renderer.

Blocks, one line each but code: fenced code blocks (```` ```lang ````, to a
closing fence or the end), `> ` quote lines, `- ` and `1. ` list items,
plain lines (`# heading` included: shown as typed). Spans: `**bold**`,
`*italic*` and `_italic_` (an underscore inside a word is a letter:
snake_case stays), `~~strike~~`, `` `code` ``, `[label](url)` with an
http, https or mailto URL (else the text as typed), bare http(s) URLs, and
`#room/123`, a link to message 123 of #room. `\\` takes the next
punctuation character as it is. A message sent with `plain: true` is never
parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Block", "Span", "code_free", "parse"]

STYLES = ("bold", "italic", "strike")


# Span and Block are not frozen, though nothing changes them: a frozen
# dataclass's __init__ sets each field through object.__setattr__, a third
# of a whole parse.
@dataclass(slots=True)
class Span:
    """A run of text: `kind` is "text", "code", "link" (to `url`) or
    "message" (`room` and `seq`); `styles` are those of text and links."""

    text: str
    kind: str = "text"
    styles: frozenset[str] = frozenset()
    url: str | None = None
    room: str | None = None
    seq: int | None = None


@dataclass(slots=True)
class Block:
    """A line, or a code block: `kind` is "line", "quote", "item" (with its
    `marker`, `-` or `1.`) or "code" (its `lang`, and one text span)."""

    kind: str
    spans: tuple[Span, ...] = field(default_factory=tuple)
    marker: str = ""
    lang: str = ""


_FENCE = re.compile(r"^ {0,3}```\s*([\w+#.-]*)\s*$")
_ITEM = re.compile(r"^(-|\d{1,9}\.) (.*)$", re.S)
_URL = re.compile(r"(?:https?://)[^\s<>]+[^\s<>.,;:!?\"')\]]")
_MESSAGE = re.compile(r"#([a-z0-9][a-z0-9_-]{0,31})/([1-9]\d{0,17})\b")
_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?://|mailto:)[^\s()]+)\)")
_ESCAPABLE = frozenset("\\`*_~[]()#>-.!|{}+")
_DELIMITERS = (("**", "bold"), ("~~", "strike"), ("*", "italic"), ("_", "italic"))
# Where a span may begin: an escape, code, a link, a message link, a
# delimiter; every other character is text (`spans` skips to the next).
_SPECIAL = re.compile(r"[\\`\[#*~_]|https?://")


def parse(text: str) -> list[Block]:
    """`text`'s blocks, in order."""
    blocks: list[Block] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            end = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j])), len(lines))
            code = "\n".join(lines[i + 1 : end])
            blocks.append(Block("code", (Span(code, "code"),), lang=fence.group(1)))
            i = end + 1
            continue
        if line.startswith(">"):
            blocks.append(Block("quote", tuple(spans(line[1:].removeprefix(" ")))))
        elif item := _ITEM.match(line):
            blocks.append(Block("item", tuple(spans(item.group(2))), marker=item.group(1)))
        else:
            blocks.append(Block("line", tuple(spans(line))))
        i += 1
    return blocks


def spans(text: str, styles: frozenset[str] = frozenset()) -> list[Span]:
    """The spans of one line of text, under `styles`."""
    out: list[Span] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            out.append(Span("".join(plain), styles=styles))
            plain.clear()

    i = 0
    while i < len(text):
        found = _SPECIAL.search(text, i)  # runs of ordinary characters in one step
        if found is None:
            plain.append(text[i:])
            break
        if found.start() > i:
            plain.append(text[i : found.start()])
            i = found.start()
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            plain.append(text[i + 1])
            i += 2
            continue
        if char == "`":
            end = text.find("`", i + 1)
            if end > i + 1:
                flush()
                out.append(Span(text[i + 1 : end], "code"))
                i = end + 1
                continue
        if char == "[" and (link := _LINK.match(text, i)):
            flush()
            out.append(Span(link.group(1), "link", styles, url=link.group(2)))
            i = link.end()
            continue
        if char == "h" and (url := _URL.match(text, i)) and _word_start(text, i):
            flush()
            out.append(Span(url.group(0), "link", styles, url=url.group(0)))
            i = url.end()
            continue
        if char == "#" and (message := _MESSAGE.match(text, i)) and _word_start(text, i):
            flush()
            room, seq = message.group(1), int(message.group(2))
            out.append(Span(message.group(0), "message", styles, room=room, seq=seq))
            i = message.end()
            continue
        styled = _styled(text, i)
        if styled is not None:
            delimiter, style, end = styled
            flush()
            inner = text[i + len(delimiter) : end]
            out.extend(spans(inner, styles | {style}))
            i = end + len(delimiter)
            continue
        plain.append(char)
        i += 1
    flush()
    return out


def _styled(text: str, i: int) -> tuple[str, str, int] | None:
    """The delimiter opening a styled run at `i`, its style and where the
    run closes; None if none opens there."""
    for delimiter, style in _DELIMITERS:
        if not text.startswith(delimiter, i):
            continue
        start = i + len(delimiter)
        if start >= len(text) or text[start].isspace():
            return None
        if delimiter in "*_" and not _word_start(text, i):
            return None  # inside a word (snake_case, 2*3*4) a single one is a character
        end = start
        while True:
            end = text.find(delimiter, end + 1)
            if end < 0:
                return None
            if text[end - 1].isspace() or text[end - 1] == "\\":
                continue
            after = end + len(delimiter)
            if delimiter in "*_" and after < len(text) and text[after].isalnum():
                continue
            if delimiter == "*" and text.startswith("**", end):
                end += 1  # a bold run's delimiter is not this one's end
                continue
            return delimiter, style, end
    return None


def _word_start(text: str, i: int) -> bool:
    return i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")


def code_free(text: str) -> str:
    """`text` without its code blocks and spans (each becomes a space):
    where mentions are looked for."""
    kept: list[str] = []
    for block in parse(text):
        if block.kind != "code":
            kept.append(" ".join(span.text for span in block.spans if span.kind != "code"))
    return "\n".join(kept)
