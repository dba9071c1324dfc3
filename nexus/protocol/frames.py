"""Typed replies and events: what the server sends, typed once for both sides.

Each object, event and reply is a TypedDict: the server builds plain dicts
(no conversion on the hot path, and mypy checks every key it writes); a
client passes each frame it receives through `parse_event()` or
`parse_reply()`, which check every field against the same declarations, so
code past that point reads `event["room"]` with no defensive `.get()`. Keys
not declared here are kept and ignored, so a newer server's additions do
not break an older client.

(No `from __future__ import annotations` here: TypedDict must see
`NotRequired` itself to know which keys may be absent.)
"""

import types
from collections.abc import Callable
from typing import (
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from nexus.errors import ERROR_CODES, NexusError

__all__ = [
    "EVENTS",
    "PROTOCOL_VERSION",
    "REPLIES",
    "AnyMessage",
    "Attachment",
    "AvailableReply",
    "BanEntry",
    "Banned",
    "BansReply",
    "ConversationInfo",
    "ConversationsReply",
    "DirectMessage",
    "DmEvent",
    "DmsReply",
    "EditReply",
    "Edited",
    "Empty",
    "Erased",
    "ErrorBody",
    "Event",
    "FilesOffer",
    "FollowReply",
    "Hello",
    "HistoryReply",
    "Invited",
    "JoinReply",
    "Joined",
    "Kicked",
    "Left",
    "LoginReply",
    "MalformedFrame",
    "Member",
    "MemberRole",
    "MembersReply",
    "MentionsReply",
    "MessageEvent",
    "Muted",
    "PingReply",
    "PinnedEvent",
    "PinnedMessage",
    "PinsReply",
    "Presence",
    "Profile",
    "ProfileReply",
    "Reaction",
    "ReadMoved",
    "ReadReply",
    "RoomCreated",
    "RoomDeleted",
    "RoomInfo",
    "RoomMessage",
    "RoomReply",
    "RoomUpdated",
    "RoomsReply",
    "SearchReply",
    "SentReply",
    "ThreadEntry",
    "ThreadReply",
    "ThreadSummary",
    "ThreadsReply",
    "TokenReply",
    "TopicChanged",
    "TypingEvent",
    "Unread",
    "UsersReply",
    "error",
    "error_of",
    "ok",
    "parse_event",
    "parse_reply",
]

PROTOCOL_VERSION = 3

# --------------------------------------------------------------------------
# Objects (docs/protocol.md, "Objects")


# A message's protocol 2 fields are present only when they apply: `action`
# ("* ana waves"), `reply_to` (the seq it answers), `mentions` (usernames
# named with @, in order of first mention), `edited` (time of the latest
# edit), `reactions` (emoji -> users, in order of reacting), `erased` (the
# text is "" and the other fields are gone), `guest` (said by a guest: a
# name that is no account, and may be another guest's later), `files`
# (uploads it carries; docs/protocol.md, "Files"), `plain` (its text is
# shown as typed, never formatted).
class ThreadSummary(TypedDict):
    """On a root with replies: those not erased, the last one's time, and up
    to 5 of the users who wrote them, most recent first."""

    replies: int
    last: float
    participants: list[str]


class Attachment(TypedDict):
    id: str
    name: str
    size: int
    type: str  # MIME type, sniffed from the bytes
    width: NotRequired[int]  # an image's, when it has a thumbnail
    height: NotRequired[int]


_Message = TypedDict(
    "_Message",
    {
        "seq": int,
        "from": str,
        "text": str,
        "ts": float,
        "action": NotRequired[bool],
        "reply_to": NotRequired[int],
        "mentions": NotRequired[list[str]],
        "edited": NotRequired[float],
        "reactions": NotRequired[dict[str, list[str]]],
        "erased": NotRequired[bool],
        "guest": NotRequired[bool],
        "files": NotRequired[list[Attachment]],
        "plain": NotRequired[bool],
        "thread": NotRequired[int],  # a reply in the thread of this root seq
        "broadcast": NotRequired[bool],  # a reply also sent to the timeline
        "thread_summary": NotRequired[ThreadSummary],  # a root with replies
    },
)


class RoomMessage(_Message):
    room: str


class DirectMessage(_Message):
    to: str


AnyMessage = RoomMessage | DirectMessage  # told apart by the `room` key


class RoomInfo(TypedDict):
    name: str
    topic: str
    owner: str | None  # None for default rooms
    default: bool
    members: int
    online: int
    unread: NotRequired[int]  # to a member (`rooms`, `join`): messages after their marker
    private: NotRequired[bool]  # listed, readable, joinable by members, invitees, admins only
    moderators: NotRequired[list[str]]  # usernames, sorted
    muted: NotRequired[list[str]]  # usernames, sorted
    ephemeral: NotRequired[bool]  # made by a guest: goes when its last member leaves
    pins: NotRequired[int]  # messages pinned there


class Profile(TypedDict):
    username: str
    bio: str
    online: bool
    rooms: list[str]
    created: float
    last_seen: float | None  # None while online
    away: NotRequired[str | None]  # the away text, None when back
    admin: NotRequired[bool]  # a server admin
    guest: NotRequired[bool]  # a guest: no account, gone when it disconnects


MemberRole = Literal["owner", "moderator", "member"]


class Member(TypedDict):
    """One member of a room, as `members` lists them."""

    username: str
    online: bool
    away: str | None  # the away text, None when back
    role: MemberRole  # in this room
    admin: bool  # a server admin: every owner's right in every room
    muted: bool  # in this room
    bio: str
    guest: bool  # a guest (--irc-guests): no account


class Unread(TypedDict):
    dms: dict[str, int]  # the other user's display name -> unread DMs from them
    rooms: NotRequired[dict[str, int]]  # member rooms with unread messages -> how many
    mentions: NotRequired[int]  # unread room messages that mention the user
    threads: NotRequired[int]  # followed threads with unread replies


class ErrorBody(TypedDict):
    code: str
    message: str
    retry_after: NotRequired[float]  # with rate_limited


# --------------------------------------------------------------------------
# Events (docs/protocol.md, "Events")


class FilesOffer(TypedDict):
    url: str  # POST files here; GET url/<id>/<name>
    max_upload: int  # bytes


class Hello(TypedDict):
    event: Literal["hello"]
    server: str
    version: str
    protocol: int
    motd: str
    files: NotRequired[FilesOffer]  # with a web port


class MessageEvent(RoomMessage):
    event: Literal["message"]


class DmEvent(DirectMessage):
    event: Literal["dm"]


class Joined(TypedDict):
    event: Literal["joined"]
    room: str
    user: str
    guest: NotRequired[bool]  # true for a guest (--irc-guests), absent for an account


class Left(TypedDict):
    event: Literal["left"]
    room: str
    user: str


class RoomCreated(TypedDict):
    event: Literal["room_created"]
    room: RoomInfo


class RoomDeleted(TypedDict):
    event: Literal["room_deleted"]
    room: str
    by: str


class TopicChanged(TypedDict):
    event: Literal["topic"]
    room: str
    topic: str
    by: str


class Presence(TypedDict):
    event: Literal["presence"]
    user: str
    online: bool
    away: NotRequired[str | None]
    guest: NotRequired[bool]  # a guest: offline, it is gone for good


class Edited(TypedDict):
    event: Literal["edited"]
    message: AnyMessage


class Erased(TypedDict):
    event: Literal["erased"]
    message: AnyMessage


class Reaction(TypedDict):
    event: Literal["reaction"]
    message: AnyMessage
    user: str
    emoji: str
    on: bool


# `read` names a room or (`with`) a DM partner: the caller's marker there moved.
ReadMoved = TypedDict(
    "ReadMoved",
    {
        "event": Literal["read"],
        "room": NotRequired[str],
        "with": NotRequired[str],
        "seq": int,
        "thread": NotRequired[int],  # the marker of the thread of this root moved
    },
)


class PinnedEvent(TypedDict):
    """To a room's members: message `seq` was pinned (`on`) or unpinned."""

    event: Literal["pinned"]
    room: str
    seq: int
    by: str
    on: bool


# `typing` names a room or (`with`) the DM partner who types; never stored.
TypingEvent = TypedDict(
    "TypingEvent",
    {
        "event": Literal["typing"],
        "room": NotRequired[str],
        "with": NotRequired[str],
        "user": str,
        "on": bool,
    },
)


class RoomUpdated(TypedDict):
    """A room's roles changed (`op`, `deop`): the room as it is now."""

    event: Literal["room_updated"]
    room: RoomInfo
    by: str


class Kicked(TypedDict):
    """A member was removed from a room, by `kick` or (`banned`) by `ban`."""

    event: Literal["kicked"]
    room: str
    user: str
    by: str
    reason: str  # "" when none was given
    banned: bool


class Banned(TypedDict):
    """To a room's staff: `user`, not in the room, was banned (`on`) or unbanned."""

    event: Literal["banned"]
    room: str
    user: str
    by: str
    reason: str  # "" when none was given
    on: bool


class Muted(TypedDict):
    event: Literal["muted"]
    room: str
    user: str
    by: str
    on: bool


class Invited(TypedDict):
    """To the invitee: `room` may be joined (a private one, now without asking)."""

    event: Literal["invited"]
    room: RoomInfo
    by: str


Event = (
    Hello
    | MessageEvent
    | DmEvent
    | Joined
    | Left
    | RoomCreated
    | RoomDeleted
    | TopicChanged
    | Presence
    | Edited
    | Erased
    | Reaction
    | ReadMoved
    | RoomUpdated
    | Kicked
    | Banned
    | Muted
    | Invited
    | TypingEvent
    | PinnedEvent
)
EVENTS: dict[str, type] = {
    get_args(get_type_hints(kind)["event"])[0]: kind for kind in get_args(Event)
}

# --------------------------------------------------------------------------
# Replies: the fields of an `ok` reply, by command (docs/protocol.md, "Commands")


class Empty(TypedDict):
    pass


class LoginReply(TypedDict):
    user: Profile
    rooms: list[str]
    unread: Unread
    token: NotRequired[str]  # after register and a password login
    invited: NotRequired[list[RoomInfo]]  # private rooms the user is invited to, if any


class JoinReply(TypedDict):
    room: RoomInfo
    history: list[RoomMessage]


class RoomReply(TypedDict):
    room: RoomInfo


class RoomsReply(TypedDict):
    rooms: list[RoomInfo]


class UsersReply(TypedDict):
    users: list[Profile]


class MembersReply(TypedDict):
    members: list[Member]  # sorted by name, ignoring case


class SentReply(TypedDict):
    seq: int
    ts: float


class PinnedMessage(RoomMessage):
    """A message of `pins`: as history shows it, with who pinned it and when."""

    pinned_by: str
    pinned_at: float


class PinsReply(TypedDict):
    messages: list[PinnedMessage]  # the latest pin first


class HistoryReply(TypedDict):
    messages: list[RoomMessage]
    more: bool  # older messages are still stored
    more_after: NotRequired[bool]  # newer ones are (servers before paging around omit it)


class DmsReply(TypedDict):
    messages: list[DirectMessage]
    more: bool
    more_after: NotRequired[bool]


# One of a user's DM conversations, as `conversations` lists it: `with` the
# other user's name (one's own, for notes to self), the `seq` and `ts` of its
# newest message, how many of the other's messages are `unread`, and `guest`
# when the other user is one.
ConversationInfo = TypedDict(
    "ConversationInfo",
    {"with": str, "seq": int, "ts": float, "unread": int, "guest": NotRequired[bool]},
)


class ConversationsReply(TypedDict):
    conversations: list[ConversationInfo]  # the most recently active first


class ProfileReply(TypedDict):
    user: Profile


class PingReply(TypedDict):
    ts: float


class EditReply(TypedDict):
    edited: float


class ReadReply(TypedDict):
    seq: int  # the marker now


class ThreadReply(TypedDict):
    root: AnyMessage
    messages: list[AnyMessage]  # replies, oldest first
    more: bool  # older replies are still stored


class FollowReply(TypedDict):
    following: bool


class ThreadEntry(TypedDict):
    """A followed thread: its root, the replies unread, the last reply's time."""

    root: AnyMessage
    unread: int
    last: float


class ThreadsReply(TypedDict):
    threads: list[ThreadEntry]  # the latest reply first


class SearchReply(TypedDict):
    results: list[AnyMessage]  # newest first
    more: bool


class MentionsReply(TypedDict):
    messages: list[RoomMessage]  # newest first


class AvailableReply(TypedDict):
    available: bool  # no account or guest has the name now


class TokenReply(TypedDict):
    token: str


class BanEntry(TypedDict):
    user: str
    by: str
    reason: str
    ts: float


class BansReply(TypedDict):
    bans: list[BanEntry]  # oldest first


REPLIES: dict[str, type] = {
    "register": LoginReply,
    "available": AvailableReply,
    "login": LoginReply,
    "join": JoinReply,
    "leave": Empty,
    "create": RoomReply,
    "delete": Empty,
    "topic": RoomReply,
    "rooms": RoomsReply,
    "online": UsersReply,
    "say": SentReply,
    "dm": SentReply,
    "dms": DmsReply,
    "conversations": ConversationsReply,
    "history": HistoryReply,
    "members": MembersReply,
    "whois": ProfileReply,
    "bio": ProfileReply,
    "ping": PingReply,
    "quit": Empty,
    "edit": EditReply,
    "erase": Empty,
    "react": Empty,
    "typing": Empty,
    "pin": Empty,
    "pins": PinsReply,
    "read": ReadReply,
    "thread": ThreadReply,
    "follow": FollowReply,
    "threads": ThreadsReply,
    "search": SearchReply,
    "mentions": MentionsReply,
    "away": ProfileReply,
    "password": TokenReply,
    "op": RoomReply,
    "deop": RoomReply,
    "kick": Empty,
    "ban": Empty,
    "unban": Empty,
    "bans": BansReply,
    "mute": Empty,
    "unmute": Empty,
    "invite": Empty,
    "admin": ProfileReply,
    "suspend": Empty,
    "unsuspend": Empty,
}


# --------------------------------------------------------------------------
# Building frames (the server's side)


def ok(rid: int | str | None, fields: dict[str, Any] | Any) -> dict[str, Any]:
    """An `ok` reply carrying a reply's fields and the request's id, if any."""
    reply: dict[str, Any] = {} if rid is None else {"id": rid}
    reply["ok"] = True
    reply.update(fields)
    return reply


def error(rid: int | str | None, err: NexusError) -> dict[str, Any]:
    reply: dict[str, Any] = {} if rid is None else {"id": rid}
    reply["ok"] = False
    reply["error"] = err.to_wire()
    return reply


# --------------------------------------------------------------------------
# Checking frames (a client's side)


class MalformedFrame(ValueError):
    """A frame from the server that does not have the declared shape."""


Check = Callable[[Any], bool]
_CHECKS: dict[Any, Check] = {}


def _check_for(kind: Any) -> Check:
    """A function telling whether a JSON value has the declared type `kind`."""
    known = _CHECKS.get(kind)
    if known is not None:
        return known
    check: Check
    origin = get_origin(kind)
    if kind is Any:
        check = _anything
    elif kind is str:
        check = _is_str
    elif kind is bool:
        check = _is_bool
    elif kind is int:
        check = _is_int
    elif kind is float:
        check = _is_number
    elif kind is type(None):
        check = _is_none
    elif origin is Literal:
        allowed = get_args(kind)
        check = allowed.__contains__
    elif origin in (Union, types.UnionType):
        options = [_check_for(option) for option in get_args(kind)]
        check = lambda value: any(option(value) for option in options)  # noqa: E731
    elif origin is list:
        item = _check_for(get_args(kind)[0])
        check = lambda value: type(value) is list and all(map(item, value))  # noqa: E731
    elif origin is dict:
        check = _dict_check(_check_for(get_args(kind)[1]))
    elif is_typeddict(kind):
        check = _typed_dict_check(kind)
    else:
        raise TypeError(f"no check for {kind!r}")
    _CHECKS[kind] = check
    return check


def _dict_check(entry: Check) -> Check:
    def check(value: Any) -> bool:
        return type(value) is dict and all(
            type(key) is str and entry(item) for key, item in value.items()
        )

    return check


def _typed_dict_check(kind: Any) -> Check:
    hints = get_type_hints(kind)
    fields = [(key, key in kind.__required_keys__, _check_for(hint)) for key, hint in hints.items()]

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for key, required, field_check in fields:
            if key in value:
                if not field_check(value[key]):
                    return False
            elif required:
                return False
        return True

    return check


def _anything(value: Any) -> bool:
    return True


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_bool(value: Any) -> bool:
    return value is True or value is False


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int  # JSON may write 2.0 as 2


def _is_none(value: Any) -> bool:
    return value is None


def parse_event(frame: dict[str, Any]) -> Event | None:
    """An event frame, checked against its declaration; None for an event this
    side does not know (a newer server's). Raises MalformedFrame."""
    name = frame.get("event")
    if type(name) is not str:
        raise MalformedFrame("malformed event (its kind is not a string)")
    kind = EVENTS.get(name)
    if kind is None:
        return None
    if not _check_for(kind)(frame):
        raise MalformedFrame(f"malformed {frame['event']!r} event")
    return cast(Event, frame)


def parse_reply(cmd: str, frame: dict[str, Any]) -> Any:
    """The fields of an `ok` reply to `cmd`, checked; raises MalformedFrame."""
    kind = REPLIES.get(cmd)
    if kind is not None and not _check_for(kind)(frame):
        raise MalformedFrame(f"malformed reply to {cmd!r}")
    return frame


def error_of(frame: dict[str, Any]) -> NexusError:
    """An `ok: false` reply -> NexusError; a code this side does not know is `internal`."""
    body = frame.get("error")
    if body is None or not _check_for(ErrorBody)(body):
        return NexusError("internal", "the server refused without saying why")
    extra = {key: value for key, value in body.items() if key not in ("code", "message")}
    if body["code"] not in ERROR_CODES:
        return NexusError("internal", f"{body['code']}: {body['message']}", **extra)
    return NexusError(body["code"], body["message"], **extra)
