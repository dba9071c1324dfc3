"""Typed requests: one dataclass a command, built only by `parse()`.

Each argument has a validator that turns the raw JSON value into a clean one
or raises the protocol's error for it, so a handler never sees a malformed
argument. The rules follow docs/protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from nexus.errors import NexusError

__all__ = [
    "DEFAULT_ROOMS",
    "DM_HISTORY_CAP",
    "EMOJI_MAX",
    "FILES_MAX",
    "FILE_ID_RE",
    "FRONT_END_REQUESTS",
    "MAX_ID_LENGTH",
    "MENTION_RE",
    "MESSAGE_MAX",
    "PAGE_DEFAULT",
    "PAGE_MAX",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "PINS_MAX",
    "QUERY_MAX",
    "REACTIONS_MAX",
    "REQUESTS",
    "RESERVED_NAMES",
    "ROOM_HISTORY_CAP",
    "ROOM_RE",
    "SEARCH_DEFAULT",
    "SEARCH_MAX",
    "SECRETS",
    "SHORT_TEXT_MAX",
    "THREADS_DEFAULT",
    "THREADS_MAX",
    "USERNAME_RE",
    "Admin",
    "Available",
    "Away",
    "Ban",
    "Bans",
    "Bio",
    "Conversations",
    "Create",
    "Delete",
    "Deop",
    "Dm",
    "Dms",
    "Edit",
    "Erase",
    "Follow",
    "Guest",
    "History",
    "Invite",
    "Join",
    "Kick",
    "Leave",
    "Login",
    "Members",
    "Mentions",
    "Mute",
    "Online",
    "Op",
    "Optional",
    "Password",
    "Pin",
    "Ping",
    "Pins",
    "Quit",
    "React",
    "Read",
    "Register",
    "Request",
    "RequestTable",
    "Rooms",
    "Say",
    "Search",
    "Suspend",
    "Thread",
    "Threads",
    "Topic",
    "Typing",
    "Unban",
    "Unmute",
    "Unsuspend",
    "Validator",
    "Whois",
    "any_username",
    "boolean",
    "command_name",
    "emoji",
    "file_ids",
    "message_text",
    "new_password",
    "new_username",
    "page_limit",
    "parse",
    "request",
    "request_id",
    "room_name",
    "search_limit",
    "search_query",
    "search_terms",
    "sequence",
    "short_text",
    "timestamp",
]

MAX_ID_LENGTH = 64  # a string request id, echoed back in every reply

# Limits on names and text (docs/protocol.md, "Names and limits").
USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{3,24}")
# Names no account or guest may take, in any case: the server's own (the IRC
# front end's lines come from `nexus`) and IRC's service nicks, which clients
# set to identify send passwords to.
RESERVED_NAMES = frozenset(
    {
        "nexus",
        "nickserv",
        "chanserv",
        "memoserv",
        "operserv",
        "hostserv",
        "botserv",
        "histserv",
        "saslserv",
        "global",
    }
)
ROOM_RE = re.compile(r"[a-z0-9_-]{1,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
MESSAGE_MAX = 4_000
FILE_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")  # an upload's id (secrets.token_urlsafe)
FILES_MAX = 10  # files one message carries
SHORT_TEXT_MAX = 200  # bio and topic
ROOM_HISTORY_CAP = 500
DM_HISTORY_CAP = 200
PAGE_DEFAULT, PAGE_MAX = 50, 500
DEFAULT_ROOMS = ("general", "random", "tech")
EMOJI_MAX = 16  # code points of one reaction's emoji
REACTIONS_MAX = 20  # different emoji on one message: keeps a message's size bounded
PINS_MAX = 50  # pinned messages a room: a short list of what matters, not a second history
SEARCH_DEFAULT, SEARCH_MAX = 20, 100  # results of one search or mentions page
THREADS_DEFAULT, THREADS_MAX = 20, 100  # followed threads one `threads` lists
QUERY_MAX = 200  # characters of a search query

# `@name`: an `@` at the start or after a character that is not a name
# character, then a run of name characters (the whole run is the name). The
# look-behind comes after the `@` so the engine jumps from `@` to `@` instead
# of testing it at every position: a fifth of the cost on a `say`.
MENTION_RE = re.compile(r"@(?<![A-Za-z0-9_-]@)([A-Za-z0-9_-]+)")

# C0 controls but tab and newline, DEL and C1: refused in messages.
_MESSAGE_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bio and topic are one line: every control character is refused.
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Unicode's White_Space property. str.isspace() and str.strip() also count
# U+001C-U+001F, which are controls, so they cannot be used here.
_WHITE_SPACE = re.compile(r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*")
_WHITE_SPACE_RUN = re.compile(r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def search_terms(text: str) -> list[str]:
    """The case-folded, white-space separated terms of `text`, each once, in order.

    The search index splits message text with the same function, so a term
    (which holds no white space) occurs in a text exactly when it occurs in
    one of the text's terms. `str.split` counts U+001C-U+001F as white space
    too, unlike Unicode; neither a message nor a query may hold them."""
    return list(dict.fromkeys(text.casefold().split()))


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
    if name.lower() in RESERVED_NAMES:
        raise NexusError("invalid_username", f"{name} is reserved for the server")
    return name


def any_username(value: Any) -> str:
    """A name that refers to a user; whether it exists is for the handler."""
    return _string(value)


def new_password(value: Any) -> str:
    """A password to set; the server checks the shortest it takes
    (--password-min-length, PASSWORD_MIN unless set)."""
    password = _string(value)
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
    # isprintable() (in C, no regex) is true of most messages and of none with a control
    if not text.isprintable() and _MESSAGE_CONTROL.search(text):
        raise NexusError("bad_args", "control characters are not allowed in a message")
    return text


def _text_or_nothing(value: Any) -> str:
    """A message's text, or "" when it is blank (a message of files alone)."""
    text = _string(value)
    return "" if _WHITE_SPACE.fullmatch(text) else message_text(text)


