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
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from functools import lru_cache
from io import StringIO
from typing import overload

from prompt_toolkit.formatted_text import StyleAndTextTuples
from rich.box import SIMPLE_HEAD
from rich.cells import cell_len, set_cell_size
from rich.color import Color, ColorType
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from nexus.client import formatting
from nexus.protocol import (
    Attachment,
    BanEntry,
    Banned,
    DirectMessage,
    Event,
    Invited,
    Joined,
    Kicked,
    Left,
    Member,
    Muted,
    PinnedEvent,
    PinnedMessage,
    Presence,
    Profile,
    RoomCreated,
    RoomDeleted,
    RoomInfo,
    RoomMessage,
    ThreadEntry,
    ThreadSummary,
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
FOUND = "black on yellow"  # /lastlog matches, the message /goto went to
MINE = "bold reverse"  # a reaction I am part of
REPLY_WORDS = 40  # characters of the answered message quoted on a reply's first row
ERASED = "(message erased)"
ACTION = "*"  # the prefix of an action, as IRC clients show `/me`
JOIN, LEAVE = "-->", "<--"
PREFIX_STYLES = {JOIN: "green", LEAVE: "red", "--": DIM}


# Emoji sequences whose width terminals, wcwidth and Rich disagree on: a joiner or a
# variation selector makes one glyph of several characters on some terminals and
# not on others, so the screen and the layout drift apart and leave stale cells.
# Shown as their parts (each part has one agreed width); a flag shows as its letters.
_JOINERS = re.compile("[\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")
_FLAG = re.compile("([\U0001f1e6-\U0001f1ff])([\U0001f1e6-\U0001f1ff])?")


def _flag(match: re.Match[str]) -> str:
    letters = "".join(chr(ord(c) - 0x1F1E6 + ord("A")) for c in match.groups() if c)
    return f"[{letters}]"


def clean(text: str) -> str:
    """Remote text made safe to show: no escape sequences, no controls, tabs as spaces,
    and no character sequence whose width the terminal may see differently."""
    text = _ESCAPES.sub("", text)
    text = _CONTROLS.sub("", text.replace("\t", "    "))
    return _FLAG.sub(_flag, _JOINERS.sub("", text))


def user_style(name: str) -> str:
    """A stable colour per user: a CRC of the case-folded name, not Python's salted hash()."""
    return "bold " + USER_COLOURS[zlib.crc32(name.casefold().encode()) % len(USER_COLOURS)]


CLOCK = "%H:%M"  # the time column's strftime format unless client.toml says otherwise


def count(n: int, noun: str, plural: str = "") -> str:
    """`1 message`, `2 messages` (`plural` where adding an s is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def size(n: int) -> str:
    """`512 B`, `1.5 KiB`, `25.0 MiB`: a byte count as people read it."""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def clock(ts: float, fmt: str = CLOCK) -> str:
    return time.strftime(fmt, time.localtime(ts))


def day_of(ts: float) -> date:
    return date.fromtimestamp(ts)


def day_separator(day: date) -> Text:
    return Text(f"── {day.strftime('%A %d %B %Y')} ──", style=DIM, justify="center")


def separator(text: str, style: str = DIM) -> Text:
    """A full-width rule with a label, for backlog and unread markers."""
    return Text(f"── {text} ──", style=style, justify="center")


def mention_pattern(me: str, words: Iterable[str] = ()) -> re.Pattern[str]:
    """My name, or one of my highlight `words`, as a word, with or without a leading @,
    in any case."""
    names = "|".join(re.escape(name) for name in (me, *words) if name)
    return re.compile(rf"(?<![\w-])@?(?:{names})(?![\w-])", re.IGNORECASE)


class Picture:
    """Rows of cells made for the columns there are (a thumbnail: images.py), shown in a
    message's body like its rows of text."""

    __slots__ = ("draw",)

    def __init__(self, draw: Callable[[int], list[Fragments]]) -> None:
        self.draw = draw


Part = Text | Picture


class Line:
    """One message or notice: a time and a prefix column, then a body that wraps under itself.

    Every row of the body after the first starts with the blank columns and a
    bar (WeeChat's hanging indent), so text a peer sends can never start a row
    where the time and a name go: no forged line can pass for someone's message.
    A message may add rows of its own inside that body: `above` (the message it
    answers), `tail` (after the text: "(edited)" and its reference), `files`
    (a row for each attachment, and its picture), `summary` (a thread's replies,
    under its root) and `below` (reactions); `body` stays the text alone.
    """

    __slots__ = (
        "above",
        "below",
        "body",
        "files",
        "prefix",
        "prefix_style",
        "summary",
        "tail",
        "ts",
    )

    def __init__(
        self,
        ts: float,
        prefix: str,
        prefix_style: str,
        body: Text,
        *,
        above: Text | None = None,
        tail: Text | None = None,
        files: tuple[Part, ...] = (),
        below: Text | None = None,
        summary: Text | None = None,
    ) -> None:
        self.ts = ts
        self.prefix = prefix  # already cleaned
        self.prefix_style = prefix_style
        self.body = body
        self.above, self.tail, self.files, self.below = above, tail, files, below
        self.summary = summary

    @property
    def plain(self) -> str:
        """As a log line: `12:04 <ana> text` for messages, `12:04 -- text` for notices."""
        return f"{clock(self.ts)} {self.prefix} {self.body.plain}"

    @property
    def full(self) -> str:
        """Every row's text, one row a line, as the screen shows them (before wrapping)."""
        texts = (p.plain for p in self.parts() if isinstance(p, Text))
        return f"{clock(self.ts)} {self.prefix} " + "\n".join(texts)

    def parts(self) -> list[Part]:
        """The body as shown, in rows of its own: the quote, the text with its tail, the
        attachments, and the reactions."""
        body = self.body
        if self.tail is not None:
            body = body.copy()
            body.append_text(self.tail)
        parts = (self.above, body, *self.files, self.summary, self.below)
        return [part for part in parts if part is not None]

    def marked(self, pattern: re.Pattern[str], style: str) -> Line:
        """A copy with the matches of `pattern` in the body styled (for /lastlog)."""
        body = self.body.copy()
        for match in pattern.finditer(body.plain):
            body.stylize(style, match.start(), match.end())
        return Line(
            self.ts,
            self.prefix,
            self.prefix_style,
            body,
            above=self.above,
            tail=self.tail,
            files=self.files,
            below=self.below,
            summary=self.summary,
        )


def _now(ts: float | None) -> float:
    return ts if ts is not None else time.time()


# A link to a message: `#room/12` (/goto takes it; a click on it opens the message).
LINK = re.compile(r"(?<![\w#/-])#[A-Za-z0-9_-]{1,32}/\d+(?![\w/])")


def _mark_links(body: Text) -> Text:
    for match in LINK.finditer(body.plain):
        body.stylize("underline", match.start(), match.end())
    return body


def link_at(text: str, column: int) -> str | None:
    """The message link drawn across cell `column` of a row showing `text`, if any."""
    cells, index = 0, 0
    while index < len(text) and cells + cell_len(text[index]) <= column:
        cells += cell_len(text[index])
        index += 1
    return next((m.group() for m in LINK.finditer(text) if m.start() <= index < m.end()), None)


def body(msg: RoomMessage | DirectMessage) -> Text:
    """A message's text as drawn: formatted (formatting.py), or as typed when it was
    sent `plain`, its message links underlined all the same."""
    text = clean(msg["text"])
    return _mark_links(Text(text)) if msg.get("plain") else formatting.formatted(text)


def gist(msg: RoomMessage | DirectMessage) -> str:
    """A message's text as drawn, marks gone, on one line: for quoting it elsewhere."""
    return " ".join(body(msg).plain.split())


def _mark_mentions(body: Text, mention: re.Pattern[str] | None) -> Text:
    """`body` with my name marked, but in code (where it names nobody)."""
    if mention is not None:
        code = [(span.start, span.end) for span in body.spans if span.style == formatting.CODE]
        for match in mention.finditer(body.plain):
            if not any(start < match.end() and match.start() < end for start, end in code):
                body.stylize(MENTION, match.start(), match.end())
    return body


def message(
    msg: RoomMessage | DirectMessage,
    mention: re.Pattern[str] | None = None,
    *,
    me: str | None = None,
    answered: tuple[str, str] | None = None,
    ref: bool = False,
    pictures: Mapping[str, Picture] | None = None,
    in_thread: bool = False,
) -> Line:
    """`12:04  ana │ text`, or `12:04  * │ ana waves` for an action.

    With `mention` given, my name in the text is highlighted; `me` marks the
    reactions I am part of; `answered` is (author, text) of the message this
    one replies to (or, for a thread reply shown in the timeline, of its
    root), if known; `ref` adds the message's dim `seq` at the end, for
    /reply, /edit, /erase and /react to point at it (and /save, /open at its
    files); `pictures` are previews of its files, by file id. A root shows
    its thread's summary, and a reply the thread it is in, unless the line is
    for the thread's own buffer (`in_thread`).
    """
    sender = clean(msg["from"])
    tail = Text()
    if msg.get("edited"):
        tail.append(" (edited)", style=DIM)
    if ref:
        tail.append(f" [{msg['seq']}]", style=DIM)
    if msg.get("erased"):
        return Line(msg["ts"], sender, DIM, Text(ERASED, style=DIM), tail=tail or None)
    text = _mark_mentions(body(msg), mention)
    prefix, style = sender, user_style(sender)
    if msg.get("action"):
        text = Text(sender, style=user_style(sender)).append(" ").append_text(text)
        prefix, style = ACTION, user_style(sender)
    above = _reply_row(msg.get("reply_to"), answered)
    if (root := msg.get("thread")) is not None and not in_thread:
        above = _reply_row(root, answered, THREAD_LEAD)
    summary = msg.get("thread_summary")
    return Line(
        msg["ts"],
        prefix,
        style,
        text,
        above=above,
        tail=tail or None,
        files=attachment_rows(msg.get("files") or [], pictures or {}),
        below=reactions_row(msg.get("reactions") or {}, me),
        summary=None if in_thread or not summary else summary_row(summary, msg["seq"]),
    )


THREAD_LEAD = "↳ in the thread of "  # a thread reply shown in the timeline (broadcast)


def summary_row(summary: ThreadSummary, seq: int) -> Text:
    """`3 replies, last 10:42 (ana, bob)`, under a thread's root; /thread opens it."""
    replies = count(summary["replies"], "reply", "replies")
    row = Text(f"↳ {replies}, last {clock(summary['last'])}", style=NOTE)
    people = [clean(name) for name in summary["participants"]]
    if people:
        row.append(" (")
        for index, name in enumerate(people):
            row.append(", " if index else "").append(name, style=user_style(name))
        row.append(")")
    return row.append(f"  /thread {seq}", style=DIM)


ATTACHED = "📎"


def attachment_row(file: Attachment) -> Text:
    """`📎 cat.png  1.2 MiB  image/png`: what a file is before anyone fetches it."""
    row = Text(f"{ATTACHED} ", no_wrap=True, overflow="ellipsis")
    row.append(clean(file["name"]), style="bold")
    return row.append(f"  {size(file['size'])}  {clean(file['type'])}", style=DIM)


def attachment_rows(
    files: Iterable[Attachment], pictures: Mapping[str, Picture]
) -> tuple[Part, ...]:
    """Each file's row, each followed by its picture when there is one."""
    rows: list[Part] = []
    for file in files:
        rows.append(attachment_row(file))
        if (picture := pictures.get(file["id"])) is not None:
            rows.append(picture)
    return tuple(rows)


def _reply_row(seq: int | None, answered: tuple[str, str] | None, lead: str = "-> ") -> Text | None:
    """`-> ana: first words of the message` (or `-> [41]` when it is not loaded)."""
    if seq is None:
        return None
    row = Text(lead, style=DIM, no_wrap=True, overflow="ellipsis")  # one row, cut to fit
    if answered is None:
        return row.append(f"[{seq}]", style=DIM)
    author, words = answered
    if len(words) > REPLY_WORDS:
        words = words[: REPLY_WORDS - 1].rstrip() + "…"
    row.append(clean(author), style=user_style(clean(author)))
    return row.append(f": {words or ERASED}", style=DIM)


def reactions_row(reactions: dict[str, list[str]], me: str | None = None) -> Text | None:
    """`👍 2  ❤ 1`, in the order the emoji first came; the ones I am part of stand out."""
    if not reactions:
        return None
    mine = me.casefold() if me else None
    row = Text()
    for index, (emoji, users) in enumerate(reactions.items()):
        if index:
            row.append("  ")
        ours = mine is not None and any(u.casefold() == mine for u in users)
        row.append(f"{clean(emoji)} {len(users)}", style=MINE if ours else DIM)
    return row


def notice(*parts: str | tuple[str, str], ts: float | None = None, prefix: str = "--") -> Line:
    """A system line built from plain and (text, style) parts; text is cleaned."""
    body = Text()
    for part in parts:
        text, style = (part, NOTE) if isinstance(part, str) else part
        body.append(clean(text), style=style)
    return Line(_now(ts), prefix, PREFIX_STYLES.get(prefix, DIM), body)


def who(name: str) -> tuple[str, str]:
    name = clean(name)
    return name, user_style(name)


def error(text: str) -> Line:
    return Line(time.time(), "!", ERROR, Text(clean(text), style=ERROR))


NoticeEvent = Joined | Left | Presence | TopicChanged | RoomDeleted | RoomCreated


@overload
def event_line(event: NoticeEvent) -> Line: ...
@overload
def event_line(event: Event) -> Line | None: ...
def event_line(event: Event) -> Line | None:
    """A membership, presence or room event as one notice line; None for others.

    The overloads let callers holding a NoticeEvent show the line without a None check.
    """
    if event["event"] == "joined":
        return notice(who(event["user"]), f" joined #{clean(event['room'])}", prefix=JOIN)
    if event["event"] == "left":
        return notice(who(event["user"]), f" left #{clean(event['room'])}", prefix=LEAVE)
    if event["event"] == "presence":
        if event["online"]:
            return notice(who(event["user"]), " is online", prefix=JOIN)
        return notice(who(event["user"]), " is offline", prefix=LEAVE)
    if event["event"] == "topic":
        room = clean(event["room"])
        if not event["topic"]:
            return notice(who(event["by"]), f" cleared the topic of #{room}")
        return notice(who(event["by"]), f" set the topic of #{room}: ", (event["topic"], ""))
    if event["event"] == "room_deleted":
        return notice(who(event["by"]), f" deleted #{clean(event['room'])}")
    if event["event"] == "room_created":
        info = event["room"]
        # Created rooms always have an owner; "?" only keeps the line readable if not.
        return notice(f"room #{clean(info['name'])} created by ", who(info["owner"] or "?"))
    return None


def deleted_line(event: RoomDeleted, me: bool) -> Line:
    """`ana deleted #den`, or `you deleted #den` when it was me (in any of my terminals)."""
    whom: str | tuple[str, str] = "you" if me else who(event["by"])
    return notice(whom, f" deleted #{clean(event['room'])}")


def role_line(by: str, user: str, room: str, on: bool) -> Line:
    """`mia made bob a moderator of #den` (or `... took ... role`), from `room_updated`."""
    if on:
        return notice(who(by), " made ", who(user), f" a moderator of #{clean(room)}")
    return notice(who(by), " took the moderator role of ", who(user), f" in #{clean(room)}")


def kicked_line(event: Kicked, me: bool) -> Line:
    """`bob was kicked from #den by mia: flooding`; `you were banned ...` when it is me."""
    verb = "banned" if event["banned"] else "kicked"
    whom: str | tuple[str, str] = "you" if me else who(event["user"])
    parts: list[str | tuple[str, str]] = [
        whom,
        f" {'were' if me else 'was'} {verb} from #{clean(event['room'])} by ",
        who(event["by"]),
    ]
    parts += [": ", (event["reason"], "")] if event["reason"] else [" (no reason given)"]
    return notice(*parts, prefix=LEAVE)


def banned_line(event: Banned) -> Line:
    """`mia banned bob from #den: spam` / `mia unbanned bob in #den`."""
    room = f"#{clean(event['room'])}"
    if not event["on"]:
        return notice(who(event["by"]), " unbanned ", who(event["user"]), f" in {room}")
    parts: list[str | tuple[str, str]] = [who(event["by"]), " banned ", who(event["user"])]
    parts.append(f" from {room}")
    parts += [": ", (event["reason"], "")] if event["reason"] else [" (no reason given)"]
    return notice(*parts, prefix=LEAVE)


def muted_line(event: Muted, me: bool) -> Line:
    """`mia muted bob in #den` / `mia unmuted you in #den`."""
    whom: str | tuple[str, str] = "you" if me else who(event["user"])
    verb = " muted " if event["on"] else " unmuted "
    return notice(who(event["by"]), verb, whom, f" in #{clean(event['room'])}")


def invited_line(event: Invited) -> Line:
    """`bob invited you to #den (private): /join den`, the command to accept it."""
    room = clean(event["room"]["name"])
    private = " (private)" if event["room"].get("private") else ""
    return notice(who(event["by"]), f" invited you to #{room}{private}: /join {room}")


def invitation_line(room: RoomInfo) -> Line:
    """`you are invited to #den (private): /join den`, for an invitation the
    login tells of (made while away: who made it is not kept)."""
    name = clean(room["name"])
    private = " (private)" if room.get("private") else ""
    return notice(f"you are invited to #{name}{private}: /join {name}")


def away_line(user: str, text: str | None) -> Line:
    """`ana is away: lunch` or `ana is back`, when an online person's away text changes."""
    if text:
        return notice(who(user), " is away: ", (text, DIM))
    return notice(who(user), " is back")


def rooms_table(rooms: Iterable[RoomInfo], mine: Iterable[str]) -> Table:
    mine = set(mine)
    table = Table(
        title="Rooms",
        caption="* you are in it",
        caption_justify="left",
        box=SIMPLE_HEAD,
        title_justify="left",
        expand=False,
    )
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
            Text(clean(room["topic"]), overflow="ellipsis"),
        )
    return table


