"""The slash commands: one table that parsing, /help and tab completion all read.

Each command is registered once with a usage string such as
`<room> [topic...]`: `<x>` is required, `[x]` optional, `...` takes the rest
of the line. The argument's name also says what Tab completes for it
(`room`, `user`). Plain text is `/say`; `//text` says text with a leading
slash.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nexus.client import render
from nexus.client.connection import ConnectionClosed
from nexus.client.state import ChatState
from nexus.errors import NexusError
from nexus.protocol import (
    PAGE_DEFAULT,
    PAGE_MAX,
    DmsReply,
    HistoryReply,
    JoinReply,
    ProfileReply,
    RoomInfo,
    RoomReply,
    RoomsReply,
    UsersReply,
    room_name,
)


class Context(Protocol):
    """What a command handler may use (the session implements it)."""

    state: ChatState

    async def request(self, cmd: str, **args: Any) -> Any:
        """The checked reply to `cmd`, as ChatConnection.request returns it."""

    async def say(self, text: str) -> None: ...

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

    @property
    def synopsis(self) -> str:
        return f"/{self.name} {self.usage}".rstrip()


COMMANDS: dict[str, Command] = {}
_ARG = re.compile(r"([<\[])(\w+)(\.\.\.)?[>\]]")


def command(name: str, usage: str, help: str):
    """Registers a handler `async def h(ctx, **args)` under /name."""

    def register(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        args = tuple(Arg(n, kind == "<", bool(rest)) for kind, n, rest in _ARG.findall(usage))
        COMMANDS[name] = Command(name, usage, help, args, handler)
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
        kind = cmd.args[index].name if cmd and index < len(cmd.args) else ""
        if cmd and cmd.name == "say":
            kind = "user"
    if kind == "room":
        prefix = word.removeprefix("#").lower()
        rooms = state.known_rooms | state.rooms.keys()
        return word, sorted(r for r in rooms if r.startswith(prefix))
    if kind == "user":
        folded = word.removeprefix("@").casefold()
        names = state.known_users | state.online
        matches = (n for n in names if n and n.casefold().startswith(folded))
        return word, sorted(matches, key=str.casefold)
    return word, []


# --------------------------------------------------------------------------
# The commands


def _room_or_current(state: ChatState, room: str | None) -> str:
    if room:
        return room_name(room)
    if state.current is None:
        raise UsageError("you are in no room: /join one first")
    return state.current


def _page_size(text: str | None) -> int:
    if text is None:
        return PAGE_DEFAULT
    if not text.isdigit() or not 1 <= int(text) <= PAGE_MAX:
        raise UsageError(f"a count is a number from 1 to {PAGE_MAX}")
    return int(text)


def _entered(state: ChatState, info: RoomInfo, verb: str) -> None:
    state.switch(info["name"])
    parts: list[str | tuple[str, str]] = [f"{verb} #{info['name']}"]
    if info["topic"]:
        parts += [": ", (info["topic"], "")]
    state.note(*parts)


@command("say", "<text...>", "say text in the current room (plain text does the same)")
async def say(ctx: Context, text: str) -> None:
    await ctx.say(text)


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


@command("create", "<room> [topic...]", "create a room that you own, and enter it")
async def create(ctx: Context, room: str, topic: str | None) -> None:
    reply: RoomReply = await ctx.request("create", room=room, topic=topic)
    ctx.state.add_room(reply["room"])
    _entered(ctx.state, reply["room"], "you created")


@command("delete", "<room>", "delete a room you own, with its history")
async def delete(ctx: Context, room: str) -> None:
    name = room_name(room)
    await ctx.request("delete", room=name)
    ctx.state.remove_room(name)
    ctx.state.note(f"you deleted #{name}")


@command("topic", "<text...>", "set the current room's topic (owner only)")
async def topic(ctx: Context, text: str) -> None:
    reply: RoomReply = await ctx.request(
        "topic", room=_room_or_current(ctx.state, None), topic=text
    )
    ctx.state.add_room(reply["room"])


@command("rooms", "", "list all rooms (* marks yours)")
async def rooms(ctx: Context) -> None:
    reply: RoomsReply = await ctx.request("rooms")
    listed = reply["rooms"]
    ctx.state.known_rooms.update(r["name"] for r in listed)
    ctx.state.show(render.rooms_table(listed, ctx.state.rooms))


@command("online", "", "list the people online")
async def online(ctx: Context) -> None:
    reply: UsersReply = await ctx.request("online")
    users = reply["users"]
    ctx.state.online = {u["username"] for u in users}
    ctx.state.known_users.update(ctx.state.online)
    ctx.state.show(render.users_table(users))


@command("dm", "<user> <text...>", "send a direct message")
async def dm(ctx: Context, user: str, text: str) -> None:
    await ctx.request("dm", to=user, text=text)  # shown when its `dm` event arrives


@command("dms", "<user> [n]", "show the direct messages with a user (marks them read)")
async def dms(ctx: Context, user: str, n: str | None) -> None:
    reply: DmsReply = await ctx.request("dms", with_=user, limit=_page_size(n))
    state = ctx.state
    more = " (older ones exist: /dms with a larger n)" if reply["more"] else ""
    state.note("direct messages with ", render.who(user), more)
    for msg in reply["messages"]:
        state.pane.add(render.direct(msg, state.me), msg["ts"])
    if not reply["messages"]:
        state.note("none yet")


@command("history", "[room] [n]", "load n older messages of a room (default: current, 50)")
async def history(ctx: Context, room: str | None, n: str | None) -> None:
    if room is not None and room.isdigit() and n is None:
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
        more = ", more with /history" if reply["more"] else ", that is all"
        state.note(f"{len(messages)} older messages of #{name} loaded above{more}", room=name)
        return
    state.note(f"history of #{name}")
    for msg in messages:
        state.pane.add(render.message(msg), msg["ts"])


@command("whois", "<user>", "show a user's profile")
async def whois(ctx: Context, user: str) -> None:
    reply: ProfileReply = await ctx.request("whois", username=user)
    ctx.state.show(render.profile_panel(reply["user"]))


@command("bio", "[text...]", "set your bio (empty clears it)")
async def bio(ctx: Context, text: str | None) -> None:
    await ctx.request("bio", text=text or "")
    ctx.state.note("bio updated" if text else "bio cleared")


@command("ping", "", "measure the round trip to the server")
async def ping(ctx: Context) -> None:
    start = time.perf_counter()
    await ctx.request("ping")
    ctx.state.note(f"pong in {(time.perf_counter() - start) * 1000:.1f} ms")


@command("clear", "", "clear the current pane")
async def clear(ctx: Context) -> None:
    ctx.state.pane.clear()


@command("help", "[command]", "list the commands, or show one")
async def help_(ctx: Context, command: str | None) -> None:
    if command is None:
        ctx.state.show(render.help_table((c.synopsis, c.help) for c in COMMANDS.values()))
        ctx.state.note(
            "keys: PgUp/PgDn scroll, Ctrl-N/Ctrl-P switch rooms, Tab completes, Ctrl-C quits"
        )
        return
    cmd = COMMANDS.get(command.removeprefix("/").lower())
    if cmd is None:
        raise UsageError(f"unknown command /{command.removeprefix('/')}: /help lists them")
    ctx.state.note(f"{cmd.synopsis}: {cmd.help}")


@command("quit", "", "leave Nexus (Ctrl-C and Ctrl-D too)")
async def quit_(ctx: Context) -> None:
    ctx.quit()