def file_ids(value: Any) -> tuple[str, ...]:
    """Up to FILES_MAX upload ids, each once, in the order given."""
    if not isinstance(value, list) or not value:
        raise NexusError("bad_args", "expected a list of file ids")
    if len(value) > FILES_MAX:
        raise NexusError("bad_args", f"a message carries at most {FILES_MAX} files")
    for item in value:
        if not isinstance(item, str) or not FILE_ID_RE.fullmatch(item):
            raise NexusError("bad_args", "a file id is what an upload answered")
    return tuple(dict.fromkeys(value))


class _Sent:
    """`say` and `dm`: text, files, or both."""

    __slots__ = ()
    text: str
    files: tuple[str, ...]
    thread: int | None
    broadcast: bool

    def __post_init__(self) -> None:
        if self.broadcast and self.thread is None:
            raise NexusError("bad_args", "'broadcast' is for a reply in a thread: give 'thread'")
        if self.text is None:
            if not self.files:
                raise NexusError("bad_args", f"'{self.cmd}' needs 'text'")
            self.text = ""
        elif not self.text and not self.files:
            raise NexusError("empty", "text: a message needs some text")


def short_text(value: Any) -> str:
    """A bio or topic: one line of at most SHORT_TEXT_MAX characters, may be empty."""
    text = _string(value)
    if len(text) > SHORT_TEXT_MAX:
        raise NexusError("too_long", f"at most {SHORT_TEXT_MAX} characters")
    if _LINE_CONTROL.search(text):
        raise NexusError("bad_args", "control characters are not allowed here")
    return text


def _limit(high: int) -> Callable[[Any], int]:
    """The rule for a `limit` argument: a whole number from 1 to `high`."""

    def limit(value: Any) -> int:
        number = _integer(value)
        if not 1 <= number <= high:
            raise NexusError("bad_args", f"limit must be 1-{high}")
        return number

    return limit


page_limit = _limit(PAGE_MAX)


def sequence(value: Any) -> int:
    return _integer(value)


def boolean(value: Any) -> bool:
    if value is not True and value is not False:
        raise NexusError("bad_args", "expected true or false")
    return value


def timestamp(value: Any) -> float:
    """Seconds since the epoch (JSON numbers are finite: the decoder refuses the rest)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NexusError("bad_args", "expected a number")
    return float(value)


def emoji(value: Any) -> str:
    """A reaction: 1-16 code points, no white space, no control characters."""
    text = _string(value)
    if len(text) > EMOJI_MAX:
        raise NexusError("too_long", f"an emoji has at most {EMOJI_MAX} code points")
    if not text or _WHITE_SPACE_RUN.search(text) or _LINE_CONTROL.search(text):
        raise NexusError(
            "bad_args", "an emoji is 1-16 code points, with no white space or control characters"
        )
    return text


def search_query(value: Any) -> str:
    text = _string(value)
    if len(text) > QUERY_MAX:
        raise NexusError("too_long", f"a query has at most {QUERY_MAX} characters")
    if _MESSAGE_CONTROL.search(text):
        raise NexusError("bad_args", "control characters are not allowed in a query")
    if _WHITE_SPACE.fullmatch(text):
        raise NexusError("empty", "a query needs some words")
    return text


search_limit = _limit(SEARCH_MAX)


class Optional:
    """Marks an argument that may be absent (or null): then `default` is used."""

    __slots__ = ("default", "validate")

    def __init__(self, validate: Validator, default: Any = None) -> None:
        self.validate = validate
        self.default = default


# --------------------------------------------------------------------------
# Typed requests: one dataclass a command, built only by parse(), and read
# only. Not frozen: a frozen dataclass sets each field through
# object.__setattr__, ~0.4 us more for a four-field `say`, on every request.


class Request:
    """A typed request; `cmd` is the command's name on the wire."""

    __slots__ = ()
    cmd: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every subclass is a dataclass


