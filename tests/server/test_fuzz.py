"""Fuzzing the server over real sockets: a stateful model of the chat, and arbitrary input.

(a) `ChatMachine` drives a real in-process server with register, login, join,
leave, create, delete, topic, say, dm, history, dms, whois, bio, rooms and quit,
with valid and invalid arguments, and checks each reply against a small model
of users, rooms, memberships and messages: ok or the exact error code, and
every message back in history with the right `seq`.

(b) Property tests throw arbitrary JSON values, arbitrary requests and
arbitrary bytes at the framing and dispatch: each reply is ok or an error
with a known code, never `internal`, and the connection stays usable.

Each test owns one event loop and drives it from synchronous code, so
Hypothesis runs its examples without any async plumbing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from nexus.errors import ERROR_CODES
from nexus.protocol import REQUESTS
from nexus.server.commands.registry import COMMANDS
from nexus.server.server import NexusServer
from nexus.server.session import Phase
from tests import conftest
from tests.wire import Peer

# Commands an anonymous peer may ask (the others are auth_required before login).
BEFORE_LOGIN = {name for name, command in COMMANDS.items() if Phase.ANONYMOUS in command.phases}

CLIENTS = 3  # connections the state machine juggles


class TracebackCatcher(logging.Handler):
    """Keeps every record of the server's loggers that carries a traceback or is an error."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.bad.append(record)

    def __enter__(self) -> TracebackCatcher:
        for name in ("nexus", "asyncio"):
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in ("nexus", "asyncio"):
            logging.getLogger(name).removeHandler(self)

    def assert_clean(self) -> None:
        assert not self.bad, [self.format(r) for r in self.bad][:3]


class LoopServer:
    """A real server on 127.0.0.1 port 0, on an event loop this object owns and runs."""

    def __init__(self, **overrides: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="nexus-fuzz-"))
        self.catcher = TracebackCatcher().__enter__()
        settings_: dict[str, Any] = {"login_attempts_per_minute": 100_000, "login_frames": 100_000}
        settings_.update(overrides)
        config = conftest.test_config(self.dir / "nexus_data.json", **settings_)
        self.server: NexusServer = self.run(NexusServer.start(config))
        self.host, self.port = self.server.address
        self.peers: list[Peer] = []

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    async def peer(self) -> Peer:
        peer = await Peer.connect(self.host, self.port)
        self.peers.append(peer)
        hello = await peer.frame()
        assert hello["event"] == "hello", hello
        return peer

    def close(self) -> None:
        try:
            for peer in self.peers:
                with contextlib.suppress(Exception):
                    self.run(peer.close())
            self.run(self.server.stop())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            self.catcher.__exit__()
            shutil.rmtree(self.dir, ignore_errors=True)


def assert_clean_error(reply: dict[str, Any]) -> None:
    """An error reply has a known code other than `internal` and a message safe to print."""
    assert reply["ok"] is False, reply
    code = reply["error"]["code"]
    assert code in ERROR_CODES and code != "internal", reply
    message = reply["error"]["message"]
    assert isinstance(message, str) and message, reply
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in message), reply


# ---------------------------------------------------------------------------
# (a) The stateful model

