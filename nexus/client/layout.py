"""What the screen is made of: the message pane, the side panel, the header and status bar.

    ┌ #room  topic ──────────────────────┬ buffers ───────┐
    │ 12:04   ana │ text                 │  1 #general    │
    │             │ wrapped text         │  2 #tech  3 @1 │
    │                                    │ people         │
    ├────────────────────────────────────┴────────────────┤
    │ > input line (grows to 5 rows)                      │
    │ ana@#general  online  localhost:9999                │ status bar
    └─────────────────────────────────────────────────────┘

Each part reads the ChatState and nothing else; none of them changes it
except through the callbacks given (a click on a buffer, reaching the top
of the scrollback).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import get_cwidth

from nexus.client import render
from nexus.client.render import Fragments
from nexus.client.state import Buffer, ChatState
from nexus.client.typists import typing_line

SIDE_WIDTH = 24
PANEL_MIN = 70  # narrower terminals hide the side panel: the messages need the columns
WHEEL_ROWS = 3
ELLIPSIS = "…"

STYLE = Style.from_dict(
    {
        "header": "underline",
        "status": "reverse",
        "status.offline": "bg:ansired fg:ansiwhite bold",
        "side.border": "fg:ansibrightblack",
        "side.title": "bold underline",
        "side.current": "reverse bold",
        "side.number": "fg:ansibrightblack",
        "side.unread": "bold ansiyellow",
        "side.highlight": "bold ansired",
        "side.away": "fg:ansibrightblack",
        "side.mark": "bold",
        "marker": "bg:ansiyellow fg:ansiblack",
        "prompt": "bold",
    }
)


def fit(fragments: Fragments, width: int) -> Fragments:
    """`fragments` cut to `width` cells; a cut ends in an ellipsis."""
    out: Fragments = []
    used = 0
    for style, text, *rest in fragments:
        size = get_cwidth(text)
        if used + size <= width:
            out.append((style, text, *rest))  # type: ignore[arg-type]
            used += size
            continue
        kept = ""
        for char in text:
            if used + get_cwidth(kept + char) > width - 1:
                break
            kept += char
        out.append((style, kept + ELLIPSIS))
        return out
    return out


class Fitted(UIControl):
    """One row of fragments made for the width it gets."""

    def __init__(self, make: Callable[[int], Fragments]) -> None:
        self.make = make

    def create_content(self, width: int, height: int) -> UIContent:
        row = self.make(width)
        return UIContent(get_line=lambda i: row, line_count=1)


class MessagePane(UIControl):
    """The current buffer's scrollback, rendering only the rows that fit, newest at the bottom.

    Reaching the top of what is loaded calls `on_top(buffer)`, which fetches older messages,
    and its end, when newer ones are not loaded (`more_after`), `on_end(buffer)`;
    showing the newest message at the bottom, unread until then, calls `on_bottom()`,
    which counts it read and tells the server. A click on a message link (`#room/12`)
    calls `on_link(link)`.
    """

    def __init__(
        self,
        state: ChatState,
        on_top: Callable[[Buffer], None] | None = None,
        on_bottom: Callable[[], None] | None = None,
        on_link: Callable[[str], None] | None = None,
        on_end: Callable[[Buffer], None] | None = None,
    ) -> None:
        self.state = state
        self.on_top = on_top
        self.on_end = on_end
        self.on_bottom = on_bottom
        self.on_link = on_link
        self.height = 24  # of the last render; PageUp moves by about this much
        self._rows: list[Fragments] = []  # as last drawn, for clicks

    def create_content(self, width: int, height: int) -> UIContent:
        self.height = height
        state = self.state
        pane = state.pane
        marked = bool(pane.scroll) and height > 1  # a bar under the view says what waits below
        lines: list[Fragments] = pane.view(
            width, height - marked, state.show_folded, state.clock_format
        )
        buffer = state.current
        fetch = pane.at_top and not pane.cleared and buffer is not None and buffer.more
        if fetch and buffer is not None and self.on_top is not None:
            self.on_top(buffer)
        newer = buffer is not None and buffer.more_after and not pane.scroll
        if newer and buffer is not None and self.on_end is not None:
            self.on_end(buffer)
        unread = buffer is not None and buffer.read_seq < buffer.last_seq
        if unread and not pane.scroll and self.on_bottom is not None:
            self.on_bottom()
        if marked and pane.scroll:
            waiting = render.count(pane.newer, "newer message") if pane.newer else "newer lines"
            lines.append([("class:marker", f" ▼ {waiting} below: PageDown, End ".ljust(width))])
        lines = [[] for _ in range(height - len(lines))] + lines
        self._rows = lines
        return UIContent(get_line=lines.__getitem__, line_count=len(lines))

    def mouse_handler(self, mouse_event: MouseEvent) -> Any:
        if mouse_event.event_type == MouseEventType.SCROLL_UP:
            self.state.pane.scroll_by(WHEEL_ROWS)
        elif mouse_event.event_type == MouseEventType.SCROLL_DOWN:
            self.state.pane.scroll_by(-WHEEL_ROWS)
        elif mouse_event.event_type == MouseEventType.MOUSE_UP and self.on_link is not None:
            y, x = mouse_event.position.y, mouse_event.position.x
            text = "".join(t for _, t, *_ in self._rows[y]) if 0 <= y < len(self._rows) else ""
            link = render.link_at(text, x)
            if link is None:
                return NotImplemented
            self.on_link(link)
        else:
            return NotImplemented
        return None

    def is_focusable(self) -> bool:
        return False


def panel_shown(state: ChatState, columns: int) -> bool:
    """Whether the side panel is drawn on a terminal `columns` wide: as Alt-Shift-N last
    set it, else when there is room for it."""
    return state.panel if state.panel is not None else columns >= PANEL_MIN


def _counts(buffer: Buffer) -> Fragments:
    out: Fragments = []
    if buffer.unread:
        out.append(("class:side.unread", f" {buffer.unread}"))
    if buffer.highlights:
        out.append(("class:side.highlight", f" @{buffer.highlights}"))
    return out


def buffer_row(state: ChatState, number: int, buffer: Buffer) -> Fragments:
    """` 2 #tech  3 @1`: number, name, unread and highlight counts, within SIDE_WIDTH."""
    counts = _counts(buffer)
    room = SIDE_WIDTH - 3 - sum(get_cwidth(text) for _, text, *_ in counts)
    name = render.clean(buffer.label) + ("*" if buffer.private else "")
    style = "class:side.current" if buffer is state.current else ""
    if buffer.kind == "dm" and buffer is not state.current:
        style = render.pt_style_of(render.user_style(name))
    label = fit([(style, name)], room)
    return [("class:side.number", f"{number:>2} "), *label, *counts]


def side_panel(state: ChatState, select: Callable[[Buffer], None] | None = None) -> Fragments:
    """The buffers with their counts (a click selects one), then the current room's people."""
    out: StyleAndTextTuples = [("class:side.title", "Buffers\n")]
    for number, buffer in enumerate(state.buffers, 1):
        row = buffer_row(state, number, buffer)
        if select is not None:
            row = [(style, text, _clicked(select, buffer)) for style, text, *_ in row]
        out += [*row, ("", "\n")]
    current = state.current
    if current is not None and current.kind == "room":
        people = state.people(current)
        online = sum(on for _, on in people)
        out.append(("class:side.title", f"\nPeople ({online}/{len(people)})\n"))
        for name, on in people:
            # Offline, away and muted people are dim; away and muted ones keep a word, so
            # each differs. The role mark (~ owner, & admin, @ moderator) comes first.
            gone = state.is_away(name)
            muted = name.casefold() in current.muted
            shown = render.clean(name) + (" (away)" if gone else "") + (" (muted)" if muted else "")
            present = on and not gone and not muted
            style = render.pt_style_of(render.user_style(name)) if present else "class:side.away"
            mark = state.mark(current, name)
            out += [*fit([("class:side.mark", mark), (style, shown)], SIDE_WIDTH - 1), ("", "\n")]
    elif current is not None and current.kind == "dm":
        on = current.name.casefold() in {u.casefold() for u in state.online}
        away = state.away.get(current.name.casefold())
        present = on and away is None
        out.append(("class:side.title", "\nWith\n"))
        name = render.clean(current.name)
        out += fit([("" if present else "class:side.away", name)], SIDE_WIDTH - 1)
        status = f"away: {render.clean(away)}" if away else "online" if on else "offline"
        out += [("", "\n"), *fit([("class:side.away", status)], SIDE_WIDTH - 1), ("", "\n")]
    return out


