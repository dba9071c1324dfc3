"""The wire protocol, sans I/O: framing, frame decoding, typed requests, events.

Everything here is plain synchronous code: bytes in, frames or typed requests
out. The server and the client both build on it; neither touches a socket
from here. The rules follow docs/protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import orjson

from nexus.errors import NexusError

PROTOCOL_VERSION = 1

# Security limits: each bounds what one peer can make the other hold or do.
MAX_FRAME = 65_536  # bytes a frame, newline included: bounds a peer's buffer
MAX_DEPTH = 32  # JSON nesting: bounds work on pathological documents
MAX_ID_LENGTH = 64  # a string request id, echoed back in every reply

# Limits on names and text (docs/protocol.md, "Names and limits").
USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{3,24}")
ROOM_RE = re.compile(r"[a-z0-9_-]{1,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
MESSAGE_MAX = 4_000
SHORT_TEXT_MAX = 200  # bio and topic
ROOM_HISTORY_CAP = 500
DM_HISTORY_CAP = 200
PAGE_DEFAULT, PAGE_MAX = 50, 500
DEFAULT_ROOMS = ("general", "random", "tech")

# C0 controls but tab and newline, DEL and C1: refused in messages.
_MESSAGE_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bio and topic are one line: every control character is refused.
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Unicode's White_Space property. str.isspace() and str.strip() also count
# U+001C-U+001F, which are controls, so they cannot be used here.
_WHITE_SPACE = re.compile(r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*")


# --------------------------------------------------------------------------
# Framing


class LineFramer:
    """Splits a byte stream into newline-ended frames of at most `max_frame` bytes.

    `feed()` returns the complete lines seen so far (without `\\n`). Once a
    line grows past the limit, `too_large` is set and nothing more is ever
    returned: the caller answers `frame_too_large` and closes, so no command
    hidden in the tail of an over-long line can run.
    """

    __slots__ = ("_buffer", "max_frame", "too_large")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self.too_large = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.too_large:
            return []
        buffer = self._buffer
        start = len(buffer)
        buffer += data
        lines: list[bytes] = []
        begin = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end + 1 - begin > self.max_frame:
                self.too_large = True
                break
            lines.append(bytes(buffer[begin:end]))
            begin = start = end + 1
        if not self.too_large and len(buffer) - begin + 1 > self.max_frame:
            # Even the newline that would end it would not fit.
            self.too_large = True
        if self.too_large:
            self._buffer = bytearray()
        else:
            del buffer[:begin]
        return lines

    @property
    def pending(self) -> int:
        """Bytes of an unterminated line held back (dropped at end of stream)."""
        return len(self._buffer)


def encode(frame: dict[str, Any]) -> bytes:
    """One frame on the wire: compact UTF-8 JSON and a newline."""
    return orjson.dumps(frame) + b"\n"


def _depth_ok(value: Any, limit: int) -> bool:
    """True when `value` nests at most `limit` containers deep (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def decode(line: bytes) -> dict[str, Any] | None:
    """One frame's bytes -> a JSON object; None for a blank line.

    Refuses (`bad_frame`) invalid UTF-8, lone surrogates, NaN and infinities,
    nesting deeper than MAX_DEPTH and anything that is not an object.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip():
        return None
    try:
        value = orjson.loads(line)
    except (orjson.JSONDecodeError, RecursionError):
        raise NexusError("bad_frame", "not a JSON object: could not parse the line") from None
    if not isinstance(value, dict):
        raise NexusError("bad_frame", "a frame must be a JSON object")
    # Fewer brackets than the limit cannot nest past it: skip the walk.
    if line.count(b"{") + line.count(b"[") > MAX_DEPTH and not _depth_ok(value, MAX_DEPTH):
        raise NexusError("bad_frame", f"a frame may nest at most {MAX_DEPTH} levels deep")
    return value


# --------------------------------------------------------------------------
# Argument validators: each takes the raw JSON value, returns the clean one
# or raises the protocol's error for it.

Validator = Callable[[Any], Any]


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise NexusError("bad_args", "expected a string")
    return value


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise NexusError("bad_args", "expected an integer")
    return value


def new_username(value: Any) -> str:
    name = _string(value)
    if not USERNAME_RE.fullmatch(name):
        raise NexusError("invalid_username", "a username is 3-24 letters, digits, '_' or '-'")
    return name


def any_username(value: Any) -> str:
    """A name that refers to a user; whether it exists is for the handler."""
    return _string(value)


def new_password(value: Any) -> str:
    password = _string(value)
    if len(password) < PASSWORD_MIN:
        raise NexusError("weak_password", f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise NexusError("too_long", f"a password has at most {PASSWORD_MAX} characters")
    return password


def room_name(value: Any) -> str:
    """Normalises `#Tech` to `tech`; anything else malformed is `invalid_room`."""
    name = _string(value)
    if name.startswith("#"):
        name = name[1:]
    # Lower-case ASCII only: "\u212a".lower() is "k", and names are ASCII.
    name = name.lower() if name.isascii() else name
    if not ROOM_RE.fullmatch(name):
        raise NexusError("invalid_room", "a room name is 1-32 of a-z, 0-9, '_' or '-'")
    return name


def message_text(value: Any) -> str:
    text = _string(value)
    if len(text) > MESSAGE_MAX:
        raise NexusError("too_long", f"a message has at most {MESSAGE_MAX} characters")
    if _WHITE_SPACE.fullmatch(text):
        raise NexusError("empty", "a message needs some text")
    if _MESSAGE_CONTROL.search(text):
        raise NexusError("bad_args", "control characters are not allowed in a message")
    return text


def short_text(value: Any) -> str:
    """A bio or topic: one line of at most SHORT_TEXT_MAX characters, may be empty."""
    text = _string(value)
    if len(text) > SHORT_TEXT_MAX:
        raise NexusError("too_long", f"at most {SHORT_TEXT_MAX} characters")
    if _LINE_CONTROL.search(text):
        raise NexusError("bad_args", "control characters are not allowed here")
    return text


def page_limit(value: Any) -> int:
    limit = _integer(value)
    if not 1 <= limit <= PAGE_MAX:
        raise NexusError("bad_args", f"limit must be 1-{PAGE_MAX}")
    return limit


def sequence(value: Any) -> int:
    return _integer(value)


class Optional:
    """Marks an argument that may be absent (or null): then `default` is used."""

    __slots__ = ("default", "validate")

    def __init__(self, validate: Validator, default: Any = None) -> None:
        self.validate = validate
        self.default = default


# --------------------------------------------------------------------------
# Typed requests: one frozen dataclass a command, built only by parse().

# Per argument, in field order: its key on the wire, its validator, whether
# it is required, and its default (worked out once, not per request).
Rule = tuple[str, Validator, bool, Any]
REQUESTS: dict[str, tuple[type, tuple[Rule, ...]]] = {}


def request(cmd: str, **args: Validator | Optional):
    """Registers a request type for `cmd` with a validator per argument."""

    def register(cls: type) -> type:
        names = [f.name for f in fields(cls)]
        assert set(names) == set(args), (cmd, names, set(args))
        rules = []
        for name in names:
            rule = args[name]
            key = name.rstrip("_")  # `with_` is `with` on the wire
            if isinstance(rule, Optional):
                rules.append((key, rule.validate, False, rule.default))
            else:
                rules.append((key, rule, True, None))
        cls.cmd = cmd
        REQUESTS[cmd] = (cls, tuple(rules))
        return cls

    return register


SECRETS = frozenset({"password", "token"})


def _masked_repr(self: Any) -> str:
    """Keeps passwords out of reprs, and so out of logs."""
    shown = ", ".join(
        f"{f.name}={'***' if f.name in SECRETS else repr(getattr(self, f.name))}"
        for f in fields(self)
    )
    return f"{type(self).__name__}({shown})"


@request("register", username=new_username, password=new_password)
@dataclass(frozen=True, slots=True, repr=False)
class Register:
    username: str
    password: str
    __repr__ = _masked_repr


@request("login", username=any_username, password=Optional(_string), token=Optional(_string))
@dataclass(frozen=True, slots=True, repr=False)
class Login:
    """Logs in with a password, or with a token from an earlier login's reply."""

    username: str
    password: str | None
    token: str | None
    __repr__ = _masked_repr

    def __post_init__(self) -> None:
        if (self.password is None) == (self.token is None):
            raise NexusError("bad_args", "'login' needs 'password' or 'token'")


@request("join", room=room_name)
@dataclass(frozen=True, slots=True)
class Join:
    room: str


@request("leave", room=room_name)
@dataclass(frozen=True, slots=True)
class Leave:
    room: str


@request("create", room=room_name, topic=Optional(short_text, ""))
@dataclass(frozen=True, slots=True)
class Create:
    room: str
    topic: str


@request("delete", room=room_name)
@dataclass(frozen=True, slots=True)
class Delete:
    room: str


@request("topic", room=room_name, topic=short_text)
@dataclass(frozen=True, slots=True)
class Topic:
    room: str
    topic: str


@request("rooms")
@dataclass(frozen=True, slots=True)
class Rooms:
    pass


@request("online")
@dataclass(frozen=True, slots=True)
class Online:
    pass


@request("say", room=room_name, text=message_text)
@dataclass(frozen=True, slots=True)
class Say:
    room: str
    text: str


@request("dm", to=any_username, text=message_text)
@dataclass(frozen=True, slots=True)
class Dm:
    to: str
    text: str


@request(
    "dms",
    with_=any_username,
    limit=Optional(page_limit, PAGE_DEFAULT),
    before=Optional(sequence),
)
@dataclass(frozen=True, slots=True)
class Dms:
    with_: str  # `with` on the wire; a keyword in Python
    limit: int
    before: int | None


@request(
    "history", room=room_name, limit=Optional(page_limit, PAGE_DEFAULT), before=Optional(sequence)
)
@dataclass(frozen=True, slots=True)
class History:
    room: str
    limit: int
    before: int | None


@request("whois", username=any_username)
@dataclass(frozen=True, slots=True)
class Whois:
    username: str


@request("bio", text=short_text)
@dataclass(frozen=True, slots=True)
class Bio:
    text: str


@request("ping")
@dataclass(frozen=True, slots=True)
class Ping:
    pass


@request("quit")
@dataclass(frozen=True, slots=True)
class Quit:
    pass


def request_id(frame: dict[str, Any]) -> int | str | None:
    """The frame's `id`, checked: an integer or a string of at most 64 characters."""
    rid = frame.get("id")
    if rid is None:
        return None
    if isinstance(rid, bool) or not isinstance(rid, int | str):
        raise NexusError("bad_args", "id must be an integer or a string")
    if isinstance(rid, str) and len(rid) > MAX_ID_LENGTH:
        raise NexusError("bad_args", f"a string id has at most {MAX_ID_LENGTH} characters")
    return rid


def command_name(frame: dict[str, Any]) -> str:
    """The frame's `cmd`; a frame without a string `cmd` is not a request."""
    cmd = frame.get("cmd")
    if not isinstance(cmd, str):
        raise NexusError("bad_frame", "a request needs a string 'cmd'")
    return cmd


def parse(cmd: str, frame: dict[str, Any]) -> Any:
    """A known command's frame -> its typed request; unknown keys are ignored."""
    cls, rules = REQUESTS[cmd]
    values = []
    for key, validate, required, default in rules:
        raw = frame.get(key)
        if raw is None:
            if required:
                raise NexusError("bad_args", f"'{cmd}' needs '{key}'")
            values.append(default)
            continue
        try:
            values.append(validate(raw))
        except NexusError as err:
            raise NexusError(err.code, f"{key}: {err.message}") from None
    return cls(*values)


# --------------------------------------------------------------------------
# Replies and events


def ok(rid: int | str | None, **fields_: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {} if rid is None else {"id": rid}
    reply["ok"] = True
    reply.update(fields_)
    return reply


def error(rid: int | str | None, err: NexusError) -> dict[str, Any]:
    reply: dict[str, Any] = {} if rid is None else {"id": rid}
    reply["ok"] = False
    reply["error"] = err.to_wire()
    return reply


def event(name: str, **fields_: Any) -> dict[str, Any]:
    return {"event": name, **fields_}