# (value, expected code when it is refused or None) for each kind of argument.
USERNAMES = [
    ("alice", None),
    ("Alice", None),  # alice again, ignoring case
    ("bob_2", None),
    ("carol-c", None),
    ("ab", "invalid_username"),
    ("x" * 25, "invalid_username"),
    ("bad name", "invalid_username"),
    ("eve\x1b[31m", "invalid_username"),
    ("\u212aate", "invalid_username"),  # Kelvin sign: lower-cases to "kate"
    ("NickServ", "invalid_username"),  # the server's: nobody may take it
]
PASSWORDS = [
    ("correct horse", None),
    ("battery staple", None),
    ("short", "weak_password"),
    ("p" * 1025, "too_long"),
]
# (raw, the name it normalises to or None when malformed)
ROOMS = [
    ("general", "general"),
    ("tech", "tech"),
    ("#Random", "random"),
    ("lab", "lab"),
    ("#LAB", "lab"),
    ("den-2", "den-2"),
    ("", None),
    ("#", None),
    ("x" * 33, None),
    ("bad room", None),
    ("caf\u00e9", None),
    ("\x1b[2J", None),
]
MESSAGES = [
    ("hello", None),
    ("tab\there\nand a new line", None),
    ("\u202eevil\u2066 bidi \u200f", None),  # bidi controls are format characters: kept
    ("emoji \U0001f600 and \u0301", None),
    ("", "empty"),
    (" \u3000\u2028\t\n", "empty"),
    ("\x1b[31mred", "bad_args"),
    ("\x1b]0;title\x07", "bad_args"),
    ("csi \x9b31m", "bad_args"),
    ("cr\r", "bad_args"),
    ("a" * 4001, "too_long"),
]
SHORT_TEXTS = [
    ("", None),
    ("a topic", None),
    ("\u202ertl\u202c", None),
    ("x" * 201, "too_long"),
    ("two\nlines", "bad_args"),
    ("\x1b]8;;http://evil\x1b\\link", "bad_args"),
    ("nel\x85", "bad_args"),
]
LIMITS = [(None, None), (1, None), (2, None), (500, None), (0, "bad_args"), (501, "bad_args")]
BEFORES = [None, 0, 1, 2, 3, 5, 10**6]

clients = st.integers(0, CLIENTS - 1)


def user_key(name: str) -> str | None:
    """The model's key for a name, or None when no account could have it."""
    return name.lower() if name.isascii() else None


