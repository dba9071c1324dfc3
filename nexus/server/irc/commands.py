"""What a registered client asks: channels (JOIN, PART, TOPIC, NAMES, LIST,
MODE), people (WHO, WHOIS, AWAY, ISON, USERHOST), messages (PRIVMSG, NOTICE,
TAGMSG, REDACT), history (CHATHISTORY) and the small commands."""

from __future__ import annotations

from functools import partial
from typing import Any

from nexus.protocol import DM_HISTORY_CAP, PAGE_DEFAULT, PAGE_MAX, ROOM_HISTORY_CAP, USERNAME_RE
from nexus.server.irc.directory import Extras
from nexus.server.irc.history import (
    chathistory,
    irc_time,
    ms,
    newest,
    pair,
    parse_ms,
    seq_of,
)
from nexus.server.irc.lines import Line, build
from nexus.server.irc.markers import Markers
from nexus.server.irc.numerics import (
    CHANNELLEN,
    HISTORY_MAX,
    HOST,
    TOPICLEN,
)
from nexus.server.irc.registration import Registration
from nexus.server.irc.state import OnReply, Reply, Sent, Sight, client_text, ignore, room_named


class Commands(Registration):
    """One method a command; `Translator` maps command names to them."""

    def _join(self, line: Line) -> None:
        if line.params[0] == "0":
            for joined in list(self.channels):
                self._leave(joined, None, ignore)
            return
        keys = line.params[1].split(",") if len(line.params) > 1 else []
        for i, target in enumerate(line.params[0].split(",")[:10]):
            room = room_named(target)
            private = i < len(keys) and keys[i] == "+i"
            if room is None:
                self._local(self._numeric("403", target[: CHANNELLEN + 8], "No such channel"))
            elif room in self.channels and room not in self.joining:
                self._joined_again(room, private)
            else:
                self._join_room(room, create=True, private=private)

    def _joined_again(self, room: str, private: bool) -> None:
        """JOIN of a channel already shown: its NAMES again, as after a JOIN,
        without a `join` request (whose reply is the room's latest messages)."""

        def show(rosters: dict[str, set[str]]) -> None:
            if room not in self.channels:  # taken out of it meanwhile: in again
                self._join_room(room, create=True, private=private)
                return
            if private and not self.rooms.get(room, {}).get("private"):
                self._notice(f"#{room} already exists and is public: +i only makes a new room")
            self.channels[room] = rosters[room]
            self._show_names(room)

        self._members_of([room], show)

    def _join_room(self, room: str, create: bool, private: bool = False) -> None:
        """Joins `room`; with `create`, a missing one is created (`private`:
        `JOIN #room +i`, the key field clients send, asks for a private room)."""
        self.joining.add(room)

        said: list[Reply] = []  # the room's latest messages, for a client shown them on JOIN

        def joined(reply: Reply) -> None:
            self.rooms[room] = reply["room"]
            if private and not reply["room"].get("private"):
                self._notice(f"#{room} already exists and is public: +i only makes a new room")
            if self._replays():
                if self.history_lines <= PAGE_DEFAULT:  # the join's reply holds enough
                    said.extend(reply["history"])
                else:
                    self._ask("history", lambda r: said.extend(r["messages"]), ignore,
                              room=room, limit=min(self.history_lines, PAGE_MAX))  # fmt: skip
            self._ask_join_view([room], show)

        def missing(reply: Reply) -> None:
            self.joining.discard(room)
            if reply["error"]["code"] == "no_such_room" and create:
                self._ask(
                    "create",
                    lambda _: self._join_room(room, create=False, private=private),
                    lambda r: self._failed(r, "#" + room),
                    room=room,
                    **({"private": True} if private else {}),
                )
            else:
                self._failed(reply, "#" + room)

        def show(rosters: dict[str, set[str]], markers: Markers) -> None:
            self.joining.discard(room)
            if room in self.channels:
                self.channels[room] = rosters[room]
                self._show_names(room)
            else:
                self._show_channel(room, rosters[room], markers)
                self._show_said(room, said)

        self._ask("join", joined, missing, room=room)

    def _part(self, line: Line) -> None:
        given = client_text(line.params[1]) if len(line.params) > 1 else ""
        reason = given[:TOPICLEN] or None
        for target in line.params[0].split(",")[:10]:
            room = room_named(target)
            if room is None:
                self._local(self._numeric("403", target[:40], "No such channel"))
                continue
            self._leave(room, reason, partial(self._room_refused, target, self._sight(room)))

    def _leave(self, room: str, reason: str | None, refused: OnReply) -> None:
        """Leaves `room`; the others are told `reason` too (the directory's)."""
        self.directory.parting(room, self.nick, reason or "")  # no earlier one's reason
        self.leaving[room] = self.leaving.get(room, 0) + 1

        def done(_: Reply) -> None:
            self._left_one(room)
            if self._forget(room):
                self.responses.emit(self._part_line(self.nick, room, reason))

        def failed(reply: Reply) -> None:
            self._left_one(room)
            refused(reply)

        self._ask("leave", done, failed, room=room)

    def _left_one(self, room: str) -> None:
        if self.leaving[room] > 1:
            self.leaving[room] -= 1
        else:
            del self.leaving[room]

    def _topic(self, line: Line) -> None:
        target = line.params[0]
        room = room_named(target)
        if room is None:
            self._local(self._numeric("403", target[:40], "No such channel"))
        elif len(line.params) > 1:
            text = client_text(line.params[1])
            refused = partial(self._room_refused, target, self._sight(room))
            self._ask("topic", None, refused, room=room, topic=text)
        else:

            def show(info: Reply | None) -> None:
                if info is None:
                    self.responses.emit(self._numeric("403", target, "No such channel"))
                else:
                    self._show_topic(room, asked=True)

            self._with_room(room, show)

    def _names(self, line: Line) -> None:
        if not line.params:
            self._local(self._numeric("366", "*", "End of /NAMES list."))
            return
        room = room_named(line.params[0].split(",")[0])
        if room is None:
            self._local(self._numeric("366", line.params[0][:40], "End of /NAMES list."))
            return

        def show(rosters: dict[str, set[str]]) -> None:
            if room in self.channels:
                self.channels[room] = rosters[room]
            self._show_names(room, rosters[room])

        self._members_of([room], show)

    def _list(self, line: Line) -> None:
        wanted = (
            {r for t in line.params[0].split(",") if (r := room_named(t))} if line.params else None
        )

        def show(reply: Reply) -> None:
            self._got_rooms(reply)
            self.responses.emit(self._numeric("321", "Channel", "Users  Name"))
            for room in reply["rooms"]:
                if wanted is None or room["name"] in wanted:
                    self.responses.emit(
                        self._numeric(
                            "322",
                            "#" + room["name"],
                            str(room["members"]),  # as NAMES lists them: online or not
                            f"[+{'i' if room.get('private') else ''}nt] {room['topic']}",
                        )
                    )
            self.responses.emit(self._numeric("323", "End of /LIST"))

        self._ask("rooms", show)

    def _who_cmd(self, line: Line) -> None:
        self._who(line.params)

    def _whois(self, line: Line) -> None:
        name = line.params[-1].split(",")[0]
        if not USERNAME_RE.fullmatch(name):
            self._local(
                self._numeric("401", name[:40], "No such nick/channel"),
                self._numeric("318", name[:40], "End of /WHOIS list."),
            )
            return

        def got(reply: Reply) -> None:
            # Whether they are an operator where this client is not shown is
            # in the list of rooms (kept current only for the channels shown).
            if any(room not in self.channels for room in reply["user"]["rooms"]):
                self._ask("rooms", lambda rooms: show(reply, rooms), lambda _: show(reply, None))
            else:
                show(reply, None)

        def show(reply: Reply, rooms: Reply | None) -> None:
            if rooms is not None:
                self._got_rooms(rooms)
            p = reply["user"]
            nick = p["username"]
            self._got_profile(reply)
            username = self.directory.username(nick)
            self.responses.emit(
                self._numeric("311", nick, username, HOST, "*", self._realname(nick))
            )
            if p["rooms"]:
                listed = [r for r in p["rooms"] if r in self.rooms]  # the ones it may see
                shown = " ".join(("@" if self._is_op(r, nick) else "") + "#" + r for r in listed)
                if shown:
                    self.responses.emit(self._numeric("319", nick, shown))
            self.responses.emit(self._numeric("312", nick, self.server, "Nexus"))
            away = self._away_text(nick)
            if away:
                self.responses.emit(self._numeric("301", nick, away))
            if not p["online"] and p["last_seen"]:
                seen = irc_time(p["last_seen"])
                self.responses.emit(
                    self._numeric("320", nick, f"is offline, last seen {seen}; DMs wait")
                )
            if p.get("admin"):
                self.responses.emit(self._numeric("313", nick, "is a server administrator"))
            if not p.get("guest"):  # a guest has no account: no 330
                self.responses.emit(self._numeric("330", nick, nick, "is logged in as"))
            self.responses.emit(self._numeric("318", nick, "End of /WHOIS list."))

        def missing(reply: Reply) -> None:
            self.responses.emit(self._numeric("401", name, "No such nick/channel"))
            self.responses.emit(self._numeric("318", name, "End of /WHOIS list."))

        self._ask("whois", got, missing, username=name)

    def _mode(self, line: Line) -> None:
        target = line.params[0]
        room = room_named(target)
        if room is None:
            if target.lower() != self.nick.lower():
                self._local(self._numeric("502", "Can't change mode for other users"))
            elif len(line.params) == 1:
                self._local(self._numeric("221", "+i" if self._invisible() else "+"))
            else:
                self._user_mode(line.params[1])
            return
        if len(line.params) == 1:

            def show(info: Reply | None) -> None:
                if info is None:
                    self.responses.emit(self._numeric("403", target, "No such channel"))
                else:
                    private = "i" if info.get("private") else ""
                    self.responses.emit(self._numeric("324", target, f"+{private}nt"))

            self._with_room(room, show)
            return
        changes = _mode_changes(line.params[1], line.params[2:])
        if changes and all(arg is None and mode in _LIST_MODES for _, mode, arg in changes):
            self._mode_list(target, room, changes[0][1])
            return
        asks = any((on, mode) in _MODE_COMMANDS and arg is not None for on, mode, arg in changes)
        refused = partial(self._room_refused, target, self._sight(room) if asks else None)
        for on, mode, arg in changes:
            if mode in "is":  # a private room is both: invite only and unlisted
                self._with_room(room, partial(self._privacy, target, room, on))
                continue
            if mode in "nt":
                self._with_room(room, partial(self._always, target, room, on, mode))
                continue
            cmd = _MODE_COMMANDS.get((on, mode))
            if cmd is None or arg is None:
                self._local(self._numeric("472", mode, "is not a mode this server changes"))
                continue
            nick = arg.split("!")[0]
            done = partial(self._banned, room, nick, on) if mode == "b" else None
            self._ask(cmd, done, refused, room=room, username=nick)

    def _invisible(self) -> bool:
        return self.registration is not None and self.registration.invisible

    def _user_mode(self, modes: str) -> None:
        """MODE nick +i / -i: invisible, a WHO mask lists the nick only to
        those who share a channel with it. No other user mode (501)."""
        on, changed, unknown = True, "", False
        for char in modes[:12]:
            if char in "+-":
                on = char == "+"
            elif char == "i" and self.registration is not None:
                if self.registration.invisible != on:
                    self.registration.invisible = on
                    changed += ("+" if on else "-") + "i"
            else:
                unknown = True
        lines = [build(self._mask(self.nick), "MODE", self.nick, changed)] if changed else []
        if unknown:
            lines.append(self._numeric("501", "Unknown MODE flag"))
        self._local(*lines)

    def _privacy(self, target: str, room: str, on: bool, info: Reply | None) -> None:
        """MODE +i / -i: a room's privacy is chosen when it is created (the
        protocol has no request to change it), so an operator asking for a
        change is told so (400); setting what already holds changes nothing."""
        if info is None:
            self.responses.emit(self._numeric("403", target, "No such channel"))
        elif not self._is_op(room, self.nick):
            self.responses.emit(self._numeric("482", target, "You're not channel operator"))
        elif bool(info.get("private")) != on:
            now = "private (+i)" if not on else "public"
            self.responses.emit(
                self._numeric(
                    "400",
                    "MODE",
                    f"{target} is {now}: a room's privacy is chosen when it is created"
                    " (JOIN #room +i makes a new private one) and cannot change",
                )
            )

    def _always(self, target: str, room: str, on: bool, mode: str, info: Reply | None) -> None:
        """MODE +t / +n change nothing (every channel is +nt); -t / -n are
        refused: only channel operators set a topic, and only members speak."""
        if info is None:
            self.responses.emit(self._numeric("403", target, "No such channel"))
        elif not self._is_op(room, self.nick):
            self.responses.emit(self._numeric("482", target, "You're not channel operator"))
        elif not on:
            why = _ALWAYS[mode]
            self.responses.emit(self._numeric("472", mode, f"is always set here: {why}"))

    def _banned(self, room: str, nick: str, on: bool, _: Reply) -> None:
        """A ban or unban the client set, shown as the mode change IRC expects (a
        member's ban shows through its `kicked` event instead)."""
        if on and nick in self.channels.get(room, ()):
            return
        sign = "+" if on else "-"
        self.responses.emit(
            build(self._mask(self.nick), "MODE", "#" + room, sign + "b", f"{nick}!*@*")
        )

    def _mode_list(self, target: str, room: str, mode: str) -> None:
        """MODE #room b / q: the bans, or the muted members (the quiet list)."""
        if mode == "b":

            def bans(reply: Reply) -> None:
                for ban in reply["bans"]:
                    self.responses.emit(
                        self._numeric(
                            "367", target, f"{ban['user']}!*@*", ban["by"], str(int(ban["ts"]))
                        )
                    )
                self.responses.emit(self._numeric("368", target, "End of channel ban list"))

            def not_shown(reply: Reply) -> None:
                if reply["error"]["code"] == "not_allowed":  # lists are the operators'
                    self.responses.emit(self._numeric("368", target, "End of channel ban list"))
                else:
                    self._failed(reply, target)

            refused = partial(self._room_refused, target, self._sight(room), told=not_shown)
            self._ask("bans", bans, refused, room=room)
        elif mode == "q":

            def quiets(info: Reply | None) -> None:
                for nick in (info or {}).get("muted", ()):
                    self.responses.emit(self._numeric("728", target, "q", f"{nick}!*@*"))
                self.responses.emit(self._numeric("729", target, "q", "End of channel quiet list"))

            self._with_room(room, quiets)
        else:
            end = {"e": ("349", "exception"), "I": ("347", "invite")}.get(mode)
            if end is None:
                self._local(self._numeric("472", mode, "is not a mode this server changes"))
            else:
                self._local(self._numeric(end[0], target, f"End of channel {end[1]} list"))

    def _kick(self, line: Line) -> None:
        """KICK #chan nick[,nick...] [:reason], or KICK #a,#b nick1,nick2 (in
        pairs), at most TARGMAX's 4 nicks."""
        channels, nicks = line.params[0].split(","), line.params[1].split(",")[:4]
        reason = client_text(line.params[2]) if len(line.params) > 2 else ""
        if len(channels) == 1:
            pairs = [(channels[0], nick) for nick in nicks]
        elif len(channels) == len(nicks):
            pairs = list(zip(channels, nicks, strict=True))
        else:
            self._local(self._numeric("461", "KICK", "Not enough parameters"))
            return
        sights: dict[str, Sight | None] = {}
        for target, nick in pairs:
            room = room_named(target)
            if room is None:
                self._local(self._numeric("403", target[:40], "No such channel"))
                continue
            if room not in sights:
                sights[room] = self._sight(room)

            def not_theirs(reply: Reply, nick: str = nick, target: str = target) -> None:
                if reply["error"]["code"] == "not_member":
                    self.responses.emit(
                        self._numeric("441", nick, target, "They aren't on that channel")
                    )
                else:
                    self._failed(reply, target)

            refused = partial(self._room_refused, target, sights[room], told=not_theirs)
            self._ask("kick", None, refused, room=room, username=nick, reason=reason[:TOPICLEN])

    def _invite(self, line: Line) -> None:
        nick, target = line.params[0], line.params[1]
        room = room_named(target)
        if room is None:
            self._local(self._numeric("403", target[:40], "No such channel"))
            return

        def invited(_: Reply) -> None:
            members = {n.lower() for n in self.channels.get(room, ())}
            if nick.lower() in members:  # nothing to invite them to
                self.responses.emit(self._numeric("443", nick, target, "is already on channel"))
            else:
                self.responses.emit(self._numeric("341", nick, target))

        sight = self._sight(room)

        def refused(reply: Reply) -> None:
            if reply["error"]["code"] == "no_such_user":
                self._failed(reply, nick)
            else:
                self._room_refused(target, sight, reply)

        self._ask("invite", invited, refused, room=room, username=nick)

    def _away(self, line: Line) -> None:
        text = client_text(line.params[0]) if line.params else ""

        def done(_: Reply) -> None:
            if text:
                self.responses.emit(self._numeric("306", "You have been marked as being away"))
            else:
                self.responses.emit(self._numeric("305", "You are no longer marked as being away"))

        self._ask("away", done, text=text[:TOPICLEN])

    def _privmsg(self, line: Line, notice: bool = False) -> None:
        """PRIVMSG, and NOTICE (which no error ever answers): a message to
        each target, with what Nexus does not keep of the line (that it is a
        NOTICE, its client-only tags) noted for the IRC clients it reaches."""
        if len(line.params) < 2 or not line.params[1]:
            if not notice:
                self._local(self._numeric("412", "No text to send"))
            return
        if not line.utf8:  # UTF8ONLY: refused, never relayed mangled
            if not notice:
                why = "Message rejected: it is not valid UTF-8"
                self._local(build(self.server, "FAIL", line.command, "INVALID_UTF8", why))
            return
        text, action = line.params[1], False
        if text.startswith("\x01"):
            body = text.strip("\x01")
            if not body.upper().startswith("ACTION"):
                return  # CTCP queries (VERSION, PING...) are not messages
            text, action = body[6:].lstrip(" "), True
        text = client_text(text)
        tags = line.tags
        reply_to = tags.get("+draft/reply")
        if tags:
            tags = {k: v for k, v in tags.items() if k.startswith("+") and k != "+draft/reply"}
        for target in line.params[0].split(",")[:4]:
            # What Nexus does not keep of the line, noted for the others (a
            # plain PRIVMSG has nothing to note).
            extras = Extras(notice, tags) if notice or tags else None
            self._send_to(target, text, action, reply_to, extras)

    def _send_to(
        self, target: str, text: str, action: bool, reply_to: str | None, extras: Extras | None
    ) -> None:
        room = room_named(target)
        if target.startswith("#") and room is None:
            self._local(self._numeric("403", target[:40], "No such channel"))
            return
        if room is None and not USERNAME_RE.fullmatch(target):
            self._local(self._numeric("401", target[:40], "No such nick/channel"))
            return
        scope = room if room is not None else pair(self.nick, target)
        fields: dict[str, Any] = {"text": text}
        if action:
            fields["action"] = True
        seq = seq_of(reply_to) if reply_to and reply_to.rpartition(".")[0] == scope else None
        if seq is not None:
            fields["reply_to"] = seq
        sent = Sent(target.lower(), text, self.responses.label)
        self.sent.append(sent)
        if extras is not None:
            self.directory.said(scope, self.nick, text, extras)
        sight = self._sight(room) if room is not None else None

        def failed(reply: Reply) -> None:
            if sent in self.sent:
                self.sent.remove(sent)
            if extras is not None:
                self.directory.refused(extras)
                if extras.notice:  # never answered with an error
                    return
            if room is not None:
                self._room_refused(target, sight, reply, partial(self._cannot_send, target))
            else:
                self._failed(reply, target)

        def done(reply: Reply) -> None:
            if sent in self.sent:  # the message never came back (not a member any more?)
                self.sent.remove(sent)
            if extras is not None:
                self.directory.stored(scope, reply["seq"], extras)
                if extras.notice:  # no automatic reply (301) to a NOTICE
                    return
            if room is None and target.lower() != self.nick.lower():
                self._tell_away(target)

        if room is not None:
            self._ask("say", done, failed, room=room, **fields)
        else:
            self._ask("dm", done, failed, to=target, **fields)

    def _tell_away(self, nick: str) -> None:
        """After a DM: 301 if its recipient is away (or offline: it waits for
        them), as known from a channel shared, else as `whois` tells."""
        if any(nick in nicks for nicks in self.channels.values()):
            away = self._away_text(nick)
            if away:
                self.responses.emit(self._numeric("301", nick, away))
            return

        def got(reply: Reply) -> None:
            self._got_profile(reply)
            name = reply["user"]["username"]
            away = self._away_text(name)
            if away:
                self.responses.emit(self._numeric("301", name, away))

        self._ask("whois", got, ignore, username=nick)

    def _cannot_send(self, target: str, reply: Reply) -> None:
        if reply["error"]["code"] in _CANNOT_SEND:
            why = f"Cannot send to channel: {reply['error']['message']}"
            self.responses.emit(self._numeric("404", target, why))
        else:
            self._failed(reply, target)

    def _notice_cmd(self, line: Line) -> None:
        self._privmsg(line, notice=True)

    def _tagmsg(self, line: Line) -> None:
        """A reaction (`+draft/react` or `+draft/unreact` with `+draft/reply`)."""
        emoji = line.tags.get("+draft/react") or line.tags.get("+draft/unreact")
        seq = seq_of(line.tags.get("+draft/reply"))
        if not emoji or seq is None:
            self._local()
            return
        on = "+draft/react" in line.tags
        target = line.params[0]
        address = self._address(target)
        room = address.get("room")
        mine = (room or pair(self.nick, target), seq, emoji, on)
        self.reacting.append((mine, self.responses.label))  # its echo comes back with its label

        def refused(reply: Reply) -> None:
            self._unreact(mine)
            if room is not None:
                self._room_refused(target, sight, reply, told=self._failed)
            else:
                self._failed(reply)

        sight = self._sight(room) if room is not None else None

        def done(_: Reply) -> None:
            self._unreact(mine)  # answered without coming back

        self._ask("react", done, refused, seq=seq, emoji=emoji, on=on, **address)

    def _redact(self, line: Line) -> None:
        seq = seq_of(line.params[1])
        if seq is None:
            self._local(
                build(
                    self.server,
                    "FAIL",
                    "REDACT",
                    "UNKNOWN_MSGID",
                    line.params[1][:80],
                    "No such message",
                )
            )
            return

        target, mid = line.params[0], line.params[1]
        address = self._address(target)
        room = address.get("room")
        sight = self._sight(room) if room is not None else None

        def refused(reply: Reply) -> None:
            err = reply["error"]
            if room is not None and (err["code"] == "no_such_room" or (sight and sight.hidden)):
                fail = ("INVALID_TARGET", target, mid, "No such channel")
            elif err["code"] == "not_allowed":
                fail = ("REDACT_FORBIDDEN", target, mid, err["message"])
            else:
                fail = ("UNKNOWN_MSGID", target, mid, err["message"])
            self.responses.emit(build(self.server, "FAIL", "REDACT", *fail))

        self._ask("erase", None, refused, seq=seq, **address)

    def _address(self, target: str) -> dict[str, str]:
        room = room_named(target)
        return {"room": room} if room is not None else {"with": target}

    def _chathistory(self, line: Line) -> None:
        sub, target = line.params[0].upper(), line.params[1]
        if sub == "TARGETS":
            self._targets(line.params[1:])
            return
        room = room_named(target)
        if room is not None and room not in self.channels:  # a channel one is in, as IRC has it
            self._local(
                self._history_fail("INVALID_TARGET", sub[:20], target[:40], "No such channel")
            )
            return
        args = line.params[2:]
        try:
            limit = min(int(args[-1]), HISTORY_MAX)
        except (ValueError, IndexError):
            limit = -1
        refs = args[:-1]
        if (
            sub not in ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN")
            or limit < 0
            or len(refs) != (2 if sub == "BETWEEN" else 1)
        ):
            self._local(self._history_fail("INVALID_PARAMS", sub[:20], "Invalid parameters"))
            return

        def answer(chosen: list[Reply]) -> None:
            self._replay(chosen, None if room is not None else target, batch_target=target)

        def refused(reply: Reply) -> None:
            # A room's history is refused only when there is none the account may see.
            why = "No such channel" if room is not None else reply["error"]["message"]
            self.responses.emit(self._history_fail("INVALID_TARGET", sub, target, why))

        if room is not None:
            walk = chathistory(sub, refs, limit, ROOM_HISTORY_CAP)
            self._walk(walk, answer, refused, room=room)
        elif USERNAME_RE.fullmatch(target):
            # Reading a DM conversation marks it read up to its newest DM (as
            # `dms` does everywhere): noted from that one DM, asked first.
            self._ask("dms", self._read_newest_dm, ignore, limit=1, **{"with": target})
            walk = chathistory(sub, refs, limit, DM_HISTORY_CAP)
            self._walk(walk, answer, refused, **{"with": target})
        else:
            self._local(self._history_fail("INVALID_TARGET", sub, target[:40], "No such target"))

    def _history_fail(self, code: str, *params: str) -> str:
        return build(self.server, "FAIL", "CHATHISTORY", code, *params)

    def _read_newest_dm(self, reply: Reply) -> None:
        self._read_all_dms(reply["messages"])

    def _targets(self, args: list[str]) -> None:
        """CHATHISTORY TARGETS timestamp=A timestamp=B limit: the channels and
        DM partners whose latest message was said between A and B (both
        excluded), with its time, oldest first; with A after B, the `limit`
        latest, else the `limit` earliest (as Ergo pages them)."""
        bounds = [parse_ms(ref[10:]) for ref in args[:2] if ref.startswith("timestamp=")]
        try:
            limit = min(int(args[2]), HISTORY_MAX)
        except (ValueError, IndexError):
            limit = 0
        if len(bounds) != 2 or None in bounds or limit <= 0:
            self._local(self._history_fail("INVALID_PARAMS", "TARGETS", "Invalid parameters"))
            return
        first, second = (t for t in bounds if t is not None)
        low, high = min(first, second), max(first, second)
        found: list[tuple[float, str]] = []

        def latest(target: str, messages: list[Reply]) -> None:
            if messages and low < ms(messages[-1]["ts"]) < high:
                found.append((messages[-1]["ts"], target))

        def partners(reply: Reply) -> None:
            for conversation in reply["conversations"]:
                if low < ms(conversation["ts"]) < high:
                    found.append((conversation["ts"], conversation["with"]))

        def answer() -> None:
            found.sort()
            chosen = found[:limit] if first <= second else found[-limit:]
            lines = [
                build(self.server, "CHATHISTORY", "TARGETS", t, irc_time(ts)) for ts, t in chosen
            ]
            self.responses.batched(lines, "draft/chathistory-targets")

        # Each channel's newest message (erased ones skipped), and every DM
        # conversation with the time of its newest (which reads none of them).
        for room in sorted(self.channels):
            self._walk(newest(1), partial(latest, "#" + room), ignore, room=room)
        self._ask("conversations", partners, ignore, limit=PAGE_MAX)
        self._local(then=answer)

    def _ping(self, line: Line) -> None:
        self._local(build(self.server, "PONG", self.server, line.params[0]))

    def _pong(self, line: Line) -> None:
        self._local()

    def _quit(self, line: Line) -> None:
        given = client_text(line.params[0])[:TOPICLEN] if line.params else ""
        if given and self.registered:
            self.directory.quitting(self.nick, given)  # the others' QUIT of a guest says it
        reason = given or "Client quit"
        self._ask("quit", lambda _: self._error(f"Quit: {reason}"[:200]))

    def _motd_cmd(self, line: Line) -> None:
        self._local(then=self._send_motd)

    def _version(self, line: Line) -> None:
        self._local(
            self._numeric("351", f"nexus-{self.version}", self.server, "IRC gateway"),
            then=self._isupport,
        )

    def _ison(self, line: Line) -> None:
        """ISON nick...: which of them are online, asked of each (not the list of
        everyone online, which costs what the server's whole population does)."""
        asked = {n.lower(): n for n in " ".join(line.params).split() if USERNAME_RE.fullmatch(n)}
        online: dict[str, str] = {}

        def got(reply: Reply) -> None:
            if reply["user"]["online"]:
                online[reply["user"]["username"].lower()] = reply["user"]["username"]

        def show() -> None:
            self.responses.emit(
                self._numeric("303", " ".join(online[n] for n in asked if n in online))
            )

        for nick in asked.values():
            self._ask("whois", got, ignore, username=nick)
        self._local(then=show)

    def _userhost(self, line: Line) -> None:
        """USERHOST nick...: `nick[*]=+|-user@host` for each online one (`*` a
        server admin, `-` away), asked of each as ISON does."""
        found: dict[str, str] = {}
        asked = [n for n in line.params[:5] if USERNAME_RE.fullmatch(n)]

        def got(reply: Reply) -> None:
            self._got_profile(reply)
            p = reply["user"]
            if p["online"]:
                nick = p["username"]
                oper = "*" if p.get("admin") else ""
                here = "-" if p.get("away") else "+"
                user = self.directory.username(nick)
                found[nick.lower()] = f"{nick}{oper}={here}{user}@{HOST}"

        def show() -> None:
            self.responses.emit(self._numeric("302", " ".join(found[n.lower()] for n in asked
                                                     if n.lower() in found)))  # fmt: skip

        for nick in asked:
            self._ask("whois", got, ignore, username=nick)
        self._local(then=show)


