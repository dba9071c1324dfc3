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
from nexus.server.irc.markers import Markers, ReadMarkers
from nexus.server.irc.numerics import (
    CAPS,
    ISUPPORT,
)
from nexus.server.irc.state import Reply, ignore

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


class Registration(ReadMarkers):
    """From the first line to the welcome."""

    guests = False  # a client without credentials may come in as a guest (--irc-guests)

    def _cap(self, line: Line) -> None:
        sub = line.params[0].upper()
        if sub == "LS":
            if not self.registered:
                self.negotiating = True
            if len(line.params) > 1 and line.params[1].isdigit():
                self.cap_version = max(self.cap_version, int(line.params[1]))
            if self.cap_version >= 302:
                self.caps.add("cap-notify")
                offered = [f"{k}={v}" if v else k for k, v in CAPS.items()]
            else:
                offered = list(CAPS)
            self._local(build(self.server, "CAP", self.nick, "LS", " ".join(offered)))
        elif sub == "LIST":
            self._local(build(self.server, "CAP", self.nick, "LIST", " ".join(sorted(self.caps))))
        elif sub == "REQ":
            if not self.registered:
                self.negotiating = True
            wanted = line.params[1].split() if len(line.params) > 1 else []
            if wanted and all(name.lstrip("-") in CAPS for name in wanted):
                for name in wanted:
                    if name.startswith("-"):
                        self.caps.discard(name[1:])
                    else:
                        self.caps.add(name)
                caps = self.caps
                self.profile = (
                    "server-time" in caps,
                    "message-tags" in caps,
                    "account-tag" in caps,
                )
                reply = "ACK"
            else:
                reply = "NAK"
            self._local(build(self.server, "CAP", self.nick, reply, " ".join(wanted)))
        elif sub == "END":
            self._local(then=self._cap_end)
        else:
            self._local(self._numeric("410", sub[:20], "Invalid CAP command"))

    def _cap_end(self) -> None:
        # At reply time, not line time: NICK and USER sent before END must
        # not register the client while its SASL login is still on its way.
        self.negotiating = False
        self._maybe_register()

    def _authenticate(self, line: Line) -> None:
        arg = line.params[0]
        if self.registered:  # a session's account is chosen at login, for its whole life
            self._local(self._numeric("462", "You may not reregister: log in again as another"))
        elif self.account is not None:
            self._local(self._numeric("907", "You have already authenticated"))
        elif len(arg.encode()) > _SASL_CHUNK:
            self.sasl, self.sasl_data = None, ""
            self._local(self._numeric("905", "SASL message too long"))
        elif arg == "*":
            self.sasl, self.sasl_data = None, ""
            self._local(self._numeric("906", "SASL authentication aborted"))
        elif self.sasl is None:
            if arg.upper() == "PLAIN":
                self.sasl = "PLAIN"
                self._local(build(None, "AUTHENTICATE", "+"))
            else:
                self._local(
                    self._numeric("908", "PLAIN", "are available SASL mechanisms"),
                    self._numeric("904", "SASL authentication failed"),
                )
        elif arg != "+" and len(arg) == _SASL_CHUNK and len(self.sasl_data) < 1600:
            self.sasl_data += arg  # more chunks follow
        else:
            data = self.sasl_data + ("" if arg == "+" else arg)
            self.sasl, self.sasl_data = None, ""
            self._sasl_plain(data)

    def _sasl_plain(self, data: str) -> None:
        failed = self._numeric("904", "SASL authentication failed")
        try:
            _authzid, account, password = base64.b64decode(data, validate=True).split(b"\0")
            credentials = (account.decode(), password.decode())
        except (binascii.Error, ValueError):
            self._local(failed)
            return

        def welcome(reply: Reply) -> None:
            self.logged_in(reply)
            name = self.account or "*"
            self.responses.emit(
                self._numeric("900", self._mask(name), name, f"You are now logged in as {name}")
            )
            self.responses.emit(self._numeric("903", "SASL authentication successful"))

        def refused(reply: Reply) -> None:
            self.responses.emit(
                self._numeric("904", f"SASL authentication failed: {reply['error']['message']}")
            )

        self._ask("login", welcome, refused, username=credentials[0], password=credentials[1])

    def logged_in(self, reply: Reply) -> None:
        self.account = reply["user"]["username"]
        self.member_rooms = list(reply["rooms"])
        self.unread_dms = dict(reply["unread"]["dms"])
        self.invitations = list(reply.get("invited", ()))

    def _pass(self, line: Line) -> None:
        if self.registered:
            self._local(self._numeric("462", "You may not reregister"))
            return
        account, sep, password = line.params[0].partition(":")
        self.password = (
            (account, password)
            if sep and USERNAME_RE.fullmatch(account)
            else (
                "",
                line.params[0],
            )
        )
        self._local()

    def _nick(self, line: Line) -> None:
        nick = line.params[0]
        if self.registered:
            self._nick_change(nick)
        elif not _NICK_RE.fullmatch(nick):
            self._local(build(self.server, "432", self.nick, nick[:40], "Erroneous nickname"))
        else:
            self.nick = nick
            self._local(then=self._maybe_register)

    def _nick_change(self, nick: str) -> None:
        """A nick is its account's name (or a guest's for its connection), so
        it never changes: a nick someone else has is 433 as on any server,
        any other 447; the nick one has, as spelt, changes nothing."""
        if nick == self.nick:
            self._local()
        elif nick.lower() == self.nick.lower():
            why = f"Cannot change nickname: a nick is its account's name, spelt {self.nick}"
            self._local(self._numeric("447", why))
        elif not USERNAME_RE.fullmatch(nick):
            self._local(self._numeric("432", nick[:40], "Erroneous nickname"))
        else:

            def taken(reply: Reply) -> None:
                name = reply["user"]["username"]
                self.responses.emit(self._numeric("433", name, "Nickname is already in use"))

            def free(_: Reply) -> None:
                why = "Cannot change nickname: a nick is its account's name"
                self.responses.emit(self._numeric("447", why))

            self._ask("whois", taken, free, username=nick)

    def _user(self, line: Line) -> None:
        if self.registered:
            self._local(self._numeric("462", "You may not reregister"))
            return
        username, realname = line.params[0], line.params[3]
        if not username or not realname:
            self._local(self._numeric("461", "USER", "Not enough parameters"))
            return
        kept = _USERNAME_DROP_RE.sub("", username)
        self.username = ("~" + kept)[:USERLEN] if kept else ""
        self.realname = realname[:SHORT_TEXT_MAX]
        self.user_given = True
        self._local(then=self._maybe_register)

    def _maybe_register(self) -> None:
        """Registers once NICK, USER and the end of CAP are in, logging in with
        PASS first if SASL did not."""
        if (
            self.registered
            or self.negotiating
            or self.closing
            or self.logging_in
            or self.nick == "*"
            or not self.user_given
        ):
            return
        if self.account is not None:
            self._welcome()
        elif self.password is not None:
            account, password = self.password
            self.password = None
            self.logging_in = True

            def welcome(reply: Reply) -> None:
                self.logging_in = False
                self.logged_in(reply)
                self._welcome()

            def refused(reply: Reply) -> None:
                self.logging_in = False
                self.responses.emit(
                    self._numeric("464", f"Password incorrect: {reply['error']['message']}")
                )
                self._quit_now("bad password")

            self._ask("login", welcome, refused, username=account or self.nick, password=password)
        elif self.guests:
            self._guest_login()
        else:
            self.responses.emit(build(self.server, "NOTICE", self.nick, _LOGIN_HELP))
            self.responses.emit(self._numeric("464", "Password required: " + _LOGIN_HELP))
            self._quit_now("authentication required")

    def _guest_login(self) -> None:
        """In as a guest by the nick sent. A nick that is taken (by an account:
        with how to log in) is 433 and an unfit one 432, as NICK's would be:
        the client may send another NICK, which tries again."""
        nick = self.nick
        self.logging_in = True

        def welcome(reply: Reply) -> None:
            self.logging_in = False
            self.guest = True
            self.logged_in(reply)
            self._welcome()
            self._notice(_GUEST_NOTE.format(nick=self.nick))

        def refused(reply: Reply) -> None:
            self.logging_in = False
            self.nick = "*"  # registration waits for another NICK
            err = reply["error"]
            if err["code"] == "username_taken":
                why = f"{nick} is an account: log in with SASL PLAIN, or PASS {nick}:<password>"
                self.responses.emit(
                    self._numeric("433", nick, f"Nickname is already in use: {why}")
                )
            elif err["code"] == "nick_in_use":
                self.responses.emit(self._numeric("433", nick, "Nickname is already in use"))
            elif err["code"] == "invalid_username":
                self.responses.emit(
                    self._numeric("432", nick, f"Erroneous nickname: {err['message']}")
                )
            else:
                self._failed(reply)

        self._ask("guest", welcome, refused, username=nick)

    def _quit_now(self, why: str) -> None:
        self.closing = True  # nothing more is asked for this connection
        self._ask("quit", lambda _: self._error(why), lambda _: self._error(why))

    def _welcome(self) -> None:
        assert self.account is not None
        self.registered = True
        self.nick = nick = self.account
        self.registration = self.directory.register(
            nick, self.username or user_part(nick), self.realname
        )
        server = self.server
        for line in (
            self._numeric("001", f"Welcome to the Nexus IRC gateway, {self._mask(nick)}"),
            self._numeric("002", f"Your host is {server}, running version nexus-{self.version}"),
            self._numeric("003", "This server speaks for a Nexus chat server"),
            build(server, "004", nick, server, f"nexus-{self.version}", "i", "ont"),
        ):
            self.responses.emit(line)
        self._isupport()
        self._send_motd()
        for info in self.invitations:  # made while away: who made them is not kept
            self.rooms[info["name"]] = info
            self.responses.emit(build(self.server, "INVITE", nick, "#" + info["name"]))
        # What follows is no answer to the line that completed registration:
        # told as it comes, it holds back neither that answer nor later ones.
        outer, self.responses.label = self.responses.label, None
        self._ask("rooms", self._got_rooms)
        self._burst()
        for name, count in sorted(self.unread_dms.items()):
            self._ask(
                "dms",
                partial(self._replay_dms, name),
                ignore,
                limit=min(count, DM_HISTORY_CAP),
                **{"with": name},
            )
        self.responses.label = outer

    def _isupport(self) -> None:
        tokens = list(ISUPPORT)
        while tokens:
            chunk, tokens = tokens[:12], tokens[12:]
            self.responses.emit(self._numeric("005", *chunk, "are supported by this server"))

    def _send_motd(self) -> None:
        if not self.motd.strip():
            self.responses.emit(self._numeric("422", "MOTD File is missing"))
            return
        self.responses.emit(self._numeric("375", f"- {self.server} Message of the day -"))
        for piece in split_text(self.motd, 400):
            self.responses.emit(self._numeric("372", f"- {piece}"))
        self.responses.emit(self._numeric("376", "End of /MOTD command."))

    def _burst(self) -> None:
        """After the welcome: the rooms the account is a member of, as joined channels."""
        rooms = list(self.member_rooms)
        said: dict[str, list[Reply]] = {}  # their latest lines, for a client shown them
        if self._replays():
            for room in rooms:

                def got(reply: Reply, room: str = room) -> None:
                    said[room] = reply["messages"]

                limit = min(self.history_lines, PAGE_MAX)
                self._ask("history", got, ignore, room=room, limit=limit)

        def show(rosters: dict[str, set[str]], markers: Markers) -> None:
            for room in rooms:
                self._show_channel(room, rosters[room], markers)
                self._show_said(room, said.get(room, []))

        self._ask_join_view(rooms, show)