class ChatMachine(RuleBasedStateMachine):
    """A real server against a model of users, rooms, memberships and messages."""

    def __init__(self) -> None:
        super().__init__()
        self.live = LoopServer()
        self.users: dict[str, dict[str, Any]] = {}  # key -> name, password, bio, rooms
        self.admins: set[str] = set()  # the first account registered is an admin
        self.rooms: dict[str, dict[str, Any]] = {
            name: {"owner": None, "topic": "", "members": set(), "messages": [], "seq": 0}
            for name in ("general", "random", "tech")
        }
        self.dm_pairs: dict[tuple[str, ...], list[tuple[int, str, str, str]]] = {}
        self.who: list[str | None] = [None] * CLIENTS  # each client's user key
        self.peers: list[Peer] = [self.live.run(self.live.peer()) for _ in range(CLIENTS)]
        self._ids = itertools.count(1)

    def teardown(self) -> None:
        try:
            self.live.catcher.assert_clean()
        finally:
            self.live.close()

    # -- helpers ---------------------------------------------------------

    def call(self, client: int, cmd: str, **args: Any) -> dict[str, Any]:
        peer = self.peers[client]
        reply = self.live.run(peer.request(cmd, **args))
        peer.events.clear()  # events are checked elsewhere; keep memory flat
        return reply

    def expect(self, client: int, code: str | None, cmd: str, **args: Any) -> dict[str, Any]:
        """Sends a request and checks its outcome against the model's prediction."""
        reply = self.call(client, cmd, **args)
        event(f"{cmd}: {code or 'ok'}")
        if code is None:
            assert reply["ok"] is True, (cmd, args, reply)
        else:
            assert reply["ok"] is False, (cmd, args, reply)
            assert reply["error"]["code"] == code, (cmd, args, code, reply)
            assert_clean_error(reply)
        return reply

    def me(self, client: int) -> str | None:
        return self.who[client]

    def display(self, key: str) -> str:
        return self.users[key]["name"]

    def online(self, key: str) -> bool:
        return key in self.who

    def wire_messages(self, seq_list: list[tuple[int, str, str]], room: str) -> list[tuple]:
        return [(room, seq, sender, text) for seq, sender, text in seq_list]

    @staticmethod
    def page(messages: list, limit: int, before: int | None) -> tuple[list, bool]:
        """The model's history page: `limit` newest below `before`, oldest first."""
        older = [m for m in messages if before is None or m[0] < before]
        start = max(0, len(older) - limit)
        return older[start:], start > 0

    # -- accounts --------------------------------------------------------

    @initialize()
    def two_members(self) -> None:
        """Clients 0 and 1 start logged in as alice and bob_2; client 2 stays anonymous."""
        for client, name in ((0, USERNAMES[0]), (1, USERNAMES[2])):
            self.register(client, name, PASSWORDS[0])

    @rule(client=clients, name=st.sampled_from(USERNAMES), password=st.sampled_from(PASSWORDS))
    def register(self, client: int, name: tuple, password: tuple) -> None:
        """register: already_authenticated, then name, password, taken; ok joins general."""
        (username, name_code), (pw, pw_code) = name, password
        key = user_key(username)
        if self.me(client) is not None:
            code = "already_authenticated"
        else:
            code = name_code or pw_code or ("username_taken" if key in self.users else None)
        reply = self.expect(client, code, "register", username=username, password=pw)
        if code is None:
            assert reply["user"]["username"] == username
            assert reply["rooms"] == ["general"]
            if not self.users:
                self.admins.add(key)
            assert reply["user"]["admin"] is (key in self.admins)
            self.users[key] = {"name": username, "password": pw, "bio": "", "rooms": {"general"}}
            self.rooms["general"]["members"].add(key)
            self.who[client] = key

    @rule(client=clients, name=st.sampled_from(USERNAMES), password=st.sampled_from(PASSWORDS))
    def login(self, client: int, name: tuple, password: tuple) -> None:
        """login: already_authenticated if logged in; auth_failed unless name and password match."""
        username, pw = name[0], password[0]
        key = user_key(username)
        if self.me(client) is not None:
            code = "already_authenticated"
        elif key in self.users and self.users[key]["password"] == pw:
            code = None
        else:
            code = "auth_failed"
        reply = self.expect(client, code, "login", username=username, password=pw)
        if code is None:
            assert reply["user"]["username"] == self.display(key)
            assert reply["rooms"] == sorted(self.users[key]["rooms"])
            self.who[client] = key

    @precondition(lambda self: self.users)
    @rule(client=clients, pick=st.integers(0, 3))
    def relogin(self, client: int, pick: int) -> None:
        """login with a known account's name, in another case, and its password."""
        key = sorted(self.users)[pick % len(self.users)]
        name = self.users[key]["name"].upper()
        code = "already_authenticated" if self.me(client) is not None else None
        self.expect(client, code, "login", username=name, password=self.users[key]["password"])
        if code is None:
            self.who[client] = key

    @rule(client=clients)
    def quit(self, client: int) -> None:
        """quit: answered ok, then the server closes; the client reconnects anonymous."""
        self.expect(client, None, "quit")
        peer = self.peers[client]
        assert self.live.run(peer.closed())
        self.live.run(peer.close())
        self.peers[client] = self.live.run(self.live.peer())
        self.who[client] = None

    # -- rooms -----------------------------------------------------------

    def room_code(self, client: int, raw: tuple, *, exists: bool = True) -> str | None:
        """auth_required, invalid_room, then no_such_room (when `exists` is asked)."""
        if self.me(client) is None:
            return "auth_required"
        if raw[1] is None:
            return "invalid_room"
        if exists and raw[1] not in self.rooms:
            return "no_such_room"
        return None

    def check_room_info(self, info: dict[str, Any], name: str) -> None:
        room = self.rooms[name]
        assert info["name"] == name
        assert info["topic"] == room["topic"]
        assert info["owner"] == (room["owner"] and self.display(room["owner"]))
        assert info["default"] is (name in ("general", "random", "tech"))
        assert info["members"] == len(room["members"])
        assert info["online"] == sum(1 for key in room["members"] if self.online(key))

    @rule(client=clients, room=st.sampled_from(ROOMS))
    def join(self, client: int, room: tuple) -> None:
        """join: ok for any existing room, with its last 50 messages in order."""
        code = self.room_code(client, room)
        reply = self.expect(client, code, "join", room=room[0])
        if code is None:
            name, key = room[1], self.me(client)
            self.rooms[name]["members"].add(key)
            self.users[key]["rooms"].add(name)
            self.check_room_info(reply["room"], name)
            got = [(m["room"], m["seq"], m["from"], m["text"]) for m in reply["history"]]
            assert got == self.wire_messages(self.rooms[name]["messages"][-50:], name)

    @rule(client=clients, room=st.sampled_from(ROOMS))
    def leave(self, client: int, room: tuple) -> None:
        """leave: not_member unless a member; any room may be left, general included."""
        code = self.room_code(client, room)
        key = self.me(client)
        if code is None and key not in self.rooms[room[1]]["members"]:
            code = "not_member"
        self.expect(client, code, "leave", room=room[0])
        if code is None:
            self.rooms[room[1]]["members"].discard(key)
            self.users[key]["rooms"].discard(room[1])

    @rule(client=clients, room=st.sampled_from(ROOMS), topic=st.sampled_from(SHORT_TEXTS))
    def create(self, client: int, room: tuple, topic: tuple) -> None:
        """create: invalid_room, topic checks, room_exists; ok makes the creator owner, member."""
        code = self.room_code(client, room, exists=False) or topic[1]
        if code is None and room[1] in self.rooms:
            code = "room_exists"
        reply = self.expect(client, code, "create", room=room[0], topic=topic[0])
        if code is None:
            key = self.me(client)
            self.rooms[room[1]] = {
                "owner": key,
                "topic": topic[0],
                "members": {key},
                "messages": [],
                "seq": 0,
            }
            self.users[key]["rooms"].add(room[1])
            self.check_room_info(reply["room"], room[1])

    @rule(client=clients, room=st.sampled_from(ROOMS))
    def delete(self, client: int, room: tuple) -> None:
        """delete: protected_room for defaults, not_owner for others; ok drops room and history."""
        code = self.room_code(client, room)
        if code is None:
            state = self.rooms[room[1]]
            if state["owner"] is None:
                code = "protected_room"
            elif not self.has_rights(client, state):
                code = "not_owner"
        self.expect(client, code, "delete", room=room[0])
        if code is None:
            state = self.rooms.pop(room[1])
            for key in state["members"]:
                self.users[key]["rooms"].discard(room[1])

    @rule(client=clients, room=st.sampled_from(ROOMS), topic=st.sampled_from(SHORT_TEXTS))
    def topic(self, client: int, room: tuple, topic: tuple) -> None:
        """topic: argument checks, no_such_room, then owner only; ok changes RoomInfo.topic."""
        code = self.room_code(client, room, exists=False) or topic[1]
        if code is None:
            if room[1] not in self.rooms:
                code = "no_such_room"
            elif not self.has_rights(client, self.rooms[room[1]]):
                code = "not_owner"
        reply = self.expect(client, code, "topic", room=room[0], topic=topic[0])
        if code is None:
            self.rooms[room[1]]["topic"] = topic[0]
            self.check_room_info(reply["room"], room[1])

    def has_rights(self, client: int, state: dict[str, Any]) -> bool:
        """Whether the client has the owner's rights in a room: its owner, or an admin."""
        key = self.me(client)
        return key is not None and (state["owner"] == key or key in self.admins)

    def owned_room(self, client: int, pick: int) -> tuple[str, str]:
        """A room the client owns if any, else `lab` (raw and normalised)."""
        key = self.me(client)
        owned = sorted(n for n, r in self.rooms.items() if key and r["owner"] == key)
        name = owned[pick % len(owned)] if owned else "lab"
        return (name, name)

    @rule(
        client=clients,
        room=st.sampled_from([("lab", "lab"), ("#Den-2", "den-2")]),
        topic=st.sampled_from([t for t in SHORT_TEXTS if t[1] is None]),
    )
    def found(self, client: int, room: tuple, topic: tuple) -> None:
        """create with a valid name and topic: ok unless it exists."""
        self.create(client, room, topic)

    @rule(
        client=clients,
        pick=st.integers(0, 3),
        topic=st.sampled_from([t for t in SHORT_TEXTS if t[1] is None]),
    )
    def retitle(self, client: int, pick: int, topic: tuple) -> None:
        """topic on a room the client owns: ok, and RoomInfo shows it."""
        self.topic(client, self.owned_room(client, pick), topic)

    @rule(client=clients, pick=st.integers(0, 3))
    def demolish(self, client: int, pick: int) -> None:
        """delete a room the client owns: ok; its history is gone if it is created again."""
        self.delete(client, self.owned_room(client, pick))

    @rule(client=clients)
    def rooms_list(self, client: int) -> None:
        """rooms: every room the model has, by name, with owners, topics and counts."""
        code = "auth_required" if self.me(client) is None else None
        reply = self.expect(client, code, "rooms")
        if code is None:
            assert [r["name"] for r in reply["rooms"]] == sorted(self.rooms)
            for info in reply["rooms"]:
                self.check_room_info(info, info["name"])

    # -- messages --------------------------------------------------------

    @rule(client=clients, room=st.sampled_from(ROOMS), text=st.sampled_from(MESSAGES))
    def say(self, client: int, room: tuple, text: tuple) -> None:
        """say: text checks, no_such_room, not_member; ok gets the room's next seq."""
        code = self.room_code(client, room, exists=False) or text[1]
        if code is None:
            if room[1] not in self.rooms:
                code = "no_such_room"
            elif self.me(client) not in self.rooms[room[1]]["members"]:
                code = "not_member"
        reply = self.expect(client, code, "say", room=room[0], text=text[0])
        if code is None:
            state = self.rooms[room[1]]
            state["seq"] += 1
            assert reply["seq"] == state["seq"], (reply, state["seq"])
            state["messages"].append((state["seq"], self.display(self.me(client)), text[0]))

    def known_room(self, client: int, pick: int) -> tuple[str, str]:
        """One of the client's rooms if it has any, else general (raw and normalised)."""
        key = self.me(client)
        mine = sorted(self.users[key]["rooms"]) if key is not None else []
        name = mine[pick % len(mine)] if mine else "general"
        return (name, name)

    @rule(
        client=clients,
        pick=st.integers(0, 5),
        text=st.sampled_from([m for m in MESSAGES if m[1] is None]),
    )
    def speak(self, client: int, pick: int, text: tuple) -> None:
        """say with valid text in one of the client's own rooms: ok with the next seq."""
        self.say(client, self.known_room(client, pick), text)

    @rule(
        client=clients,
        pick=st.integers(0, 5),
        limit=st.sampled_from(LIMITS[:4]),
        before=st.sampled_from(BEFORES),
    )
    def read_back(self, client: int, pick: int, limit: tuple, before: int | None) -> None:
        """history of one of the client's own rooms matches what was said, seq for seq."""
        self.history(client, self.known_room(client, pick), limit, before)

    @rule(
        client=clients,
        room=st.sampled_from(ROOMS),
        limit=st.sampled_from(LIMITS),
        before=st.sampled_from(BEFORES),
    )
    def history(self, client: int, room: tuple, limit: tuple, before: int | None) -> None:
        """history: any existing room, member or not; messages oldest first with their seq."""
        code = self.room_code(client, room, exists=False) or limit[1]
        if code is None and room[1] not in self.rooms:
            code = "no_such_room"
        args: dict[str, Any] = {"room": room[0]}
        if limit[0] is not None:
            args["limit"] = limit[0]
        if before is not None:
            args["before"] = before
        reply = self.expect(client, code, "history", **args)
        if code is None:
            stored = self.rooms[room[1]]["messages"]
            want, more = self.page(stored, limit[0] or 50, before)
            got = [(m["room"], m["seq"], m["from"], m["text"]) for m in reply["messages"]]
            assert got == self.wire_messages(want, room[1])
            assert reply["more"] is more

    @rule(client=clients, to=st.sampled_from(USERNAMES), text=st.sampled_from(MESSAGES))
    def dm(self, client: int, to: tuple, text: tuple) -> None:
        """dm: text checks, then no_such_user; ok gets the pair's next seq."""
        me = self.me(client)
        other = user_key(to[0])
        if me is None:
            code = "auth_required"
        else:
            code = text[1] or (None if other in self.users else "no_such_user")
        reply = self.expect(client, code, "dm", to=to[0], text=text[0])
        if code is None:
            pair = tuple(sorted((me, other)))
            stored = self.dm_pairs.setdefault(pair, [])
            seq = len(stored) + 1
            assert reply["seq"] == seq, (reply, seq)
            stored.append((seq, self.display(me), self.display(other), text[0]))

    @rule(client=clients, other=st.sampled_from(USERNAMES), limit=st.sampled_from(LIMITS))
    def dms(self, client: int, other: tuple, limit: tuple) -> None:
        """dms: limit checks, no_such_user; ok returns the pair's messages oldest first."""
        me = self.me(client)
        key = user_key(other[0])
        if me is None:
            code = "auth_required"
        else:
            code = limit[1] or (None if key in self.users else "no_such_user")
        args: dict[str, Any] = {"with": other[0]}
        if limit[0] is not None:
            args["limit"] = limit[0]
        reply = self.expect(client, code, "dms", **args)
        if code is None:
            stored = self.dm_pairs.get(tuple(sorted((me, key))), [])
            want, more = self.page(stored, limit[0] or 50, None)
            got = [(m["seq"], m["from"], m["to"], m["text"]) for m in reply["messages"]]
            assert got == want
            assert reply["more"] is more

    # -- profiles --------------------------------------------------------

    @rule(client=clients, name=st.sampled_from(USERNAMES))
    def whois(self, client: int, name: tuple) -> None:
        """whois: no_such_user, or the Profile as the model has it."""
        key = user_key(name[0])
        if self.me(client) is None:
            code = "auth_required"
        else:
            code = None if key in self.users else "no_such_user"
        reply = self.expect(client, code, "whois", username=name[0])
        if code is None:
            user = self.users[key]
            profile = reply["user"]
            assert profile["username"] == user["name"]
            assert profile["bio"] == user["bio"]
            assert profile["rooms"] == sorted(user["rooms"])
            assert profile["online"] is self.online(key)
            assert (profile["last_seen"] is None) is self.online(key)

    @rule(client=clients, text=st.sampled_from(SHORT_TEXTS))
    def bio(self, client: int, text: tuple) -> None:
        """bio: too_long or bad_args for control characters; ok is stored verbatim."""
        me = self.me(client)
        code = "auth_required" if me is None else text[1]
        reply = self.expect(client, code, "bio", text=text[0])
        if code is None:
            self.users[me]["bio"] = text[0]
            assert reply["user"]["bio"] == text[0]

    @rule(client=clients, cmd=st.sampled_from(["nope", "", "SAY", "__init__", "_op_delete"]))
    def unknown(self, client: int, cmd: str) -> None:
        """An unknown cmd is unknown_command in every state, before auth_required."""
        self.expect(client, "unknown_command", cmd)