def users_table(users: Iterable[Profile], title: str = "Online") -> Table:
    table = Table(title=title, box=SIMPLE_HEAD, title_justify="left")
    table.add_column("user")
    table.add_column("bio")
    for user in users:
        table.add_row(Text(*who(user["username"])), Text(clean(user["bio"])))
    return table


def bans_table(title: str, bans: Iterable[BanEntry]) -> Table:
    """`/bans`: who is banned, by whom, when and why, oldest first."""
    table = Table(title=title, box=SIMPLE_HEAD, title_justify="left")
    for column in ("user", "by", "when", "reason"):
        table.add_column(column)
    for ban in bans:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(ban["ts"]))
        table.add_row(Text(*who(ban["user"])), Text(*who(ban["by"])), when, clean(ban["reason"]))
    return table


def profile_panel(user: Profile) -> Panel:
    name = clean(user["username"])
    body = Table.grid(padding=(0, 2))
    body.add_column(style=DIM)
    body.add_column()
    last_seen = user["last_seen"]
    body.add_row("status", "online" if user["online"] else "offline")
    if user.get("guest"):
        body.add_row("account", "none: a guest, gone when it disconnects")
    if user.get("admin"):
        body.add_row("role", "server admin")
    if away := user.get("away"):
        body.add_row("away", Text(clean(away)))
    body.add_row("bio", Text(clean(user["bio"])))
    body.add_row("rooms", Text(", ".join("#" + clean(r) for r in user["rooms"])))
    if user["created"]:
        body.add_row("joined", time.strftime("%Y-%m-%d", time.localtime(user["created"])))
    if last_seen:
        body.add_row("last seen", time.strftime("%Y-%m-%d %H:%M", time.localtime(last_seen)))
    return Panel(body, title=Text(name, style=user_style(name)), expand=False, title_align="left")