def _clicked(select: Callable[[Buffer], None], buffer: Buffer) -> Callable[[MouseEvent], Any]:
    def handler(event: MouseEvent) -> Any:
        if event.event_type != MouseEventType.MOUSE_UP:
            return NotImplemented
        select(buffer)
        return None

    return handler


def header(state: ChatState, width: int = 200) -> Fragments:
    """The current buffer and its topic, above the messages, cut with an ellipsis."""
    buffer = state.current
    if buffer is None:
        return fit([("class:header", " no room: /join one, /rooms lists them")], width)
    if buffer.kind == "thread":
        root = buffer.find(buffer.root)
        about = ""
        if root is not None and root.sender:
            words = root.gist
            about = f"thread of {render.clean(root.sender)}: {words}"
        return fit([("class:header bold", f" {buffer.label} "), ("class:header", about)], width)
    if buffer.kind == "dm":
        peer = render.clean(buffer.name)
        on = peer.casefold() in {u.casefold() for u in state.online}
        away = state.away.get(peer.casefold())
        status = f"away: {render.clean(away)}" if on and away else "online" if on else "offline"
        about = f"direct messages, {status}"
        return fit([("class:header bold", f" {peer} "), ("class:header", about)], width)
    parts: Fragments = [("class:header bold", f" #{buffer.name} ")]
    if buffer.private:
        parts.append(("class:header", "(private) "))
    if buffer.pins:
        parts.append(("class:header", f"[{render.count(buffer.pins, 'pin')}: /pins] "))
    if buffer.topic:
        parts.append(("class:header", render.clean(buffer.topic)))
    return fit(parts, width)


