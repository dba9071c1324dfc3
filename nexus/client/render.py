"""Pure rendering: protocol objects -> Rich renderables -> prompt_toolkit fragment rows.

Remote text is data. It is cleaned of control and escape sequences and put
into `rich.text.Text` objects, never into markup strings, so `[bold]` from a
peer prints as typed. Rich segments are converted straight to prompt_toolkit
style strings (no ANSI round trip, no hyperlinks).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from io import StringIO
from typing import overload

from prompt_toolkit.formatted_text import StyleAndTextTuples
from rich.box import SIMPLE_HEAD
from rich.color import Color, ColorType
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from nexus.protocol import (
    DirectMessage,
    Event,
    Joined,
    Left,
    Presence,
    Profile,
    RoomCreated,
    RoomDeleted,
    RoomInfo,
    RoomMessage,
    TopicChanged,
)

Fragments = StyleAndTextTuples  # one screen row; rows() makes only (style, text) pairs

# Whole escape sequences first (CSI, OSC/DCS/APC/PM/SOS strings, 7- and 8-bit),
# then any control character left, and bidirectional overrides that can make
# text read differently from what was sent.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# Readable on dark and light backgrounds; a name always maps to the same one.
USER_COLOURS = (
    "#e06c75",
    "#98c379",
    "#e5c07b",
    "#61afef",
    "#c678dd",
    "#56b6c2",
    "#d19a66",
    "#f78fb3",
    "#7bed9f",
    "#70a1ff",
    "#eccc68",
    "#a29bfe",
)

DIM = "bright_black"
NOTE = "cyan"
ERROR = "bold red"
DM = "bold magenta"
MENTION = "bold reverse"


def clean(text: str) -> str:
    """Remote text made safe to show: no escape sequences, no controls; tabs become spaces."""
    text = _ESCAPES.sub("", text)
    return _CONTROLS.sub("", text.replace("\t", "    "))


def user_style(name: str) -> str:
    """A stable colour per user: a CRC of the case-folded name, not Python's salted hash()."""
    return "bold " + USER_COLOURS[zlib.crc32(name.casefold().encode()) % len(USER_COLOURS)]


