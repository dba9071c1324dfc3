"""Registration: CAP negotiation, SASL PLAIN and PASS, and the welcome burst
(001-005, the MOTD, the account's rooms as joined channels, DMs that waited)."""

from __future__ import annotations

import base64
import binascii
import re
from functools import partial

from nexus.protocol import DM_HISTORY_CAP, PAGE_MAX, SHORT_TEXT_MAX, USERNAME_RE
from nexus.server.irc.directory import USERLEN, user_part
from nexus.server.irc.lines import Line, build, split_text
from nexus.server.irc.markers import Markers, ask_join_view, show_channel
from nexus.server.irc.numerics import (
    CAPS,
    ISUPPORT,
    isupport_value,
)
from nexus.server.irc.state import IrcState, Reply, ignore

# Any nick an IRC client may offer before registering; the account's name
# replaces it at the welcome.
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}")

# What a username (USER's first parameter) may keep: the characters a mask's
# user part may hold; anything else goes (non-ASCII, '@', '!').
_USERNAME_DROP_RE = re.compile(r"[^A-Za-z0-9_.\[\]\\`^{|}-]")

_SASL_CHUNK = 400  # bytes of an AUTHENTICATE parameter (IRCv3 SASL)


_LOGIN_HELP = (
    "this server needs a Nexus account: log in with SASL PLAIN, or PASS <account>:<password>"
)

# After a guest's welcome: what a guest is.
_GUEST_NOTE = (
    "You are a guest: {nick} is yours until you disconnect. Channels you create go when"
    " they empty and DMs with you go when you do; what you say in other channels stays."
    " Register a Nexus account to keep a name."
)


def handle_cap(c: IrcState, line: Line) -> None:
    sub = line.params[0].upper()
    if sub == "LS":
        if not c.registered:
            c.negotiating = True
        if len(line.params) > 1 and line.params[1].isdecimal():
            c.cap_version = max(c.cap_version, int(line.params[1]))
        if c.cap_version >= 302:
            c.caps.add("cap-notify")
            offered = [f"{k}={v}" if v else k for k, v in CAPS.items()]
        else:
            offered = list(CAPS)
        c.local(build(c.server, "CAP", c.nick, "LS", " ".join(offered)))
    elif sub == "LIST":
        c.local(build(c.server, "CAP", c.nick, "LIST", " ".join(sorted(c.caps))))
    elif sub == "REQ":
        if not c.registered:
            c.negotiating = True
        wanted = line.params[1].split() if len(line.params) > 1 else []
        if wanted and all(name.lstrip("-") in CAPS for name in wanted):
            for name in wanted:
                if name.startswith("-"):
                    c.caps.discard(name[1:])
                else:
                    c.caps.add(name)
            caps = c.caps
            c.profile = (
                "server-time" in caps,
                "message-tags" in caps,
                "account-tag" in caps,
            )
            reply = "ACK"
        else:
            reply = "NAK"
        c.local(build(c.server, "CAP", c.nick, reply, " ".join(wanted)))
    elif sub == "END":
        c.local(then=partial(cap_end, c))
    else:
        c.local(c.numeric("410", sub[:20], "Invalid CAP command"))


def cap_end(c: IrcState) -> None:
    # At reply time, not line time: NICK and USER sent before END must
    # not register the client while its SASL login is still on its way.
    c.negotiating = False
    maybe_register(c)


def handle_authenticate(c: IrcState, line: Line) -> None:
    arg = line.params[0]
    if c.registered:  # a session's account is chosen at login, for its whole life
        c.local(c.numeric("462", "You may not reregister: log in again as another"))
    elif c.account is not None:
        c.local(c.numeric("907", "You have already authenticated"))
    elif len(arg.encode()) > _SASL_CHUNK:
        c.sasl, c.sasl_data = None, ""
        c.local(c.numeric("905", "SASL message too long"))
    elif arg == "*":
        c.sasl, c.sasl_data = None, ""
        c.local(c.numeric("906", "SASL authentication aborted"))
    elif c.sasl is None:
        if arg.upper() == "PLAIN":
            c.sasl = "PLAIN"
            c.local(build(None, "AUTHENTICATE", "+"))
        else:
            c.local(
                c.numeric("908", "PLAIN", "are available SASL mechanisms"),
                c.numeric("904", "SASL authentication failed"),
            )
    elif arg != "+" and len(arg) == _SASL_CHUNK and len(c.sasl_data) < 1600:
        c.sasl_data += arg  # more chunks follow
    else:
        data = c.sasl_data + ("" if arg == "+" else arg)
        c.sasl, c.sasl_data = None, ""
        sasl_plain(c, data)