RequestT = TypeVar("RequestT", bound=Request)

# Per argument, in field order: its key on the wire, its validator, whether
# it is required, and its default (worked out once, not per request).
Rule = tuple[str, Validator, bool, Any]
RequestTable = dict[str, tuple[type[Request], tuple[Rule, ...]]]
REQUESTS: RequestTable = {}  # the wire protocol's commands
# Requests that only a front end makes, for its peers: not part of the wire
# protocol, so not in REQUESTS. The server answers them only on sessions the
# front end allows them, `unknown_command` everywhere else (docs/protocol.md).
FRONT_END_REQUESTS: RequestTable = {}


def request(
    cmd: str, into: RequestTable | None = None, /, **args: Validator | Optional
) -> Callable[[type[RequestT]], type[RequestT]]:
    """Registers a request type for `cmd` with a validator per argument, in
    REQUESTS unless `into` names another table."""

    def register(cls: type[RequestT]) -> type[RequestT]:
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
        (REQUESTS if into is None else into)[cmd] = (cls, tuple(rules))
        return cls

    return register


SECRETS = frozenset({"password", "token", "old", "new"})


def _masked_repr(self: Any) -> str:
    """Keeps passwords out of reprs, and so out of logs."""
    shown = ", ".join(
        f"{f.name}={'***' if f.name in SECRETS else repr(getattr(self, f.name))}"
        for f in fields(self)
    )
    return f"{type(self).__name__}({shown})"


@request("available", username=new_username)
@dataclass(slots=True)
class Available(Request):
    """Whether a name may be registered, asked before the password is typed."""

    username: str


@request("register", username=new_username, password=new_password)
@dataclass(slots=True, repr=False)
class Register(Request):
    username: str
    password: str
    __repr__ = _masked_repr


@request("login", username=any_username, password=Optional(_string), token=Optional(_string))
@dataclass(slots=True, repr=False)
class Login(Request):
    """Logs in with a password, or with a token from an earlier login's reply."""

    username: str
    password: str | None
    token: str | None
    __repr__ = _masked_repr

    def __post_init__(self) -> None:
        if (self.password is None) == (self.token is None):
            raise NexusError("bad_args", "'login' needs 'password' or 'token'")


@request("join", room=room_name)
@dataclass(slots=True)
class Join(Request):
    room: str


@request("leave", room=room_name)
@dataclass(slots=True)
class Leave(Request):
    room: str


@request("create", room=room_name, topic=Optional(short_text, ""), private=Optional(boolean, False))
@dataclass(slots=True)
class Create(Request):
    room: str
    topic: str
    private: bool  # listed, readable and joinable by members, invitees and admins only


@request("delete", room=room_name)
@dataclass(slots=True)
class Delete(Request):
    room: str


@request("topic", room=room_name, topic=short_text)
@dataclass(slots=True)
class Topic(Request):
    room: str
    topic: str


@request("rooms")
@dataclass(slots=True)
class Rooms(Request):
    pass


@request("online")
@dataclass(slots=True)
class Online(Request):
    pass


@request(
    "say",
    room=room_name,
    text=Optional(_text_or_nothing),
    action=Optional(boolean, False),
    reply_to=Optional(sequence),
    files=Optional(file_ids, ()),
    plain=Optional(boolean, False),
    thread=Optional(sequence),
    broadcast=Optional(boolean, False),
)
@dataclass(slots=True)
class Say(_Sent, Request):
    room: str
    text: str  # "" when the message is its files alone
    action: bool  # "* ana waves"
    reply_to: int | None  # the seq of the room's message this one answers
    files: tuple[str, ...]  # ids of the sender's uploads
    plain: bool = False  # shown as typed, never formatted
    thread: int | None = None  # a reply in the thread of this root seq
    broadcast: bool = False  # a reply also sent to the room's timeline