def role_mark(owner: bool, admin: bool, moderator: bool) -> str:
    """The mark before a name in a room's people, as IRC clients show them:
    `~` the room's owner, `&` a server admin, `@` a moderator, "" a member."""
    return "~" if owner else "&" if admin else "@" if moderator else ""


def member_mark(member: Member) -> str:
    """A `members` entry's role mark."""
    return role_mark(member["role"] == "owner", member["admin"], member["role"] == "moderator")


def names(
    title: str,
    people: Iterable[tuple[str, bool]],
    away: Callable[[str], bool] = lambda _: False,
    mark: Callable[[str], str] = lambda _: "",
) -> Text:
    """`/names`: the members of a room on one wrapped line, online ones first, others
    dim; `away(name)` marks the ones away, dim too; `mark(name)` is a role mark."""
    people = sorted(people, key=lambda p: (not p[1], p[0].casefold()))
    line = Text(
        f"{title} ({sum(on for _, on in people)} online, {count(len(people), 'member')}): ",
        style=NOTE,
    )
    for index, (name, online) in enumerate(people):
        gone = away(name)
        line.append(mark(name), style=NOTE)
        name = clean(name)
        line.append(name, style=user_style(name) if online and not gone else DIM)
        line.append(" (away)" if gone else "", style=DIM)
        line.append("  " if index < len(people) - 1 else "")
    return line


