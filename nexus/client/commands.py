"""The slash commands: one table that parsing, /help and tab completion all read.

Each command is registered once with a usage string such as
`<room> [topic...]`: `<x>` is required, `[x]` optional, `...` takes the rest
of the line. The argument's name also says what Tab completes for it
(`room`, `user`). Plain text is `/say`; `//text` says text with a leading
slash.

A message is pointed at by its reference, the dim `[seq]` after it: the
commands that act on one (/reply, /edit, /erase, /react) take it first and
act in the current buffer; where it may be left out, a first word of digits
is the reference and anything else starts the text.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any, Protocol, cast

from nexus.client import render
from nexus.client.connection import ConnectionClosed
from nexus.client.state import Buffer, ChatState, Entry, Scrollback
from nexus.client.transfer import Files, Progress, TransferError, safe_name
from nexus.errors import NexusError
from nexus.protocol import (
    MESSAGE_MAX,
    PAGE_DEFAULT,
    PAGE_MAX,
    SEARCH_DEFAULT,
    SEARCH_MAX,
    THREADS_DEFAULT,
    THREADS_MAX,
    AnyMessage,
    Attachment,
    BansReply,
    DirectMessage,
    DmsReply,
    FollowReply,
    HistoryReply,
    JoinReply,
    MembersReply,
    MentionsReply,
    PinsReply,
    ProfileReply,
    RoomInfo,
    RoomReply,
    RoomsReply,
    SearchReply,
    ThreadReply,
    ThreadsReply,
    TokenReply,
    UsersReply,
    room_name,
)


class Context(Protocol):
    """What a command handler may use (the session implements it)."""

    state: ChatState

    async def request(self, cmd: str, **args: Any) -> Any:
        """The checked reply to `cmd`, as ChatConnection.request returns it."""

    async def say(
        self,
        text: str,
        *,
        action: bool = False,
        reply_to: int | None = None,
        typed: str = "",
        plain: bool = False,
        broadcast: bool = False,
    ) -> None:
        """Sends text to the current buffer: its room, its person, or its thread
        (`action`: as /me; `reply_to`: answering that seq; `typed`: the line given back
        if it is refused; `plain`: shown as typed, never formatted; `broadcast`: a
        thread reply shown in the room's timeline too)."""

    async def send_dm(self, user: str, text: str, *, typed: str = "") -> None:
        """Sends a direct message (`typed`: the line given back if it is refused)."""

    async def share(self, buffer: Buffer, text: str, files: Sequence[str]) -> None:
        """Sends my uploads `files` to `buffer`'s room or person, with `text` (may be "")."""

    def files(self) -> Files:
        """HTTP to the server's files; TransferError when there are none to be had."""

    def background(self, work: Awaitable[None]) -> None:
        """Runs `work` beside the typed lines, which do not wait for it."""

    def changed(self) -> None:
        """The state changed outside a command's run: draw it again."""

    async def secret(self, prompt: str) -> str:
        """A line typed without echo, kept nowhere (a password)."""

    async def flush(self) -> None:
        """Waits until the messages typed before are sent."""

    def new_credentials(self, password: str, token: str) -> None:
        """The account's password and token changed: reconnects use the new ones."""

    def reconnect(self) -> None: ...

    def quit(self) -> None: ...


class UsageError(Exception):
    """A command line that cannot be run as typed; shown as one line."""


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    required: bool
    rest: bool  # takes the rest of the line, spaces included


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    args: tuple[Arg, ...]
    handler: Callable[..., Awaitable[None]]
    immediate: bool  # runs at once, ahead of the lines typed before it

    @property
    def synopsis(self) -> str:
        return f"/{self.name} {self.usage}".rstrip()


COMMANDS: dict[str, Command] = {}
_ARG = re.compile(r"([<\[])(\w+)(\.\.\.)?[>\]]")


def command(name: str, usage: str, help: str, *, immediate: bool = False):
    """Registers a handler `async def h(ctx, **args)` under /name."""

    def register(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        args = tuple(Arg(n, kind == "<", bool(rest)) for kind, n, rest in _ARG.findall(usage))
        COMMANDS[name] = Command(name, usage, help, args, handler, immediate)
        return handler

    return register


# --------------------------------------------------------------------------
# Parsing


def parse(line: str) -> tuple[Command, dict[str, str | None]] | None:
    """A typed line -> (command, arguments); None for a blank line. Raises UsageError."""
    if not line.strip():
        return None
    if not line.startswith("/") or line.startswith("//"):
        return COMMANDS["say"], {"text": line[1:] if line.startswith("//") else line}
    name, rest = [*line[1:].split(None, 1), "", ""][:2]
    cmd = COMMANDS.get(name.lower())
    if cmd is None:
        raise UsageError(f"unknown command /{name}: /help lists them")
    return cmd, parse_args(cmd, rest)


def immediate(line: str) -> bool:
    """Whether a typed line is a command that must not wait for the lines before it."""
    try:
        parsed = parse(line)
    except UsageError:
        return False
    return parsed is not None and parsed[0].immediate


def parse_args(cmd: Command, text: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    rest = text.strip()
    for arg in cmd.args:
        if not rest:
            if arg.required:
                raise UsageError(f"usage: {cmd.synopsis}")
            values[arg.name] = None
        elif arg.rest:
            values[arg.name], rest = rest, ""
        else:
            word, *tail = rest.split(None, 1)
            values[arg.name], rest = word, "".join(tail)
    if rest:
        raise UsageError(f"too many arguments; usage: {cmd.synopsis}")
    return values


async def execute(ctx: Context, line: str) -> None:
    """Runs one typed line; every failure ends as one line in the pane."""
    try:
        parsed = parse(line)
        if parsed is not None:
            cmd, args = parsed
            await cmd.handler(ctx, **args)
    except UsageError as exc:
        ctx.state.error(str(exc))
    except NexusError as exc:
        ctx.state.error(describe(exc))
    except ConnectionClosed:
        ctx.state.error(f"the connection is down, not confirmed: {line}")
    except TransferError as exc:
        ctx.state.error(str(exc))


def describe(exc: NexusError) -> str:
    text = f"{exc.message} ({exc.code})"
    retry = exc.extra.get("retry_after")
    if isinstance(retry, int | float):
        text += f", try again in {retry:.1f} s"
    return text


# --------------------------------------------------------------------------
# Completion


def completions(before: str, state: ChatState) -> tuple[str, list[str]]:
    """For the text left of the cursor: (the word being completed, candidates for it)."""
    if before.startswith("/") and " " not in before:
        return before, ["/" + name for name in COMMANDS if name.startswith(before[1:].lower())]
    words = before.split()
    word = "" if before[-1:].isspace() or not words else words[-1]
    kind = "user"
    if before.startswith("/"):
        cmd = COMMANDS.get(words[0][1:].lower())
        index = len(words) - 1 - (word != "")
        if index and cmd and cmd.args and cmd.args[0].name == "user" and words[1].startswith("#"):
            index -= 1  # /kick #room user: the room came first, the user follows
        kind = cmd.args[index].name if cmd and index < len(cmd.args) else ""
        if cmd and cmd.name == "say":
            kind = "user"
    if kind == "path":
        return word, path_completions(word)
    if kind == "room":
        prefix = word.removeprefix("#").lower()
        rooms = state.known_rooms | state.rooms.keys()
        return word, sorted(r for r in rooms if r.startswith(prefix))
    if kind == "buffer":
        folded = word.casefold()
        labels = [b.label for b in state.buffers] + [b.name for b in state.buffers] + [MOVE]
        return word, sorted({b for b in labels if b.casefold().startswith(folded)})
    if kind == "user" and word.startswith("#"):  # /kick #room user: a room first
        rooms = state.known_rooms | state.rooms.keys()
        return word, sorted("#" + r for r in rooms if r.startswith(word[1:].lower()))
    if kind == "user":
        folded = word.removeprefix("@").casefold()
        names = state.known_users | state.online
        matches = (n for n in names if n and n.casefold().startswith(folded))
        return word, sorted(matches, key=str.casefold)
    return word, []


PATHS_SHOWN = 200  # completions of a path offered at most (a directory may hold thousands)


def path_completions(word: str) -> list[str]:
    """The files and directories whose path starts with `word`, written as it is (`~`
    kept); a directory ends in `/`, hidden ones only for a word naming a dot."""
    folder, _, start = word.rpartition("/")
    head = folder + "/" if "/" in word else ""
    if word == "~":
        return ["~/"]
    try:
        with os.scandir(Path(head or ".").expanduser()) as listing:
            found = [
                head + entry.name + ("/" if entry.is_dir() else "")
                for entry in listing
                if entry.name.startswith(start) and (start or not entry.name.startswith("."))
            ]
    except OSError:
        return []
    return sorted(found)[:PATHS_SHOWN]


# --------------------------------------------------------------------------
# The commands


def _room_or_current(state: ChatState, room: str | None) -> str:
    if room:
        return room_name(room)
    if state.room is None:
        raise UsageError("this is no room: name one, or /join one first")
    return state.room


def _page_size(text: str | None) -> int:
    if text is None:
        return PAGE_DEFAULT
    if not text.isdecimal() or not 1 <= int(text) <= PAGE_MAX:
        raise UsageError(f"a count is a number from 1 to {PAGE_MAX}")
    return int(text)


def _entered(state: ChatState, info: RoomInfo, verb: str) -> None:
    state.switch(info["name"])
    parts: list[str | tuple[str, str]] = [f"{verb} #{info['name']}"]
    if info["topic"]:
        parts += [": ", (info["topic"], "")]
    state.note(*parts)


CLEAR = "-delete"  # /topic -delete, /bio -delete (WeeChat's word for it)


@command("say", "<text...>", "say text in the current buffer (plain text does the same)")
async def say(ctx: Context, text: str) -> None:
    await ctx.say(text)


@command(
    "plain",
    "<text...>",
    "say text exactly as typed: **, `, > and the like are not formatting (logs, code)",
)
async def plain(ctx: Context, text: str) -> None:
    await ctx.say(text, typed=f"/plain {text}", plain=True)


@command("join", "<room>", "join a room and switch to it; you stay in the others")
async def join(ctx: Context, room: str) -> None:
    reply: JoinReply = await ctx.request("join", room=room)
    ctx.state.add_room(reply["room"], reply["history"])
    _entered(ctx.state, reply["room"], "you are in")


@command("leave", "[room]", "leave a room (the current one by default)")
async def leave(ctx: Context, room: str | None) -> None:
    name = _room_or_current(ctx.state, room)
    await ctx.request("leave", room=name)
    ctx.state.remove_room(name)
    ctx.state.note(f"you left #{name}")


PRIVATE = "--private"


@command(
    "create",
    "<room> [topic...]",
    f"create a room that you own, and enter it; {PRIVATE} (anywhere after the name) makes "
    "it invitation-only",
)
async def create(ctx: Context, room: str, topic: str | None) -> None:
    words = (topic or "").split(" ")
    private = PRIVATE in words
    if private:
        topic = " ".join(w for w in words if w != PRIVATE).strip() or None
    # Left out unless set, so a version 1 server sees the request it knows.
    reply: RoomReply = await ctx.request("create", room=room, topic=topic, private=private or None)
    ctx.state.add_room(reply["room"])
    _entered(ctx.state, reply["room"], "you created")


@command("delete", "<room>", "delete a room you own, with its history")
async def delete(ctx: Context, room: str) -> None:
    name = room_name(room)
    state = ctx.state
    state.deleted.discard(name)
    await ctx.request("delete", room=name)
    if name not in state.deleted:  # no `room_deleted` came (a private room I left)
        state.remove_room(name)
        state.note(f"you deleted #{name}")


@command(
    "topic",
    "[text...]",
    f"show the current room's topic, set it, or clear it with {CLEAR} (owner only)",
)
async def topic(ctx: Context, text: str | None) -> None:
    state = ctx.state
    name = _room_or_current(state, None)
    if text is None:
        current = state.rooms[name].topic
        if current:
            state.note(f"topic of #{name}: ", (current, ""))
        else:
            state.note(f"#{name} has no topic")
        return
    reply: RoomReply = await ctx.request("topic", room=name, topic="" if text == CLEAR else text)
    state.add_room(reply["room"])


@command("rooms", "", "list all rooms (* marks the ones you are in)")
async def rooms(ctx: Context) -> None:
    reply: RoomsReply = await ctx.request("rooms")
    listed = reply["rooms"]
    ctx.state.known_rooms.update(r["name"] for r in listed)
    ctx.state.show(render.rooms_table(listed, ctx.state.rooms))


@command("online", "", "list the people online")
async def online(ctx: Context) -> None:
    reply: UsersReply = await ctx.request("online")
    users = reply["users"]
    ctx.state.set_online(users)
    ctx.state.show(render.users_table(users))


@command("names", "[room]", "list every member of a room, online first, with their roles")
async def names(ctx: Context, room: str | None) -> None:
    state = ctx.state
    name = _room_or_current(state, room)
    try:
        reply: MembersReply = await ctx.request("members", room=name)
    except NexusError as exc:
        if exc.code != "unknown_command":
            raise
        await _online_names(ctx, name)  # a server without `members`
        return
    members = reply["members"]
    buffer = state.rooms.get(name)
    if buffer is not None:
        state.set_members(name, members)
        people = state.people(buffer)
        state.show(render.names(f"#{name}", people, state.is_away, partial(state.mark, buffer)))
        return
    away = {m["username"] for m in members if m["away"]}
    marks = {m["username"]: render.member_mark(m) for m in members}
    people = [(m["username"], m["online"]) for m in members]
    title = f"#{name} (you are not in it)"
    state.show(render.names(title, people, away.__contains__, marks.__getitem__))


async def _online_names(ctx: Context, name: str) -> None:
    """/names from the `online` list: what a server without `members` can tell."""
    state = ctx.state
    reply: UsersReply = await ctx.request("online")
    state.set_online(reply["users"])
    buffer = state.rooms.get(name)
    if buffer is not None:
        state.show(render.names(f"#{name} (online only)", state.people(buffer), state.is_away))
        return
    here = [(u["username"], True) for u in reply["users"] if name in u["rooms"]]
    state.show(render.names(f"#{name} (online only: you are not in it)", here, state.is_away))


@command("dm", "<user> <text...>", "send a direct message; it shows in that person's buffer")
async def dm(ctx: Context, user: str, text: str) -> None:
    await ctx.send_dm(user, text, typed=f"/dm {user} {text}")


@command("msg", "<user> <text...>", "the same as /dm")
async def msg(ctx: Context, user: str, text: str) -> None:
    await ctx.send_dm(user, text, typed=f"/msg {user} {text}")


def split_text(text: str, limit: int = MESSAGE_MAX) -> list[str]:
    """`text` in parts of at most `limit` characters, each cut at the last line end that
    fits, else the last space, else at the limit; the line end or space cut at goes, and
    so do parts of blanks only (the server refuses an empty message)."""
    parts = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            parts.append(rest[:limit])
            rest = rest[limit:]
        else:
            parts.append(rest[:cut])
            rest = rest[cut + 1 :]
    parts.append(rest)
    return [part for part in parts if part.strip()]


@command(
    "split",
    "<text...>",
    f"say text longer than a message ({MESSAGE_MAX:,} characters) as several, cut at line "
    "ends (Ctrl-Y does it for text just refused as too long)",
)
async def split(ctx: Context, text: str) -> None:
    for part in split_text(text):
        await ctx.say(part)


async def _open(ctx: Context, user: str) -> Buffer:
    """The conversation with `user` (checked with the server, spelled as it spells it)."""
    state = ctx.state
    buffer = state.dms.get(user.casefold())
    if buffer is None:
        try:
            reply: ProfileReply = await ctx.request("whois", username=user)
            user = reply["user"]["username"]
        except ConnectionClosed:
            pass  # offline: open it as typed; what is said there waits for the connection
        buffer = state.dm_buffer(user)
    state.switch(buffer)
    return buffer


@command("query", "<user> [text...]", "open the conversation with a user (and say text there)")
async def query(ctx: Context, user: str, text: str | None) -> None:
    await _open(ctx, user)
    if text:
        await ctx.say(text)


@command(
    "dms",
    "[user] [n]",
    "list the conversations, the most recently active first, or open one with n more",
)
async def dms(ctx: Context, user: str | None, n: str | None) -> None:
    state = ctx.state
    if user is None:
        newest = sorted(state.dms.values(), key=lambda b: b.last_ts, reverse=True)
        listed = [(state.number(b), b.name, b.last_ts, b.unread, b.highlights) for b in newest]
        if not listed:
            state.note("no conversations yet: /query someone")
            return
        state.show(render.conversations_table(listed))
        return
    buffer = await _open(ctx, user)
    reply: DmsReply = await ctx.request(
        "dms", with_=buffer.name, limit=_page_size(n), before=buffer.first_seq or None
    )
    state.add_dms(buffer, reply["messages"])
    buffer.more = reply["more"]


@command("close", "", "close the current conversation or thread (rooms: /leave)")
async def close(ctx: Context) -> None:
    buffer = ctx.state.current
    if buffer is None or buffer.kind == "room":
        raise UsageError("only a conversation or a thread closes; /leave leaves a room")
    ctx.state.close(buffer)


MOVE = "move"  # /buffer move N, as in WeeChat


@command(
    "buffer",
    "<buffer> [n]",
    "switch to a buffer by number or name (Alt-1..9 too); /buffer move n makes this one "
    "number n (+n, -n: n places on or back), and numbers are kept across restarts",
)
async def buffer_(ctx: Context, buffer: str, n: str | None) -> None:
    state = ctx.state
    if buffer.lower() == MOVE and (n is not None or state.dms.get(MOVE) is None):
        _move(state, n)
        return
    if n is not None:
        raise UsageError("usage: /buffer <n or name>, or /buffer move <n>")
    if buffer.isdecimal():
        if not 1 <= int(buffer) <= len(state.buffers):
            raise UsageError(f"no buffer {buffer}: there are {len(state.buffers)}")
        state.switch_number(int(buffer))
        return
    folded = buffer.casefold()
    found = next(
        (b for b in state.buffers if folded in (b.label.casefold(), b.name.casefold())), None
    )
    if found is None:
        raise UsageError(f"no buffer {buffer}")
    state.switch(found)


def _move(state: ChatState, n: str | None) -> None:
    """/buffer move n, +n or -n: the current buffer to that number."""
    current = _buffer(state)
    if n is None or not re.fullmatch(r"[+-]?\d+", n):
        raise UsageError("usage: /buffer move <n>, or +n / -n to move by n places")
    number = int(n) if n[0].isdecimal() else state.number(current) + int(n)
    state.move(current, number)


@command("history", "[room] [n]", "load n older messages of a room (default: current, 50)")
async def history(ctx: Context, room: str | None, n: str | None) -> None:
    if room is not None and room.isdecimal() and n is None:
        room, n = None, room  # `/history 20` means 20 more here
    state = ctx.state
    name = _room_or_current(state, room)
    mine = state.rooms.get(name)
    before = mine.first_seq if mine and mine.first_seq else None
    reply: HistoryReply = await ctx.request(
        "history", room=name, limit=_page_size(n), before=before
    )
    messages = reply["messages"]
    if mine is not None:
        state.add_messages(mine, messages)
        mine.more = reply["more"]
        more = ", more with /history" if reply["more"] else ", that is all"
        older = render.count(len(messages), "older message")
        state.note(f"{older} of #{name} loaded above{more}", room=name)
        return
    state.note(f"history of #{name}")
    for message in messages:
        state.pane.add(render.message(message), message["ts"])


# -- one message: reply, edit, erase, react ----------------------------------

CONTEXT = 10  # messages shown either side of the one /goto goes to
GOTO_PAGES = 10  # pages loaded back to reach it; further back it shows on its own


def _ref(n: str | None, rest: str | None) -> tuple[int | None, str | None]:
    """`[n] [text...]` -> (n, text): a first word of digits is the reference."""
    words = " ".join(w for w in (n, rest) if w)
    first, _, tail = words.partition(" ")
    if first.isdecimal():
        return int(first), tail.strip() or None
    return None, words or None


def _buffer(state: ChatState) -> Buffer:
    if state.current is None:
        raise UsageError("this is no room or conversation: /join one first")
    return state.current


def _address(buffer: Buffer, seq: int) -> dict[str, Any]:
    """The arguments naming message `seq` of `buffer` (`room`, or `with` for a DM)."""
    return {**buffer.place, "seq": seq}


async def _newest(ctx: Context, buffer: Buffer, seq: int | None, mine: bool) -> int:
    """`seq`, or when it is left out the newest message here (`mine`: of mine), once
    the ones typed before are sent."""
    if seq is not None:
        return seq
    await ctx.flush()
    newest = buffer.newest_seq(mine)
    if newest is None:
        whose = "of yours " if mine else ""
        raise UsageError(f"no message {whose}is loaded in {buffer.label}: give its number")
    return newest


@command("me", "<text...>", "say an action: /me waves shows as `* ana waves`")
async def me(ctx: Context, text: str) -> None:
    await ctx.say(text, action=True, typed=f"/me {text}")


@command("reply", "<n> <text...>", "answer message n of this buffer (n: its dim [number])")
async def reply(ctx: Context, n: str, text: str) -> None:
    if not n.isdecimal():
        raise UsageError("usage: /reply <n> <text...>, n the [number] after a message")
    _buffer(ctx.state)
    await ctx.say(text, reply_to=int(n), typed=f"/reply {n} {text}")


@command("edit", "[n] [text...]", "change what message n says (default: your last one here)")
async def edit(ctx: Context, n: str | None, text: str | None) -> None:
    seq, new = _ref(n, text)
    if new is None:
        raise UsageError("usage: /edit [n] <text...>")
    buffer = _buffer(ctx.state)
    seq = await _newest(ctx, buffer, seq, mine=True)
    # The `edited` event redraws the message, here and in every other terminal.
    await ctx.request("edit", text=new, **_address(buffer, seq))


@command("erase", "[n]", "erase message n for everyone (default: your last one here)")
async def erase(ctx: Context, n: str | None) -> None:
    seq, rest = _ref(n, None)
    if rest is not None:
        raise UsageError("usage: /erase [n], n the [number] after a message")
    buffer = _buffer(ctx.state)
    await ctx.request("erase", **_address(buffer, await _newest(ctx, buffer, seq, mine=True)))


async def _react(ctx: Context, n: str | None, emoji: str | None, on: bool) -> None:
    seq, rest = _ref(n, emoji)
    verb = "react" if on else "unreact"
    if rest is None or " " in rest:
        raise UsageError(f"usage: /{verb} [n] <emoji>")
    buffer = _buffer(ctx.state)
    seq = await _newest(ctx, buffer, seq, mine=False)
    await ctx.request("react", emoji=rest, on=on, **_address(buffer, seq))


@command("react", "[n] [emoji]", "react to message n with an emoji (default: the newest)")
async def react(ctx: Context, n: str | None, emoji: str | None) -> None:
    await _react(ctx, n, emoji, True)


@command("unreact", "[n] [emoji]", "take your reaction back (default: the newest message)")
async def unreact(ctx: Context, n: str | None, emoji: str | None) -> None:
    await _react(ctx, n, emoji, False)


# -- threads -----------------------------------------------------------------
# A thread has a buffer of its own (numbered like any other): its root on top,
# the replies below; what is typed there is a reply. The server alone knows which
# threads I follow, so /threads and the status bar's count come from it.


async def _root(ctx: Context, n: str | None, verb: str) -> tuple[Buffer, int]:
    """The buffer (room or conversation) and root seq `n` names: a link (`#room/12`,
    `bob/12`); in a thread's buffer, its own; elsewhere message n (default: the
    newest here), or the root of the thread it is a reply in."""
    state = ctx.state
    if n is not None and "/" in n:
        place, _, number = n.rpartition("/")
        if not number.isdecimal() or not place:
            raise UsageError(f"usage: /{verb} [n], or /{verb} #room/n")
        if not place.startswith("#"):
            return state.dm_buffer(place), int(number)
        room = state.rooms.get(room_name(place))
        if room is None:
            raise UsageError(f"you are not in {place}: /join it first")
        return room, int(number)
    seq, rest = _ref(n, None)
    if rest is not None:
        raise UsageError(f"usage: /{verb} [n], n the [number] after a message")
    buffer = _buffer(state)
    if buffer.kind == "thread":
        where = (
            state.rooms.get(buffer.name) if buffer.where == "room" else state.dm_buffer(buffer.name)
        )
        if where is None:
            raise UsageError(f"you are no longer in #{buffer.name}")
        return where, buffer.root if seq is None else seq
    seq = await _newest(ctx, buffer, seq, mine=False)
    entry = buffer.find(seq)
    if entry is not None and entry.message is not None:
        seq = entry.message.get("thread") or seq
    return buffer, seq


@command(
    "thread",
    "[n]",
    "open the thread of message n here (default: the newest; or a link, #room/n) in a "
    "buffer of its own; what is typed there is a reply",
)
async def thread(ctx: Context, n: str | None) -> None:
    where, seq = await _root(ctx, n, "thread")
    await _open_thread(ctx, where, seq)


async def _open_thread(ctx: Context, where: Buffer, seq: int) -> Buffer:
    """Opens the thread of message `seq` of `where` in its buffer: the thread
    it roots, or the one it is a reply in (the server answers that one)."""
    state = ctx.state
    reply: ThreadReply = await ctx.request("thread", limit=PAGE_MAX, **_address(where, seq))
    buffer = state.thread_buffer(where.where, where.name, reply["root"]["seq"])
    state.add_thread(buffer, reply["root"], reply["messages"], reply["more"])
    state.switch(buffer)
    return buffer


@command(
    "broadcast",
    "<text...>",
    "in a thread's buffer: reply, and show the reply in the room's timeline too",
)
async def broadcast(ctx: Context, text: str) -> None:
    await ctx.say(text, typed=f"/broadcast {text}", broadcast=True)


async def _follow(ctx: Context, n: str | None, on: bool) -> None:
    verb = "follow" if on else "unfollow"
    where, seq = await _root(ctx, n, verb)
    reply: FollowReply = await ctx.request("follow", on=on, **_address(where, seq))
    link = f"{where.label}/{seq}"
    if reply["following"]:
        ctx.state.note(f"following the thread of {link}: its replies count in /threads")
    else:
        ctx.state.note(f"no longer following the thread of {link} (until you reply in it)")


@command("follow", "[n]", "follow the thread of message n (default: this thread, or the newest)")
async def follow(ctx: Context, n: str | None) -> None:
    await _follow(ctx, n, True)


@command("unfollow", "[n]", "stop following the thread of message n (default: this thread)")
async def unfollow(ctx: Context, n: str | None) -> None:
    await _follow(ctx, n, False)


@command("threads", "[n]", "the threads you follow, the latest reply first, with unread counts")
async def threads(ctx: Context, n: str | None) -> None:
    if n is not None and (not n.isdecimal() or not 1 <= int(n) <= THREADS_MAX):
        raise UsageError(f"a count is a number from 1 to {THREADS_MAX}")
    state = ctx.state
    reply: ThreadsReply = await ctx.request("threads", limit=int(n) if n else THREADS_DEFAULT)
    listed = reply["threads"]
    state.threads_unread = sum(1 for t in listed if t["unread"])
    if not listed:
        state.note("you follow no thread: /thread n opens one, /follow n follows it")
        return
    state.show(render.threads_table(listed, state.me))
    state.note("/thread #room/n opens one (a thread's link, as listed)")


# -- pins --------------------------------------------------------------------
# The `pinned` event says what changed, in the room and on every member's screen;
# a pin that changes nothing has no event, so the command says so itself.


def _room_buffer(state: ChatState) -> Buffer:
    buffer = _buffer(state)
    if buffer.kind != "room":
        raise UsageError("messages are pinned in rooms only")
    return buffer


async def _pin(ctx: Context, buffer: Buffer, seq: int, on: bool) -> None:
    state = ctx.state
    state.last_pinned = None
    await ctx.request("pin", room=buffer.name, seq=seq, on=on)
    if state.last_pinned != (buffer.name, seq, on):
        where = f"#{buffer.name}/{seq}"
        state.note(f"{where} was pinned already" if on else f"{where} is not pinned")


@command("pin", "[n]", "pin message n of this room for everyone (default: the newest)")
async def pin(ctx: Context, n: str | None) -> None:
    seq, rest = _ref(n, None)
    if rest is not None:
        raise UsageError("usage: /pin [n], n the [number] after a message")
    buffer = _room_buffer(ctx.state)
    await _pin(ctx, buffer, await _newest(ctx, buffer, seq, mine=False), True)


@command("unpin", "[n]", "unpin message n of this room (default: the latest pinned)")
async def unpin(ctx: Context, n: str | None) -> None:
    seq, rest = _ref(n, None)
    if rest is not None:
        raise UsageError("usage: /unpin [n], n the [number] after a message")
    buffer = _room_buffer(ctx.state)
    if seq is None:
        reply: PinsReply = await ctx.request("pins", room=buffer.name)
        if not reply["messages"]:
            raise UsageError(f"nothing is pinned in #{buffer.name}")
        seq = reply["messages"][0]["seq"]
    await _pin(ctx, buffer, seq, False)


@command("pins", "[room]", "list a room's pinned messages, who pinned them and when")
async def pins(ctx: Context, room: str | None) -> None:
    name = _room_or_current(ctx.state, room)
    reply: PinsReply = await ctx.request("pins", room=name)
    if not reply["messages"]:
        ctx.state.note(f"nothing is pinned in #{name}: /pin n pins message n")
        return
    ctx.state.show(render.pins_table(name, reply["messages"]))


# -- files -------------------------------------------------------------------
# A file goes over HTTP beside the chat (transfer.py) while typing goes on; the
# status bar shows how far it is, and the message carrying it follows once it is
# up. /save and /open take the message's reference, as /reply does.

DOWNLOADS = Path("~/Downloads")


class Shown:
    """A transfer in the status bar (`uploading cat.png 42%`) while the block runs; its
    failure ends as one error line. Calls with (done, total) move the percentage."""

    def __init__(self, ctx: Context, label: str) -> None:
        self.ctx, self.label = ctx, label
        self.percent = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // total if total else 100
        if percent != self.percent:
            self.percent = percent
            self.ctx.state.transfers[self] = f"{self.label} {percent}%"
            self.ctx.changed()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        self.ctx.state.transfers.pop(self, None)
        if isinstance(exc, TransferError):
            self.ctx.state.error(f"{self.label}: {exc}")
        self.ctx.changed()
        return isinstance(exc, TransferError)


def _local_path(text: str) -> Path:
    return Path(text).expanduser()


def _path_and_text(path: str, text: str | None) -> tuple[Path, str]:
    """`/upload` takes a path with spaces in quotes: `"my cat.png" look`."""
    if path[:1] in ("'", '"'):
        line = f"{path} {text or ''}"
        end = line.find(path[0], 1)
        if end < 0:
            raise UsageError("a quoted path needs its closing quote")
        path, text = line[1:end], line[end + 1 :]
    return _local_path(path), (text or "").strip()


@command(
    "upload",
    "<path> [text...]",
    "send a file here, with text if given (~ and Tab work; quote a path with spaces); "
    "the status bar shows its progress",
)
async def upload(ctx: Context, path: str, text: str | None) -> None:
    buffer = _buffer(ctx.state)
    local, words = _path_and_text(path, text)
    if not local.is_file():
        raise UsageError(f"no file {local}")
    files = ctx.files()
    ctx.background(_upload(ctx, files, buffer, local, words))


async def _upload(ctx: Context, files: Files, buffer: Buffer, path: Path, text: str) -> None:
    with Shown(ctx, f"uploading {render.clean(path.name)}") as progress:
        record = await files.upload(path, progress)
        await ctx.share(buffer, text, [record["id"]])


def _attachments(state: ChatState, n: str) -> list[Attachment]:
    """The files of message `n` of the current buffer (loaded: /goto n loads it)."""
    if not n.isdecimal():
        raise UsageError("n is the [number] after a message")
    buffer = _buffer(state)
    entry = buffer.find(int(n))
    if entry is None or entry.message is None:
        raise UsageError(f"message {n} is not loaded in {buffer.label}: /goto {n} loads it")
    files = entry.message.get("files") or []
    if not files:
        raise UsageError(f"message {n} carries no file")
    return files


def _destinations(files: list[Attachment], path: str | None) -> list[tuple[Attachment, Path]]:
    """Where each file goes: into ~/Downloads, into the directory `path`, or at `path`
    itself for a single file."""
    target = _local_path(path) if path else DOWNLOADS.expanduser()
    into = path is None or path.endswith("/") or target.is_dir() or len(files) > 1
    if into and target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file: the files of a message go into a directory")
    if into:
        return [(file, target / safe_name(file["name"])) for file in files]
    return [(files[0], target)]


@command(
    "save",
    "<n> [path...]",
    "save the files of message n (its [number]) in ~/Downloads, or in or as PATH; "
    "a name taken gets (1), (2)...: no file is replaced",
)
async def save(ctx: Context, n: str, path: str | None) -> None:
    targets = _destinations(_attachments(ctx.state, n), path)
    files = ctx.files()
    ctx.background(_save(ctx, files, targets))


async def _save(ctx: Context, files: Files, targets: list[tuple[Attachment, Path]]) -> None:
    for file, dest in targets:
        with Shown(ctx, f"saving {render.clean(file['name'])}") as progress:
            saved = await files.download(file, dest, progress)
            ctx.state.note(f"saved {saved}")


def opener() -> str:
    """The desktop's program that opens a file with its usual application."""
    name = "open" if sys.platform == "darwin" else "xdg-open"
    found = shutil.which(name)
    if found is None:
        raise UsageError(
            f"{name} is not installed (xdg-utils), so nothing opens files here: "
            "/save n saves them instead"
        )
    return found


@cache
def scratch() -> Path:
    """A private directory for the files /open fetches; left for the viewers after exit."""
    return Path(tempfile.mkdtemp(prefix="nexus-chat-"))


@command("open", "<n>", "open the files of message n (its [number]) with the desktop's viewer")
async def open_(ctx: Context, n: str) -> None:
    files_of = _attachments(ctx.state, n)
    program = opener()
    files = ctx.files()
    ctx.background(_open_files(ctx, files, program, files_of))


async def _open_files(ctx: Context, files: Files, program: str, attached: list[Attachment]) -> None:
    for file in attached:
        saved = None
        with Shown(ctx, f"opening {render.clean(file['name'])}") as progress:
            saved = await files.download(file, scratch() / safe_name(file["name"]), progress)
        if saved is not None:
            await _view(ctx, program, saved)


async def _view(ctx: Context, program: str, path: Path) -> None:
    """Hands `path` to the desktop's opener, on its own session: it never reads the
    terminal the screen owns."""
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        status = await proc.wait()
    except OSError as exc:
        ctx.state.error(f"cannot run {program}: {exc.strerror or exc}")
    else:
        if status:
            ctx.state.error(f"{Path(program).name} could not open {path} (status {status})")
    ctx.changed()


# -- finding messages ----------------------------------------------------------


BEFORE = "2026-12-01T09:30"
SEARCH_USAGE = f"usage: /search <words...> [#room] [from:user] [before:{BEFORE}]"


def _before(text: str) -> float:
    """`before:` a local date or date and time, or a timestamp (as the note after a
    page of results gives it: exact, so the next page starts right after)."""
    try:
        return (
            float(text)
            if text.replace(".", "", 1).isdecimal()
            else datetime.fromisoformat(text).timestamp()
        )
    except ValueError:
        raise UsageError(f"before: takes a date or date and time, such as {BEFORE}") from None


@command(
    "search",
    "<words...>",
    "find messages with all the words; `#room`, `from:user` and `before:date` narrow it "
    "(/goto opens one)",
)
async def search(ctx: Context, words: str) -> None:
    args: dict[str, Any] = {}
    terms = []
    for word in words.split():
        key, _, value = word.partition(":")
        if word.startswith("#") and len(word) > 1 and "room" not in args:
            args["room"] = room_name(word)
        elif key.lower() == "from" and value and "from_" not in args:
            args["from_"] = value
        elif key.lower() == "before" and value and "before" not in args:
            args["before"] = _before(value)
        else:
            terms.append(word)
    if not terms:
        raise UsageError(SEARCH_USAGE)
    query = " ".join(terms)
    reply: SearchReply = await ctx.request("search", query=query, limit=SEARCH_MAX, **args)
    found = reply["results"]
    more = ""
    if reply["more"] and found:
        more = f"; older ones: add before:{found[-1]['ts']!r}"
    _results(ctx.state, f"search: {query}", found, more)


@command("mentions", "[n]", "list the newest messages that mention you (/goto opens one)")
async def mentions(ctx: Context, n: str | None) -> None:
    """The server's mentions are `@name` only; the screen also highlights the name as a
    plain word and client.toml's highlight words, so those are searched for as well and
    the messages the screen highlights (in rooms, not mine) join the list."""
    if n is not None and (not n.isdecimal() or not 1 <= int(n) <= SEARCH_MAX):
        raise UsageError(f"a count is a number from 1 to {SEARCH_MAX}")
    state = ctx.state
    limit = int(n) if n else SEARCH_DEFAULT
    reply: MentionsReply = await ctx.request("mentions", limit=limit)
    found: dict[tuple[str, int], AnyMessage] = {(m["room"], m["seq"]): m for m in reply["messages"]}
    for word in dict.fromkeys((state.me, *state.highlight)):
        try:
            page: SearchReply = await ctx.request("search", query=word, limit=SEARCH_MAX)
        except NexusError:
            continue  # a word too short to search for, or a server without search
        for msg in page["results"]:
            room = msg.get("room")
            mine = msg["from"].casefold() == state.me.casefold()
            if isinstance(room, str) and not mine and state.mention.search(msg["text"]):
                found.setdefault((room, msg["seq"]), msg)
    newest = sorted(found.values(), key=lambda m: (m["ts"], m["seq"]), reverse=True)
    _results(state, "mentions of you", newest[:limit])


def _results(state: ChatState, title: str, found: Sequence[AnyMessage], more: str = "") -> None:
    if not found:
        state.note(f"{title}: nothing found")
        return
    state.show(render.results_table(title, found, state.me))
    state.note(f"{len(found)} found, newest first{more}; /goto #room n (or user n) opens one")


@command(
    "goto",
    "[buffer] [n]",
    "show message n of a room or conversation among its neighbours (or a link: #room/n)",
)
async def goto(ctx: Context, buffer: str | None, n: str | None) -> None:
    if buffer is not None and n is None:
        where, _, number = buffer.rpartition("/")
        if number.isdecimal():  # a message link, `#room/12` (or `user/12`), or `/goto 12`
            buffer, n = where or None, number
    if n is None or not n.isdecimal():
        raise UsageError("usage: /goto [#room|user] <n>, or /goto #room/n")
    state, seq = ctx.state, int(n)
    if buffer is None:
        target = _buffer(state)
    elif buffer.startswith("#") or buffer in state.rooms:
        name = room_name(buffer)
        if name not in state.rooms:  # not a member: the page around it, shown here
            page: HistoryReply = await ctx.request(
                "history", room=name, around=seq, limit=2 * CONTEXT + 1
            )
            _show_around(state.pane, f"#{name} (you are not in it)", page["messages"], seq)
            return
        target = state.rooms[name]
    else:
        target = await _open(ctx, buffer)
    entry = target.find(seq)
    if entry is None and target.kind == "thread":
        raise UsageError(f"no message {seq} in the thread {target.label}")
    if entry is None:
        try:
            entry = await _load_to(ctx, target, seq)
        except UsageError:  # not on the timeline: a reply opens in its thread
            target = await _reply_thread(ctx, target, seq)
            entry = target.find(seq)
            assert entry is not None  # _reply_thread found it there
    state.switch(target)
    state.spotlight(target, entry)
    target.lines.scroll_to(entry)


async def _reply_thread(ctx: Context, where: Buffer, seq: int) -> Buffer:
    """The thread buffer that shows reply `seq` of `where`; UsageError when
    no thread holds it (no such message, or one older than a page shows)."""
    missing = UsageError(f"no message {seq} in {where.label}: not stored, or never sent")
    try:
        buffer = await _open_thread(ctx, where, seq)
    except NexusError:
        raise missing from None
    if buffer.find(seq) is None:
        raise missing
    return buffer


async def page_of(
    request: Callable[..., Awaitable[Any]], buffer: Buffer, **where: Any
) -> HistoryReply:
    """A page of `buffer`'s messages (`before`, `after` or `around` and `limit`
    in `where`): `history` for a room, `dms` for a conversation, whose
    replies read alike."""
    page: HistoryReply = await request(
        "history" if buffer.kind == "room" else "dms", **buffer.place, **where
    )
    return page


async def _load_to(ctx: Context, buffer: Buffer, seq: int) -> Entry:
    """Loads older pages until message `seq` and a few before it are in `buffer`. One
    further back than GOTO_PAGES pages, or newer than the buffer holds, is shown with
    its neighbours instead of what the buffer held (the page `around` it); pages
    before and after it load as the view reaches them. Returns its entry; raises
    UsageError when the server has no such message."""
    state = ctx.state
    far = buffer.first_seq - seq > GOTO_PAGES * PAGE_MAX or seq > buffer.last_seq
    if not buffer.first_seq or far:
        page = await page_of(ctx.request, buffer, around=seq, limit=2 * CONTEXT + 1)
        if any(m["seq"] == seq for m in page["messages"]):
            state.jump(buffer, page["messages"], page["more"], page.get("more_after", False))
    while buffer.first_seq > max(1, seq - CONTEXT):
        older = await page_of(ctx.request, buffer, before=buffer.first_seq, limit=PAGE_MAX)
        messages, more = older["messages"], older["more"]
        if buffer.kind == "room":
            state.add_messages(buffer, messages)
        else:
            state.add_dms(buffer, cast(list[DirectMessage], messages))
        buffer.more = more
        if not messages or not more:
            break
    entry = buffer.find(seq)
    if entry is None:
        raise UsageError(f"no message {seq} in {buffer.label}: not stored, or never sent")
    return entry


def _show_around(pane: Scrollback, where: str, messages: list[Any], seq: int) -> Entry:
    """Adds copies of `messages` (like /lastlog's) to `pane`, `seq` marked, and scrolls
    to it (a room I am not in); raises UsageError when `seq` is not among them."""
    if not any(m["seq"] == seq for m in messages):
        raise UsageError(f"no message {seq} in {where}: not stored, or never sent")
    pane.add_entry(Entry(render.notice(f"message {seq} of {where} among its neighbours:")))
    shown = {}
    for msg in messages:
        line = render.message(msg, ref=True)
        if msg["seq"] == seq:
            line.body.stylize(render.FOUND)
        shown[msg["seq"]] = pane.add_entry(Entry(line, quoted=True), msg["ts"])
    pane.scroll_to(shown[seq])
    return shown[seq]


@command("lastlog", "<words...>", "show the loaded lines of this buffer containing words")
async def lastlog(ctx: Context, words: str) -> None:
    ctx.state.lastlog(words.strip())


# -- moderation ------------------------------------------------------------
# The room is the current one unless the first word names one with `#`; reasons
# take the rest of the line. The server decides who may do what (not_allowed).


def _target(state: ChatState, first: str, rest: str | None) -> tuple[str, str, str | None]:
    """`[#room] <user> [rest...]` -> (room, user, rest)."""
    if first.startswith("#"):
        if not rest:
            raise UsageError("name the user after the room")
        user, _, tail = rest.partition(" ")
        return room_name(first), user, tail.strip() or None
    return _room_or_current(state, None), first, rest


SEEN = frozenset({"op", "deop", "kick", "mute", "unmute"})  # answered by an event to the room


def _moderation(cmd: str, done: str, help: str, *, reason: bool) -> None:
    """Registers /cmd [#room] <user> (then [reason...] when `reason`)."""

    async def handler(ctx: Context, user: str, rest: str | None) -> None:
        state = ctx.state
        room, name, tail = _target(state, user, rest)
        args: dict[str, Any] = {"room": room, "username": name}
        if reason:
            args["reason"] = tail or ""
        elif tail:
            raise UsageError(f"usage: /{cmd} [#room] <user>")
        mine = state.rooms.get(room)
        member = mine is not None and name.casefold() in mine.members  # before it: a kick
        await ctx.request(cmd, **args)
        if mine is not None and (cmd in SEEN or (cmd == "ban" and member)):
            return  # the room's event line says it, here and everywhere
        why = f": {tail}" if reason and tail else ""
        state.note(f"{name} {done} #{room}{why}", room=room if mine else None)

    usage = "[#room] <user>" + (" [reason...]" if reason else "")
    args = (Arg("user", True, False), Arg("rest", False, True))
    help = f"{help} (in the current room, or the #room named first)"
    COMMANDS[cmd] = Command(cmd, usage, help, args, handler, immediate=False)


_moderation("op", "is now a moderator of", "make a member a moderator", reason=False)
_moderation("deop", "is no longer a moderator of", "take a moderator's role", reason=False)
_moderation("kick", "was kicked from", "remove a member (they may join again)", reason=True)
_moderation("ban", "is banned from", "remove a user and keep them out", reason=True)
_moderation("unban", "is no longer banned from", "let a banned user join again", reason=True)
_moderation("mute", "is muted in", "stop a member from speaking", reason=False)
_moderation("unmute", "is no longer muted in", "let a muted user speak again", reason=False)
_moderation("invite", "was invited to", "invite a user (to a private room too)", reason=False)


@command("bans", "[room]", "list the users banned from a room, by whom and why")
async def bans(ctx: Context, room: str | None) -> None:
    name = _room_or_current(ctx.state, room)
    reply: BansReply = await ctx.request("bans", room=name)
    if not reply["bans"]:
        ctx.state.note(f"nobody is banned from #{name}")
        return
    ctx.state.show(render.bans_table(f"Banned from #{name}", reply["bans"]))


@command("admin", "<user> [on]", "make a user a server admin; `/admin user off` takes it away")
async def admin(ctx: Context, user: str, on: str | None) -> None:
    if on not in (None, "on", "off"):
        raise UsageError("usage: /admin <user> [on|off]")
    reply: ProfileReply = await ctx.request("admin", username=user, on=on != "off")
    name = reply["user"]["username"]
    ctx.state.note(f"{name} is {'now' if reply['user'].get('admin') else 'no longer'} an admin")


@command("suspend", "<user> [reason...]", "lock an account out of the server (admins only)")
async def suspend(ctx: Context, user: str, reason: str | None) -> None:
    await ctx.request("suspend", username=user, reason=reason or "")
    ctx.state.note(f"{user} is suspended" + (f": {reason}" if reason else ""))


@command("unsuspend", "<user> [reason...]", "let a suspended account log in again")
async def unsuspend(ctx: Context, user: str, reason: str | None) -> None:
    await ctx.request("unsuspend", username=user, reason=reason or "")
    ctx.state.note(f"{user} is no longer suspended")


@command("whois", "<user>", "show a user's profile")
async def whois(ctx: Context, user: str) -> None:
    reply: ProfileReply = await ctx.request("whois", username=user)
    ctx.state.show(render.profile_panel(reply["user"]))


@command("bio", "[text...]", f"show your bio, set it, or clear it with {CLEAR}")
async def bio(ctx: Context, text: str | None) -> None:
    if text is None:
        reply: ProfileReply = await ctx.request("whois", username=ctx.state.me)
        current = reply["user"]["bio"]
        if current:
            ctx.state.note("your bio: ", (current, ""))
        else:
            ctx.state.note("your bio is empty: /bio text sets it")
        return
    cleared = text == CLEAR
    await ctx.request("bio", text="" if cleared else text)
    ctx.state.note("bio cleared" if cleared else "bio updated")


@command("away", "[text...]", "say you are away, and why; without text: you are back")
async def away(ctx: Context, text: str | None) -> None:
    reply: ProfileReply = await ctx.request("away", text=text or "")
    state = ctx.state
    state.set_away(state.me, reply["user"].get("away"))
    if text:
        state.note("you are away: ", (text, ""))
    else:
        state.note("you are back")


@command("password", "", "change your password (asked without echo; other sessions end)")
async def password(ctx: Context) -> None:
    old = await ctx.secret("current password")
    new = await ctx.secret("new password")
    if new != await ctx.secret("new password again"):
        raise UsageError("the two new passwords differ: the password is unchanged")
    reply: TokenReply = await ctx.request("password", old=old, new=new)
    ctx.new_credentials(new, reply["token"])
    ctx.state.note("password changed; your other sessions were logged out")


@command("ping", "", "measure the round trip to the server")
async def ping(ctx: Context) -> None:
    start = time.perf_counter()
    await ctx.request("ping")
    ctx.state.note(f"pong in {(time.perf_counter() - start) * 1000:.1f} ms")


@command("reconnect", "", "connect again now, without waiting for the next attempt", immediate=True)
async def reconnect(ctx: Context) -> None:
    ctx.reconnect()


@command("clear", "", "clear the current pane (/history, /goto and scrolling up bring it back)")
async def clear(ctx: Context) -> None:
    state = ctx.state
    if state.current is not None:
        state.current.clear()
    else:
        state.home.clear()


KEYS = (
    "keys: Up on an empty line edits your last message here (Up again: input history), "
    "Alt-1..9 buffer n, Alt-Left/Right or Ctrl-P/N previous/next, Alt-A next active, "
    "PgUp/PgDn scroll, Home/End top/bottom, Alt-= folded lines, "
    "Alt-Shift-N (or Alt-Shift-B) hides or shows the side panel, Ctrl-Y sends text refused "
    "as too long in parts, a click on #room/n opens that message, Ctrl-L repaint, "
    "Tab completes, Ctrl-C quits"
)


@command("help", "[command]", "list the commands, or show one")
async def help_(ctx: Context, command: str | None) -> None:
    if command is None:
        ctx.state.show(render.help_table((c.synopsis, c.help) for c in COMMANDS.values()))
        ctx.state.note(KEYS)
        return
    cmd = COMMANDS.get(command.removeprefix("/").lower())
    if cmd is None:
        raise UsageError(f"unknown command /{command.removeprefix('/')}: /help lists them")
    ctx.state.note(f"{cmd.synopsis}: {cmd.help}")


@command("quit", "", "leave Nexus (Ctrl-C and Ctrl-D too)", immediate=True)
async def quit_(ctx: Context) -> None:
    ctx.quit()
