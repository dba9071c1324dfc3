"""Who is in a channel: every member of the room, online or not.

A Nexus member stays a member while offline (messages wait for them), as
Ergo's always-on clients do, so NAMES and WHO list every member and an
offline one is shown away (WHO `G`, WHOIS 301 "offline", an `away-notify`
AWAY when they go or come back) instead of leaving with QUIT and coming
back with JOIN: irssi and WeeChat drop a nick from the nick list on QUIT,
and a JOIN for every member who reconnects is noise in every shared
channel. JOIN and PART stay for joining and leaving the room itself.

The members come from the server's `members` request, asked afresh by each
JOIN, NAMES and WHO (a member who left while this connection was away drops
out), and are kept current between them by `joined`, `left`, `kicked` and
`presence` (a new account is made a member of the default rooms with no
`joined`: it shows when it first comes online).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from functools import partial

from nexus.protocol import USERNAME_RE
from nexus.server.irc.lines import build
from nexus.server.irc.numerics import HOST
from nexus.server.irc.state import IrcState, Reply, ignore, room_named

Rosters = dict[str, set[str]]  # room -> its members' names


OFFLINE = "offline"  # the away text of a member with no session (WHOIS 301, AWAY)


_PEOPLE_MIN = 64  # people kept before the first look for those no channel shows


# WHOX fields in the order a 354 reply gives them (https://modern.ircdocs.horse/#who-message).
_WHOX_ORDER = "tcuihsnfdlaor"


def members_of(c: IrcState, rooms: list[str], then: Callable[[Rosters], None]) -> None:
    """Asks the members of `rooms`, then calls `then` with each room's
    names (none for a room the account may not see)."""
    rosters: Rosters = {room: set() for room in rooms}

    def got(room: str, reply: Reply) -> None:
        for member in reply["members"]:
            rosters[room].add(member["username"])
            got_member(c, member)

    def finish() -> None:
        then(rosters)
        forget_people(c)

    for room in rooms:
        c.ask("members", partial(got, room), ignore, room=room)
    c.local(then=finish)


def got_member(c: IrcState, member: Reply) -> None:
    """Keeps what a `members` entry says of someone (a Profile's fields)."""
    key = member["username"].lower()
    profile = c.people.setdefault(key, {"rooms": []})
    for field in ("username", "online", "away", "bio", "admin", "guest"):
        profile[field] = member[field]
    got_admin(c, key, member["admin"])


def got_profile(c: IrcState, reply: Reply) -> None:
    forget_people(c)  # first: who is asked about stays
    profile = reply["user"]
    key = profile["username"].lower()
    c.people[key] = dict(profile)  # kept, and changed by presence events
    got_admin(c, key, profile.get("admin", False))


def forget_people(c: IrcState) -> None:
    """Keeps only the people the channels show (NAMES, WHO and WHOIS of
    others bring more), once there are twice as many as after the last
    time: going through every channel's members for each NAMES would cost
    what all of them do, whatever the room asked about."""
    if len(c.people) > c.people_kept:
        shown = {nick.lower() for nicks in c.channels.values() for nick in nicks}
        c.people = {key: p for key, p in c.people.items() if key in shown}
        c.people_kept = max(_PEOPLE_MIN, 2 * len(c.people))


def got_admin(c: IrcState, key: str, admin: bool) -> None:
    if admin:
        c.admins.add(key)  # an operator everywhere, online or not
    else:
        c.admins.discard(key)


def away_text(c: IrcState, nick: str) -> str | None:
    """What `nick` is away with: their away text, "offline" with no session."""
    profile = c.people.get(nick.lower())
    if profile is None:
        return None
    away = profile.get("away")
    if not profile["online"]:
        return f"{OFFLINE}: {away}" if away else OFFLINE
    return away or None


def away_line(c: IrcState, nick: str) -> str:
    """The `away-notify` line telling where `nick` is now."""
    text = away_text(c, nick)
    params = (text,) if text else ()
    return build(c.mask(nick), "AWAY", *params, tags=c.tags(account=c.account_of(nick)))


def who_flags(c: IrcState, nick: str, room: str | None) -> str:
    """WHO flags: H here or G gone (away or offline), * a server admin, @ an operator."""
    flags = "G" if away_text(c, nick) else "H"
    if nick.lower() in c.admins:
        flags += "*"
    if room is not None and c.is_op(room, nick):
        flags += "@"
    return flags


def who_reply(c: IrcState, line_params: list[str]) -> None:
    """WHO <#channel|nick|mask> [%fields[,token]]: 352 lines, or 354 with
    WHOX. A mask (`*`, `?`) matches the nicks of everyone online."""
    mask = line_params[0]
    whox = whox_spec(line_params[1]) if len(line_params) > 1 else None
    room = room_named(mask)

    def end() -> None:
        c.responses.emit(c.numeric("315", mask[:40], "End of /WHO list."))

    def by_room(rosters: Rosters) -> None:
        assert room is not None
        for nick in sorted(rosters[room], key=str.lower):
            c.responses.emit(who_row(c, nick, room, whox))
        end()

    def by_nick(reply: Reply) -> None:
        got_profile(c, reply)
        c.responses.emit(who_row(c, reply["user"]["username"], None, whox))
        end()

    def by_mask(reply: Reply) -> None:
        pattern = "*" if mask == "0" else mask.lower()
        shared = {n.lower() for nicks in c.channels.values() for n in nicks}
        for profile in reply["users"]:
            nick = profile["username"]
            entry = c.directory.registration(nick)
            if entry is not None and entry.invisible and nick.lower() not in shared:
                continue  # +i: not found by a mask
            if fnmatch.fnmatchcase(nick.lower(), pattern):
                c.people[nick.lower()] = dict(profile)  # kept, and changed
                got_admin(c, nick.lower(), profile.get("admin", False))
                c.responses.emit(who_row(c, nick, None, whox))
        end()
        forget_people(c)

    if room is not None:
        members_of(c, [room], by_room)
    elif USERNAME_RE.fullmatch(mask):
        c.ask("whois", by_nick, lambda _: end(), username=mask)
    elif mask == "0" or "*" in mask or "?" in mask:
        c.ask("online", by_mask, lambda _: end())
    else:
        c.local(then=end)


def who_row(c: IrcState, nick: str, room: str | None, whox: tuple[str, str] | None) -> str:
    realname = c.realname_of(nick)
    username = c.directory.username(nick)
    channel = "#" + room if room is not None else "*"
    flags = who_flags(c, nick, room)
    server = c.server
    if whox is None:
        row = (channel, username, HOST, server, nick, flags, f"0 {realname}")
        return c.numeric("352", *row)
    fields, token = whox
    values = {
        "t": token,
        "c": channel,
        "u": username,
        "i": "255.255.255.255",
        "h": HOST,
        "s": server,
        "n": nick,
        "f": flags,
        "d": "0",
        "l": "0",
        "a": c.account_of(nick) or "0",
        "o": "n/a",
        "r": realname,
    }
    return c.numeric("354", *(values[field] for field in _WHOX_ORDER if field in fields))


def came_online(c: IrcState, reply: Reply) -> None:
    """Someone this connection does not show came online: a new account,
    which registering makes a member of the default rooms without a
    `joined` event. They join the channels they are a member of."""
    got_profile(c, reply)
    profile = reply["user"]
    nick = profile["username"]
    joined = False
    for room in profile["rooms"]:
        if room in c.channels and nick not in c.channels[room]:
            c.channels[room].add(nick)
            c.responses.emit(c.join_line(nick, room))
            joined = True
    if joined and profile.get("away") and "away-notify" in c.caps:
        c.responses.emit(away_line(c, nick))


def member_presence(c: IrcState, event: Reply) -> None:
    """A member came, went or changed their away text: an AWAY line for
    `away-notify` clients where the nick is shown (they stay members)."""
    nick = event["user"]
    key = nick.lower()
    if key == c.nick.lower():
        return
    if not any(nick in nicks for nicks in c.channels.values()):
        if event["online"]:
            c.ask("whois", partial(came_online, c), ignore, username=nick)
        return
    before = away_text(c, nick)
    profile = c.people.get(key)
    if profile is None:
        profile = c.people[key] = {"username": nick, "rooms": [], "bio": ""}
    profile.update(online=event["online"], away=event.get("away"))
    if "away-notify" in c.caps and away_text(c, nick) != before:
        c.responses.lines.append(away_line(c, nick))


def whox_spec(spec: str) -> tuple[str, str] | None:
    """'%tcuhnfar,743' -> ('tcuhnfar', '743'); None for a WHO without WHOX."""
    if "%" not in spec:
        return None
    fields, _, token = spec.partition("%")[2].partition(",")
    if not (token.isdecimal() and len(token) <= 3):
        token = "0"
    return "".join(f for f in fields.lower() if f in _WHOX_ORDER), token