def conversations_table(rows: Iterable[tuple[int, str, float, int, int]]) -> Table:
    """`/dms`: each conversation with its buffer number, when its newest message was
    sent, and its unread and highlight counts."""
    table = Table(title="Direct conversations", box=SIMPLE_HEAD, title_justify="left")
    for column in ("buffer", "with", "last message", "unread", "highlights"):
        table.add_column(column)
    for number, peer, ts, unread, highlights in rows:
        when = time.strftime("%d %b %H:%M", time.localtime(ts)) if ts else ""
        table.add_row(f"{number}", Text(*who(peer)), when, str(unread or ""), str(highlights or ""))
    return table


def results_table(title: str, messages: Iterable[RoomMessage | DirectMessage], me: str) -> Table:
    """`/search` and `/mentions`: where, when, who, what, and the seq `/goto` takes."""
    table = Table(title=title, box=SIMPLE_HEAD, title_justify="left", expand=True)
    for column in ("where", "time", "from", "text", "seq"):
        table.add_column(column, no_wrap=column != "text", ratio=1 if column == "text" else None)
    for msg in messages:
        if "room" in msg:
            where = Text("#" + clean(msg["room"]), style="bold")  # type: ignore[typeddict-item]
        else:
            peer = msg["to"] if msg["from"].casefold() == me.casefold() else msg["from"]
            where = Text(*who(peer))
        when = time.strftime("%d %b %H:%M", time.localtime(msg["ts"]))
        text = Text(clean(msg["text"]), overflow="fold")
        if msg.get("action"):
            text = Text("* ", style=DIM).append_text(text)
        table.add_row(where, when, Text(*who(msg["from"])), text, Text(str(msg["seq"]), style=DIM))
    return table