def status_bar(state: ChatState, numbered: bool = False) -> Fragments:
    """Who and where, the link's state, the server, what needs looking at elsewhere,
    the files on their way (`uploading cat.png 42%`) and who is typing here;
    `numbered` (the side panel is hidden) adds the buffer's number, `[2] ana@#tech`."""
    where = state.current.label if state.current is not None else "(no room)"
    shown = numbered and state.current is not None and state.current in state.buffers
    number = f"[{state.number(state.current)}] " if shown and state.current else ""
    style = "class:status" if state.connected else "class:status.offline"
    scrolled = "  [scrolled]" if state.pane.scroll else ""
    folded = "  [all lines]" if state.show_folded else ""
    folded += "  [away]" if state.is_away(state.me) else ""
    active = [
        f"{n}{'@' if b.highlights else ''}"
        for n, b in enumerate(state.buffers, 1)
        if b.unread and b is not state.current
    ]
    activity = f"  [act: {','.join(active)}]" if active else ""
    transfers = "".join(f"  [{text}]" for text in state.transfers.values())
    if state.threads_unread:
        transfers += f"  [{render.count(state.threads_unread, 'unread thread')}: /threads]"
    if state.current is not None:
        typing = typing_line(state.typists.names(state.current.key, time.time()))
        transfers += f"  [{render.clean(typing)}]" if typing else ""
    return [
        ("class:status", f" {number}{state.me}@{where}  "),
        (style, f" {state.connection} "),
        ("class:status", f"  {state.server}{scrolled}{folded}{activity}{transfers} "),
    ]