# Why a PRIVMSG to a channel is 404 (cannot send) rather than another refusal.
_CANNOT_SEND = frozenset({"not_member", "muted", "rate_limited", "too_long"})


# MODE letters Nexus acts on, and the request each asks.
_MODE_COMMANDS = {
    (True, "o"): "op",
    (False, "o"): "deop",
    (True, "b"): "ban",
    (False, "b"): "unban",
    (True, "q"): "mute",
    (False, "q"): "unmute",
}


# Channel modes every channel has, and why.
_ALWAYS = {
    "t": "only channel operators set a channel's topic",
    "n": "only a channel's members send to it",
}


_MODES_WITH_ARGS = frozenset("obqeIklv")


_LIST_MODES = frozenset("bqeI")  # without an argument: a request for the list


def _mode_changes(modes: str, args: list[str]) -> list[tuple[bool, str, str | None]]:
    """'+o-b' with ['ana', 'bob'] -> [(True, 'o', 'ana'), (False, 'b', 'bob')];
    a list mode without its argument gets None (a request for the list)."""
    changes: list[tuple[bool, str, str | None]] = []
    on, rest = True, list(args)
    for char in modes[:12]:
        if char in "+-":
            on = char == "+"
        else:
            arg = rest.pop(0) if char in _MODES_WITH_ARGS and rest else None
            changes.append((on, char, arg))
    return changes