def pinned_line(event: PinnedEvent, said: tuple[str, str] | None) -> Line:
    """`ana pinned #den/12 (bob: first words…)`, or `ana unpinned #den/12`: the link opens
    it; `said` is (author, text as drawn) of the message when it is loaded."""
    verb = " pinned " if event["on"] else " unpinned "
    parts: list[str | tuple[str, str]] = [who(event["by"]), verb]
    parts.append((f"#{clean(event['room'])}/{event['seq']}", "underline " + NOTE))
    if said is not None:
        author, words = said
        if len(words) > REPLY_WORDS:
            words = words[: REPLY_WORDS - 1].rstrip() + "…"
        parts += [" (", who(author), f": {words})"]
    return notice(*parts)


def pins_table(room: str, messages: Iterable[PinnedMessage]) -> Table:
    """`/pins`: a room's pinned messages, the latest pin first: the message (its number,
    who said it, what), and who pinned it when."""
    title = f"Pinned in #{clean(room)}"
    table = Table(title=title, box=SIMPLE_HEAD, title_justify="left", expand=True)
    for column in ("message", "from", "text", "pinned by", "when"):
        table.add_column(column, no_wrap=column != "text", ratio=1 if column == "text" else None)
    for msg in messages:
        when = time.strftime("%d %b %H:%M", time.localtime(msg["pinned_at"]))
        table.add_row(
            Text(f"#{clean(room)}/{msg['seq']}", style="underline"),
            Text(*who(msg["from"])),
            Text(gist(msg)),
            Text(*who(msg["pinned_by"])),
            when,
        )
    return table