@pytest.mark.long
class TestChatModel(ChatMachine.TestCase):
    """Random runs of valid and invalid commands: every reply matches the model."""

    settings = settings(
        max_examples=200,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ---------------------------------------------------------------------------
# (b) Arbitrary input at the framing and dispatch

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
ARG_NAMES = sorted({key for _, rules in REQUESTS.values() for key, *_ in rules} | {"id"})
requests = st.fixed_dictionaries(
    {"cmd": st.sampled_from(sorted(set(REQUESTS) - {"quit"}))},
    optional={name: json_values | st.sampled_from([s for s, _ in ROOMS]) for name in ARG_NAMES},
)


@pytest.fixture(scope="module")
def live():
    """One server for the property tests, with an anonymous and a logged-in peer."""
    server = LoopServer()
    anonymous = server.run(server.peer())
    member = server.run(server.peer())
    server.run(member.ok("register", username="fuzzer", password=conftest.PASSWORD))
    server.clients = {"anonymous": anonymous, "member": member}
    yield server
    try:
        server.catcher.assert_clean()
    finally:
        server.close()


async def answer_then_ping(peer: Peer, data: bytes, expected: int) -> list[dict[str, Any]]:
    """Sends `data` and a ping; returns the replies before the ping's, checking their count."""
    marker = "ping-after-fuzz"
    await peer.send_raw(data + orjson.dumps({"id": marker, "cmd": "ping"}) + b"\n")
    replies = []
    while True:
        reply = await peer.reply()
        if reply.get("id") == marker and reply["ok"] and "ts" in reply:
            break
        replies.append(reply)
    peer.events.clear()
    assert len(replies) == expected, (data[:200], replies)
    return replies


def check_replies(replies: list[dict[str, Any]]) -> None:
    for reply in replies:
        if reply["ok"] is not True:
            assert_clean_error(reply)


fuzz_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@fuzz_settings
@given(value=json_values, who=st.sampled_from(["anonymous", "member"]))
def test_any_json_value_gets_one_known_reply_and_the_connection_lives(live, value, who):
    """Any JSON value as a frame: one reply, ok or a known code, never internal; ping works."""
    peer = live.clients[who]
    replies = live.run(answer_then_ping(peer, orjson.dumps(value) + b"\n", 1))
    check_replies(replies)
    if not isinstance(value, dict) or not isinstance(value.get("cmd"), str):
        assert replies[0]["error"]["code"] == "bad_frame", (value, replies)


@fuzz_settings
@given(frame=requests, who=st.sampled_from(["anonymous", "member"]))
def test_any_arguments_to_any_command_get_a_known_reply(live, frame, who):
    """Every command with arbitrary JSON arguments: ok or a known error code, never internal."""
    peer = live.clients[who]
    replies = live.run(answer_then_ping(peer, orjson.dumps(frame) + b"\n", 1))
    check_replies(replies)
    if who == "anonymous" and frame["cmd"] not in BEFORE_LOGIN:
        want = "auth_required" if valid_id(frame.get("id")) else "bad_args"
        assert replies[0]["error"]["code"] == want, (frame, replies)
    if who == "anonymous" and replies[0]["ok"] and frame["cmd"] in ("register", "login"):
        live.clients["anonymous"] = live.run(live.peer())  # it logged in: start over


def valid_id(rid: Any) -> bool:
    """An id the protocol accepts: null, an integer, or a string of at most 64 characters."""
    if isinstance(rid, str):
        return len(rid) <= 64
    return rid is None or (isinstance(rid, int) and not isinstance(rid, bool))


def expected_replies(data: bytes) -> int:
    """How many replies the server owes for `data` followed by a newline."""
    count = 0
    for line in (data + b"\n").split(b"\n")[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            count += 1
    return count


@fuzz_settings
@given(data=st.binary(max_size=300), who=st.sampled_from(["anonymous", "member"]))
def test_arbitrary_bytes_get_one_reply_a_line_and_the_connection_lives(live, data, who):
    """Arbitrary bytes: one reply a non-blank line, each ok or a known code; ping still works."""
    peer = live.clients[who]
    replies = live.run(answer_then_ping(peer, data + b"\n", expected_replies(data)))
    check_replies(replies)
