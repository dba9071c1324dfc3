"""Protocol 3's formatting drawn in a terminal: the blocks and spans that
nexus/protocol/markup.py parses a message's text into, as one Rich Text.

Every piece of the text lands in the Text as data, with a style beside it,
never as markup, so nothing a peer types can become a Rich or prompt_toolkit
instruction; the text is cleaned of escapes before it gets here. Each block
keeps a row of its own: a code block's lines are never joined to the prose
around them, and carry a gutter so a wrapped code line still reads as code.
A link shows its label and, when they differ, its URL: a terminal has no
other way to tell where it goes.
"""

from __future__ import annotations

from rich.text import Text

from nexus.protocol import markup

CODE = "#e5c07b on #2c313a"  # spans and blocks of code
LINK = "underline #61afef"  # links to the web and to messages (`#room/12`)
URL = "#7f848e"  # the address shown after a link's label
GUTTER = "#7f848e"  # the bar before quote and code lines
CODE_GUTTER = "▌ "
QUOTE_GUTTER = "▎ "
BULLET = "• "


def formatted(text: str) -> Text:
    """`text` (cleaned) drawn with its formatting: one row of the Text a block line."""
    out = Text()
    for index, block in enumerate(markup.parse(text)):
        if index:
            out.append("\n")
        if block.kind == "code":
            _code(out, block)
            continue
        if block.kind == "quote":
            out.append(QUOTE_GUTTER, style=GUTTER)
        elif block.kind == "item":
            out.append(BULLET if block.marker == "-" else f"{block.marker} ", style="bold")
        for span in block.spans:
            _span(out, span)
    return out


def _code(out: Text, block: markup.Block) -> None:
    lines = block.spans[0].text.split("\n") if block.spans else [""]
    if block.lang:
        out.append(CODE_GUTTER, style=GUTTER).append(block.lang, style=f"italic {GUTTER}")
        out.append("\n")
    for index, line in enumerate(lines):
        if index:
            out.append("\n")
        out.append(CODE_GUTTER, style=GUTTER).append(line or " ", style=CODE)


def _span(out: Text, span: markup.Span) -> None:
    styles = " ".join(sorted(span.styles))
    if span.kind == "code":
        out.append(span.text, style=CODE)
    elif span.kind in ("link", "message"):
        out.append(span.text, style=f"{styles} {LINK}".strip())
        if span.kind == "link" and span.url is not None and span.url != span.text:
            out.append(f" <{span.url}>", style=URL)
    else:
        out.append(span.text, style=styles or "")