def threads_table(threads: Iterable[ThreadEntry], me: str) -> Table:
    """`/threads`: the followed threads, the latest reply first: the root's link, who
    wrote it, what, the replies unread and when the last came."""
    table = Table(title="Threads you follow", box=SIMPLE_HEAD, title_justify="left", expand=True)
    for column in ("thread", "from", "text", "unread", "last reply"):
        table.add_column(column, no_wrap=column != "text", ratio=1 if column == "text" else None)
    for entry in threads:
        root = entry["root"]
        if "room" in root:
            link = f"#{clean(root['room'])}/{root['seq']}"  # type: ignore[typeddict-item]
        else:
            peer = root["to"] if root["from"].casefold() == me.casefold() else root["from"]
            link = f"{clean(peer)}/{root['seq']}"
        unread = Text(str(entry["unread"] or ""), style="bold yellow")
        when = time.strftime("%d %b %H:%M", time.localtime(entry["last"]))
        text = Text(ERASED, style=DIM) if root.get("erased") else Text(gist(root))
        table.add_row(Text(link, style="underline"), Text(*who(root["from"])), text, unread, when)
    return table


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


def pt_style_of(style: str) -> str:
    """A Rich style string (`bold #e06c75`) as a prompt_toolkit style string."""
    return pt_style(Style.parse(style))