def clock(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


def day_of(ts: float) -> date:
    return date.fromtimestamp(ts)


def day_separator(day: date) -> Text:
    return Text(f"── {day.strftime('%A %d %B %Y')} ──", style=DIM, justify="center")


def mention_pattern(me: str) -> re.Pattern[str]:
    """My name as a word, with or without a leading @, in any case."""
    return re.compile(rf"(?<![\w-])@?{re.escape(me)}(?![\w-])", re.IGNORECASE)


def _stamped(ts: float | None) -> Text:
    return Text(clock(ts if ts is not None else time.time()) + " ", style=DIM)


def message(msg: RoomMessage, mention: re.Pattern[str] | None = None) -> Text:
    """`12:04 <ana> text`; with `mention` given, my name in the text is highlighted."""
    sender = clean(msg["from"])
    line = _stamped(msg["ts"])
    line.append(sender, style=user_style(sender))
    line.append(": ")
    start = len(line)
    line.append(clean(msg["text"]))
    if mention is not None:
        for match in mention.finditer(line.plain, start):
            line.stylize(MENTION, match.start(), match.end())
    return line


def direct(msg: DirectMessage, me: str) -> Text:
    """`DM <- mike: text` for a received message, `DM -> mike: text` for one I sent."""
    sender, to = clean(msg["from"]), clean(msg["to"])
    outgoing = sender.casefold() == me.casefold()
    peer = to if outgoing else sender
    line = _stamped(msg["ts"])
    line.append("DM -> " if outgoing else "DM <- ", style=DM)
    line.append(peer, style=user_style(peer))
    line.append(": ")
    line.append(clean(msg["text"]))
    return line


def notice(*parts: str | tuple[str, str], ts: float | None = None) -> Text:
    """A timestamped system line built from plain and (text, style) parts; text is cleaned."""
    line = _stamped(ts)
    line.append("-- ", style=DIM)
    for part in parts:
        text, style = (part, NOTE) if isinstance(part, str) else part
        line.append(clean(text), style=style)
    return line


def who(name: str) -> tuple[str, str]:
    name = clean(name)
    return name, user_style(name)


def error(text: str) -> Text:
    return Text("! " + clean(text), style=ERROR)


NoticeEvent = Joined | Left | Presence | TopicChanged | RoomDeleted | RoomCreated


@overload
def event_line(event: NoticeEvent) -> Text: ...
@overload
def event_line(event: Event) -> Text | None: ...
def event_line(event: Event) -> Text | None:
    """A membership, presence or room event as one notice line; None for others.

    The overloads let callers holding a NoticeEvent show the line without a None check.
    """
    if event["event"] == "joined":
        return notice(who(event["user"]), f" joined #{clean(event['room'])}")
    if event["event"] == "left":
        return notice(who(event["user"]), f" left #{clean(event['room'])}")
    if event["event"] == "presence":
        state = "online" if event["online"] else "offline"
        return notice(who(event["user"]), f" is {state}")
    if event["event"] == "topic":
        room = clean(event["room"])
        return notice(who(event["by"]), f" set the topic of #{room}: ", (event["topic"], ""))
    if event["event"] == "room_deleted":
        return notice(who(event["by"]), f" deleted #{clean(event['room'])}")
    if event["event"] == "room_created":
        info = event["room"]
        # Created rooms always have an owner; "?" only keeps the line readable if not.
        return notice(f"room #{clean(info['name'])} created by ", who(info["owner"] or "?"))
    return None


def rooms_table(rooms: Iterable[RoomInfo], mine: Iterable[str]) -> Table:
    mine = set(mine)
    table = Table(title="Rooms", box=SIMPLE_HEAD, title_justify="left", expand=False)
    for column in ("", "room", "members", "online", "owner", "topic"):
        table.add_column(column)
    for room in rooms:
        owner = room["owner"]
        table.add_row(
            "*" if room["name"] in mine else "",
            Text("#" + clean(room["name"]), style="bold"),
            Text(str(room["members"])),
            Text(str(room["online"])),
            Text(*who(owner)) if owner else Text("-", style=DIM),
            Text(clean(room["topic"])),
        )
    return table


def users_table(users: Iterable[Profile]) -> Table:
    table = Table(title="Online", box=SIMPLE_HEAD, title_justify="left")
    table.add_column("user")
    table.add_column("bio")
    for user in users:
        table.add_row(Text(*who(user["username"])), Text(clean(user["bio"])))
    return table


def profile_panel(user: Profile) -> Panel:
    name = clean(user["username"])
    body = Table.grid(padding=(0, 2))
    body.add_column(style=DIM)
    body.add_column()
    last_seen = user["last_seen"]
    body.add_row("status", "online" if user["online"] else "offline")
    body.add_row("bio", Text(clean(user["bio"])))
    body.add_row("rooms", Text(", ".join("#" + clean(r) for r in user["rooms"])))
    if user["created"]:
        body.add_row("joined", time.strftime("%Y-%m-%d", time.localtime(user["created"])))
    if last_seen:
        body.add_row("last seen", time.strftime("%Y-%m-%d %H:%M", time.localtime(last_seen)))
    return Panel(body, title=Text(name, style=user_style(name)), expand=False, title_align="left")


def help_table(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(title="Commands", box=SIMPLE_HEAD, title_justify="left")
    table.add_column("command", style="bold", no_wrap=True)
    table.add_column("what it does")
    for usage, text in rows:
        table.add_row(Text(usage), Text(text))
    return table


# --------------------------------------------------------------------------
# Rich -> prompt_toolkit

_ANSI_NAMES = (
    "ansiblack",
    "ansired",
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansimagenta",
    "ansicyan",
    "ansigray",
    "ansibrightblack",
    "ansibrightred",
    "ansibrightgreen",
    "ansibrightyellow",
    "ansibrightblue",
    "ansibrightmagenta",
    "ansibrightcyan",
    "ansiwhite",
)


def _colour(color: Color) -> str | None:
    if color.type == ColorType.DEFAULT:
        return None
    if color.type == ColorType.STANDARD and color.number is not None:
        return _ANSI_NAMES[color.number]
    return color.get_truecolor().hex


@lru_cache(maxsize=1024)
def pt_style(style: Style | None) -> str:
    """A Rich Style as a prompt_toolkit style string (dim text without colour turns grey)."""
    if style is None:
        return ""
    parts = []
    if style.color is not None and (fg := _colour(style.color)):
        parts.append("fg:" + fg)
    elif style.dim:
        parts.append("fg:ansibrightblack")
    if style.bgcolor is not None and (bg := _colour(style.bgcolor)):
        parts.append("bg:" + bg)
    for attribute in ("bold", "italic", "underline", "reverse", "strike"):
        if getattr(style, attribute):
            parts.append(attribute)
    return " ".join(parts)


@lru_cache(maxsize=8)
def _console(width: int) -> Console:
    return Console(
        file=StringIO(), force_terminal=True, color_system="truecolor", width=width, emoji=False
    )


def rows(renderable: RenderableType, width: int) -> list[Fragments]:
    """The screen rows `renderable` takes at `width` columns, as fragment lists."""
    width = max(width, 10)
    console = _console(width)
    lines = console.render_lines(renderable, console.options.update(width=width), pad=False)
    return [
        [(pt_style(seg.style), seg.text) for seg in line if not seg.control and seg.text]
        for line in lines
    ]