def sasl_plain(c: IrcState, data: str) -> None:
    failed = c.numeric("904", "SASL authentication failed")
    try:
        _authzid, account, password = base64.b64decode(data, validate=True).split(b"\0")
        credentials = (account.decode(), password.decode())
    except (binascii.Error, ValueError):
        c.local(failed)
        return

    def welcome(reply: Reply) -> None:
        logged_in(c, reply)
        name = c.account or "*"
        c.responses.emit(c.numeric("900", c.mask(name), name, f"You are now logged in as {name}"))
        c.responses.emit(c.numeric("903", "SASL authentication successful"))

    def refused(reply: Reply) -> None:
        c.responses.emit(
            c.numeric("904", f"SASL authentication failed: {reply['error']['message']}")
        )

    c.ask("login", welcome, refused, username=credentials[0], password=credentials[1])


def logged_in(c: IrcState, reply: Reply) -> None:
    c.account = reply["user"]["username"]
    c.member_rooms = list(reply["rooms"])
    c.unread_dms = dict(reply["unread"]["dms"])
    c.invitations = list(reply.get("invited", ()))


def handle_pass(c: IrcState, line: Line) -> None:
    if c.registered:
        c.local(c.numeric("462", "You may not reregister"))
        return
    account, sep, password = line.params[0].partition(":")
    c.password = (
        (account, password)
        if sep and USERNAME_RE.fullmatch(account)
        else (
            "",
            line.params[0],
        )
    )
    c.local()


def handle_nick(c: IrcState, line: Line) -> None:
    nick = line.params[0]
    if c.registered:
        nick_change(c, nick)
    elif not _NICK_RE.fullmatch(nick):
        c.local(build(c.server, "432", c.nick, nick[:40], "Erroneous nickname"))
    else:
        c.nick = nick
        c.local(then=partial(maybe_register, c))


def nick_change(c: IrcState, nick: str) -> None:
    """A nick is its account's name (or a guest's for its connection), so
    it never changes: a nick someone else has is 433 as on any server,
    any other 447; the nick one has, as spelt, changes nothing."""
    if nick == c.nick:
        c.local()
    elif nick.lower() == c.nick.lower():
        why = f"Cannot change nickname: a nick is its account's name, spelt {c.nick}"
        c.local(c.numeric("447", why))
    elif not USERNAME_RE.fullmatch(nick):
        c.local(c.numeric("432", nick[:40], "Erroneous nickname"))
    else:

        def taken(reply: Reply) -> None:
            name = reply["user"]["username"]
            c.responses.emit(c.numeric("433", name, "Nickname is already in use"))

        def free(_: Reply) -> None:
            why = "Cannot change nickname: a nick is its account's name"
            c.responses.emit(c.numeric("447", why))

        c.ask("whois", taken, free, username=nick)


def handle_user(c: IrcState, line: Line) -> None:
    if c.registered:
        c.local(c.numeric("462", "You may not reregister"))
        return
    username, realname = line.params[0], line.params[3]
    if not username or not realname:
        c.local(c.numeric("461", "USER", "Not enough parameters"))
        return
    kept = _USERNAME_DROP_RE.sub("", username)
    c.username = ("~" + kept)[:USERLEN] if kept else ""
    c.realname = realname[:SHORT_TEXT_MAX]
    c.user_given = True
    c.local(then=partial(maybe_register, c))


def maybe_register(c: IrcState) -> None:
    """Registers once NICK, USER and the end of CAP are in, logging in with
    PASS first if SASL did not."""
    if (
        c.registered
        or c.negotiating
        or c.closing
        or c.logging_in
        or c.nick == "*"
        or not c.user_given
    ):
        return
    if c.account is not None:
        _welcome(c)
    elif c.password is not None:
        account, password = c.password
        c.password = None
        c.logging_in = True

        def welcome(reply: Reply) -> None:
            c.logging_in = False
            logged_in(c, reply)
            _welcome(c)

        def refused(reply: Reply) -> None:
            c.logging_in = False
            c.responses.emit(c.numeric("464", f"Password incorrect: {reply['error']['message']}"))
            quit_now(c, "bad password")

        c.ask("login", welcome, refused, username=account or c.nick, password=password)
    elif c.guests:
        guest_login(c)
    else:
        c.responses.emit(build(c.server, "NOTICE", c.nick, _LOGIN_HELP))
        c.responses.emit(c.numeric("464", "Password required: " + _LOGIN_HELP))
        quit_now(c, "authentication required")