@lru_cache(maxsize=8)
def _console(width: int) -> Console:
    return Console(
        file=StringIO(), force_terminal=True, color_system="truecolor", width=width, emoji=False
    )


WIDE = 40  # below this many columns the time column is dropped
NICK_MIN, NICK_MAX = 8, 16  # the prefix column grows with the names shown, up to NICK_MAX


@lru_cache(maxsize=8)
def clock_columns(fmt: str) -> int:
    """Columns the time column takes with `fmt` ("12:04 " is 6), its space included."""
    return cell_len(time.strftime(fmt)) + 1


def prefix_width(width: int, nick_width: int, fmt: str = CLOCK) -> tuple[int, int]:
    """(time columns, name columns) for a pane `width` wide: the body keeps half at least."""
    time_columns = clock_columns(fmt) if width >= WIDE else 0
    room = max(1, width // 2 - time_columns - 3)
    return time_columns, max(1, min(nick_width, room))


def _fit(name: str, columns: int) -> str:
    """`name` right-aligned in `columns`; a longer one is cut and ends in `+` (as WeeChat)."""
    if cell_len(name) <= columns:
        return " " * (columns - cell_len(name)) + name
    return set_cell_size(name, columns - 1) + "+"


def rows(
    renderable: RenderableType | Line, width: int, nick_width: int = NICK_MIN, fmt: str = CLOCK
) -> list[Fragments]:
    """The screen rows `renderable` takes at `width` columns, as fragment lists; `fmt`
    formats a message's time."""
    width = max(width, 10)
    if isinstance(renderable, Line):
        return _line_rows(renderable, width, nick_width, fmt)
    return _rich_rows(renderable, width)


def _rich_rows(renderable: RenderableType, width: int) -> list[Fragments]:
    console = _console(width)
    lines = console.render_lines(renderable, console.options.update(width=width), pad=False)
    return [
        [(pt_style(seg.style), seg.text) for seg in line if not seg.control and seg.text]
        for line in lines
    ]


def _line_rows(line: Line, width: int, nick_width: int, fmt: str) -> list[Fragments]:
    time_columns, name_columns = prefix_width(width, nick_width, fmt)
    bar = pt_style_of(DIM)
    first: Fragments = []
    if time_columns:
        first.append((bar, set_cell_size(clock(line.ts, fmt), time_columns - 1) + " "))
    first.append((pt_style_of(line.prefix_style), _fit(line.prefix, name_columns)))
    first.append((bar, " │ "))
    indent: Fragments = [("", " " * (time_columns + name_columns)), (bar, " │ ")]
    columns = width - time_columns - name_columns - 3
    body = [row for part in line.parts() for row in _part_rows(part, columns)] or [[]]
    return [first + body[0]] + [indent + row for row in body[1:]]


def _part_rows(part: Part, columns: int) -> list[Fragments]:
    return part.draw(columns) if isinstance(part, Picture) else _rich_rows(part, columns)