@request(
    "dm",
    to=any_username,
    text=Optional(_text_or_nothing),
    action=Optional(boolean, False),
    reply_to=Optional(sequence),
    files=Optional(file_ids, ()),
    plain=Optional(boolean, False),
    thread=Optional(sequence),
    broadcast=Optional(boolean, False),
)
@dataclass(slots=True)
class Dm(_Sent, Request):
    to: str
    text: str  # "" when the message is its files alone
    action: bool
    reply_to: int | None  # the seq of the pair's message this one answers
    files: tuple[str, ...]  # ids of the sender's uploads
    plain: bool = False
    thread: int | None = None  # a reply in the thread of this root seq
    broadcast: bool = False  # a reply also sent to the conversation


class _Addressed:
    """A request naming one conversation: `room`, or `with` (a DM partner), never both."""

    __slots__ = ()
    room: str | None
    with_: str | None

    def __post_init__(self) -> None:
        if (self.room is None) == (self.with_ is None):
            raise NexusError("bad_args", f"'{self.cmd}' needs 'room' or 'with'")  # type: ignore[attr-defined]


# A message address: `room` + `seq`, or `with` + `seq` (docs/protocol.md).
_ADDRESS: dict[str, Validator | Optional] = {
    "room": Optional(room_name),
    "with_": Optional(any_username),
    "seq": sequence,
}


@request("edit", **_ADDRESS, text=message_text)
@dataclass(slots=True)
class Edit(_Addressed, Request):
    room: str | None
    with_: str | None
    seq: int
    text: str


@request("erase", **_ADDRESS)
@dataclass(slots=True)
class Erase(_Addressed, Request):
    room: str | None
    with_: str | None
    seq: int


@request("pin", room=room_name, seq=sequence, on=Optional(boolean, True))
@dataclass(slots=True)
class Pin(Request):
    room: str
    seq: int
    on: bool


@request("pins", room=room_name)
@dataclass(slots=True)
class Pins(Request):
    room: str


@request(
    "typing", room=Optional(room_name), with_=Optional(any_username), on=Optional(boolean, True)
)
@dataclass(slots=True)
class Typing(_Addressed, Request):
    """The caller is typing in a room or to a DM partner (`on`), or stopped."""

    room: str | None
    with_: str | None
    on: bool


@request("react", **_ADDRESS, emoji=emoji, on=Optional(boolean, True))
@dataclass(slots=True)
class React(_Addressed, Request):
    room: str | None
    with_: str | None
    seq: int
    emoji: str
    on: bool


@request("read", **_ADDRESS, thread=Optional(sequence))
@dataclass(slots=True)
class Read(_Addressed, Request):
    """Moves the caller's read marker in a room or DM conversation, or in
    the thread of root `thread` there."""

    room: str | None
    with_: str | None
    seq: int
    thread: int | None = None


@request("thread", **_ADDRESS, limit=Optional(page_limit, PAGE_DEFAULT), before=Optional(sequence))
@dataclass(slots=True)
class Thread(_Addressed, Request):
    """A root and a page of its replies: the newest, or those before `before`."""

    room: str | None
    with_: str | None
    seq: int
    limit: int
    before: int | None


@request("follow", **_ADDRESS, on=Optional(boolean, True))
@dataclass(slots=True)
class Follow(_Addressed, Request):
    """Follows (`on`) the thread of a root, or stops following it."""

    room: str | None
    with_: str | None
    seq: int
    on: bool


@request("threads", limit=Optional(_limit(THREADS_MAX), THREADS_DEFAULT))
@dataclass(slots=True)
class Threads(Request):
    """The caller's followed threads, latest reply first."""

    limit: int


@request(
    "search",
    query=search_query,
    room=Optional(room_name),
    with_=Optional(any_username),
    from_=Optional(any_username),
    limit=Optional(search_limit, SEARCH_DEFAULT),
    before=Optional(timestamp),
)
@dataclass(slots=True)
class Search(Request):
    query: str
    room: str | None
    with_: str | None
    from_: str | None  # `from` on the wire
    limit: int
    before: float | None  # a ts: only older messages

    def __post_init__(self) -> None:
        if self.room is not None and self.with_ is not None:
            raise NexusError("bad_args", "'search' takes 'room' or 'with', not both")


@request("mentions", limit=Optional(search_limit, SEARCH_DEFAULT))
@dataclass(slots=True)
class Mentions(Request):
    limit: int


@request("away", text=Optional(short_text, ""))
@dataclass(slots=True)
class Away(Request):
    text: str  # empty: back


@request("password", old=_string, new=new_password)
@dataclass(slots=True, repr=False)
class Password(Request):
    old: str
    new: str
    __repr__ = _masked_repr