def guest_login(c: IrcState) -> None:
    """In as a guest by the nick sent. A nick that is taken (by an account:
    with how to log in) is 433 and an unfit one 432, as NICK's would be:
    the client may send another NICK, which tries again."""
    nick = c.nick
    c.logging_in = True

    def welcome(reply: Reply) -> None:
        c.logging_in = False
        c.guest = True
        logged_in(c, reply)
        _welcome(c)
        c.notice(_GUEST_NOTE.format(nick=c.nick))

    def refused(reply: Reply) -> None:
        c.logging_in = False
        c.nick = "*"  # registration waits for another NICK
        err = reply["error"]
        if err["code"] == "username_taken":
            why = f"{nick} is an account: log in with SASL PLAIN, or PASS {nick}:<password>"
            c.responses.emit(c.numeric("433", nick, f"Nickname is already in use: {why}"))
        elif err["code"] == "nick_in_use":
            c.responses.emit(c.numeric("433", nick, "Nickname is already in use"))
        elif err["code"] == "invalid_username":
            c.responses.emit(c.numeric("432", nick, f"Erroneous nickname: {err['message']}"))
        else:
            c.failed(reply)

    c.ask("guest", welcome, refused, username=nick)


def quit_now(c: IrcState, why: str) -> None:
    c.closing = True  # nothing more is asked for this connection
    c.ask("quit", lambda _: c.error(why), lambda _: c.error(why))


def _welcome(c: IrcState) -> None:
    assert c.account is not None
    c.registered = True
    c.nick = nick = c.account
    c.registration = c.directory.register(nick, c.username or user_part(nick), c.realname)
    server = c.server
    for line in (
        c.numeric("001", f"Welcome to the Nexus IRC gateway, {c.mask(nick)}"),
        c.numeric("002", f"Your host is {server}, running version nexus-{c.version}"),
        c.numeric("003", "This server speaks for a Nexus chat server"),
        build(server, "004", nick, server, f"nexus-{c.version}", "i", "ont"),
    ):
        c.responses.emit(line)
    isupport(c)
    send_motd(c)
    for info in c.invitations:  # made while away: who made them is not kept
        c.rooms[info["name"]] = info
        c.responses.emit(build(c.server, "INVITE", nick, "#" + info["name"]))
    # What follows is no answer to the line that completed registration:
    # told as it comes, it holds back neither that answer nor later ones.
    outer, c.responses.label = c.responses.label, None
    c.ask("rooms", c.got_rooms)
    burst(c)
    for name, count in sorted(c.unread_dms.items()):
        c.ask(
            "dms",
            partial(c.replay_dms, name),
            ignore,
            limit=min(count, DM_HISTORY_CAP),
            **{"with": name},
        )
    c.responses.label = outer


def isupport(c: IrcState) -> None:
    tokens = list(ISUPPORT)
    if c.files_url is not None:  # where an IRC client uploads (the FILEHOST draft)
        tokens.append("soju.im/FILEHOST=" + isupport_value(c.files_url))
    while tokens:
        chunk, tokens = tokens[:12], tokens[12:]
        c.responses.emit(c.numeric("005", *chunk, "are supported by this server"))


def send_motd(c: IrcState) -> None:
    if not c.motd.strip():
        c.responses.emit(c.numeric("422", "MOTD File is missing"))
        return
    c.responses.emit(c.numeric("375", f"- {c.server} Message of the day -"))
    for piece in split_text(c.motd, 400):
        c.responses.emit(c.numeric("372", f"- {piece}"))
    c.responses.emit(c.numeric("376", "End of /MOTD command."))


def burst(c: IrcState) -> None:
    """After the welcome: the rooms the account is a member of, as joined channels."""
    rooms = list(c.member_rooms)
    said: dict[str, list[Reply]] = {}  # their latest lines, for a client shown them
    if c.replays():
        for room in rooms:

            def got(reply: Reply, room: str = room) -> None:
                said[room] = reply["messages"]

            limit = min(c.history_lines, PAGE_MAX)
            c.ask("history", got, ignore, room=room, limit=limit)

    def show(rosters: dict[str, set[str]], markers: Markers) -> None:
        for room in rooms:
            show_channel(c, room, rosters[room], markers)
            c.show_said(room, said.get(room, []))
            c.release(room, said.get(room, []))  # held by a JOIN sent meanwhile

    ask_join_view(c, rooms, show)