# A page of history: how many messages, and at most one anchor (docs/protocol.md).
_PAGE: dict[str, Validator | Optional] = {
    "limit": Optional(page_limit, PAGE_DEFAULT),
    "before": Optional(sequence),
    "after": Optional(sequence),
    "around": Optional(sequence),
    "replies": Optional(boolean, False),
}


class _Paged:
    """A request for a page: the newest, or the one before, just after or
    around a seq (one of them at most)."""

    __slots__ = ()
    before: int | None
    after: int | None
    around: int | None

    def __post_init__(self) -> None:
        if sum(anchor is not None for anchor in (self.before, self.after, self.around)) > 1:
            cmd = self.cmd  # type: ignore[attr-defined]
            raise NexusError(
                "bad_args", f"'{cmd}' takes at most one of 'before', 'after', 'around'"
            )


@request("dms", with_=any_username, **_PAGE)
@dataclass(slots=True)
class Dms(_Paged, Request):
    with_: str  # `with` on the wire; a keyword in Python
    limit: int
    before: int | None
    after: int | None = None  # the `limit` messages just after this seq
    around: int | None = None  # a page centred on this seq
    replies: bool = False  # thread replies too: every message, not the timeline


@request("conversations", limit=Optional(page_limit, PAGE_DEFAULT))
@dataclass(slots=True)
class Conversations(Request):
    """The caller's DM conversations, the most recently active first."""

    limit: int


@request("history", room=room_name, **_PAGE)
@dataclass(slots=True)
class History(_Paged, Request):
    room: str
    limit: int
    before: int | None
    after: int | None = None  # the `limit` messages just after this seq
    around: int | None = None  # a page centred on this seq
    replies: bool = False  # thread replies too: every message, not the timeline


@request("members", room=room_name)
@dataclass(slots=True)
class Members(Request):
    room: str


@request("whois", username=any_username)
@dataclass(slots=True)
class Whois(Request):
    username: str


@request("bio", text=short_text)
@dataclass(slots=True)
class Bio(Request):
    text: str


@request("ping")
@dataclass(slots=True)
class Ping(Request):
    pass


@request("quit")
@dataclass(slots=True)
class Quit(Request):
    pass


@request("guest", FRONT_END_REQUESTS, username=new_username)
@dataclass(frozen=True, slots=True)
class Guest(Request):
    """Logs in as a guest: a user by this name for as long as the connection
    lasts, never stored. Only the IRC front end asks it (`--irc-guests`)."""

    username: str


# -- moderation ---------------------------------------------------------------


@request("op", room=room_name, username=any_username)
@dataclass(slots=True)
class Op(Request):
    """Makes a member a moderator of the room."""

    room: str
    username: str


@request("deop", room=room_name, username=any_username)
@dataclass(slots=True)
class Deop(Request):
    room: str
    username: str


@request("kick", room=room_name, username=any_username, reason=Optional(short_text, ""))
@dataclass(slots=True)
class Kick(Request):
    room: str
    username: str
    reason: str  # may be empty


@request("ban", room=room_name, username=any_username, reason=Optional(short_text, ""))
@dataclass(slots=True)
class Ban(Request):
    room: str
    username: str
    reason: str


@request("unban", room=room_name, username=any_username, reason=Optional(short_text, ""))
@dataclass(slots=True)
class Unban(Request):
    room: str
    username: str
    reason: str  # for the server's log only


@request("bans", room=room_name)
@dataclass(slots=True)
class Bans(Request):
    room: str


@request("mute", room=room_name, username=any_username)
@dataclass(slots=True)
class Mute(Request):
    room: str
    username: str


@request("unmute", room=room_name, username=any_username)
@dataclass(slots=True)
class Unmute(Request):
    room: str
    username: str


@request("invite", room=room_name, username=any_username)
@dataclass(slots=True)
class Invite(Request):
    room: str
    username: str


@request("admin", username=any_username, on=boolean)
@dataclass(slots=True)
class Admin(Request):
    """Gives (`on`) or takes away a user's server admin role."""

    username: str
    on: bool


@request("suspend", username=any_username, reason=Optional(short_text, ""))
@dataclass(slots=True)
class Suspend(Request):
    username: str
    reason: str


@request("unsuspend", username=any_username, reason=Optional(short_text, ""))
@dataclass(slots=True)
class Unsuspend(Request):
    username: str
    reason: str


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


def parse(cmd: str, frame: dict[str, Any], table: RequestTable = REQUESTS) -> Request:
    """A known command's frame -> its typed request; unknown keys are ignored."""
    cls, rules = table[cmd]
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
