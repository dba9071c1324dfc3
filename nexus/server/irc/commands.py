"""What a registered client asks: channels (JOIN, PART, TOPIC, NAMES, LIST,
MODE), people (WHO, WHOIS, AWAY, ISON, USERHOST), messages (PRIVMSG, NOTICE,
TAGMSG, REDACT), history (CHATHISTORY) and the small commands. Each command
is a function of the connection's state and its line (`handle_<command>`),
which the translator's table names."""

from __future__ import annotations

from functools import partial
from typing import Any

from nexus.protocol import DM_HISTORY_CAP, PAGE_DEFAULT, PAGE_MAX, ROOM_HISTORY_CAP, USERNAME_RE
from nexus.server.irc.directory import Extras
from nexus.server.irc.formatting import from_irc
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
from nexus.server.irc.markers import Markers, ask_join_view, show_channel
from nexus.server.irc.members import away_text, got_profile, members_of, who_reply
from nexus.server.irc.numerics import (
    CHANNELLEN,
    HISTORY_MAX,
    HOST,
    TOPICLEN,
)
from nexus.server.irc.registration import isupport, send_motd
from nexus.server.irc.state import (
    IrcState,
    OnReply,
    Reply,
    Sent,
    Sight,
    client_text,
    ignore,
    room_named,
)


def handle_join(c: IrcState, line: Line) -> None:
    if line.params[0] == "0":
        for joined in list(c.channels):
            leave(c, joined, None, ignore)
        return
    keys = line.params[1].split(",") if len(line.params) > 1 else []
    for i, target in enumerate(line.params[0].split(",")[:10]):
        room = room_named(target)
        private = i < len(keys) and keys[i] == "+i"
        if room is None:
            c.local(c.numeric("403", target[: CHANNELLEN + 8], "No such channel"))
        elif room in c.channels and room not in c.joining:
            joined_again(c, room, private)
        else:
            join_room(c, room, create=True, private=private)


def joined_again(c: IrcState, room: str, private: bool) -> None:
    """JOIN of a channel already shown: its NAMES again, as after a JOIN,
    without a `join` request (whose reply is the room's latest messages)."""

    def show(rosters: dict[str, set[str]]) -> None:
        if room not in c.channels:  # taken out of it meanwhile: in again
            join_room(c, room, create=True, private=private)
            return
        if private and not c.rooms.get(room, {}).get("private"):
            c.notice(f"#{room} already exists and is public: +i only makes a new room")
        c.channels[room] = rosters[room]
        c.show_names(room)

    members_of(c, [room], show)


def join_room(c: IrcState, room: str, create: bool, private: bool = False) -> None:
    """Joins `room`; with `create`, a missing one is created (`private`:
    `JOIN #room +i`, the key field clients send, asks for a private room)."""
    c.joining.setdefault(room, None if room in c.channels else [])

    said: list[Reply] = []  # the room's latest messages, for a client shown them on JOIN

    def joined(reply: Reply) -> None:
        c.rooms[room] = reply["room"]
        if private and not reply["room"].get("private"):
            c.notice(f"#{room} already exists and is public: +i only makes a new room")
        if c.replays():
            if c.history_lines <= PAGE_DEFAULT:  # the join's reply holds enough
                said.extend(reply["history"])
            else:
                c.ask("history", lambda r: said.extend(r["messages"]), ignore,
                          room=room, limit=min(c.history_lines, PAGE_MAX))  # fmt: skip
        ask_join_view(c, [room], show)

    def missing(reply: Reply) -> None:
        c.joining.pop(room, None)
        if reply["error"]["code"] == "no_such_room" and create:
            c.ask(
                "create",
                lambda _: join_room(c, room, create=False, private=private),
                lambda r: c.failed(r, "#" + room),
                room=room,
                **({"private": True} if private else {}),
            )
        else:
            c.failed(reply, "#" + room)

    def show(rosters: dict[str, set[str]], markers: Markers) -> None:
        if room in c.channels:  # shown meanwhile: by the welcome or another JOIN
            c.channels[room] = rosters[room]
            c.show_names(room)
            c.release(room, [])  # what was held since, if that showing left any
        else:
            show_channel(c, room, rosters[room], markers)
            c.show_said(room, said)
            c.release(room, said)

    c.ask("join", joined, missing, room=room)


def handle_part(c: IrcState, line: Line) -> None:
    given = client_text(line.params[1]) if len(line.params) > 1 else ""
    reason = given[:TOPICLEN] or None
    for target in line.params[0].split(",")[:10]:
        room = room_named(target)
        if room is None:
            c.local(c.numeric("403", target[:40], "No such channel"))
            continue
        leave(c, room, reason, partial(c.room_refused, target, c.sight(room)))


def leave(c: IrcState, room: str, reason: str | None, refused: OnReply) -> None:
    """Leaves `room`; the others are told `reason` too (the directory's)."""
    c.directory.parting(room, c.nick, reason or "")  # no earlier one's reason
    c.leaving[room] = c.leaving.get(room, 0) + 1

    def done(_: Reply) -> None:
        left_one(c, room)
        if c.forget(room):
            c.responses.emit(c.part_line(c.nick, room, reason))

    def failed(reply: Reply) -> None:
        left_one(c, room)
        refused(reply)

    c.ask("leave", done, failed, room=room)


def left_one(c: IrcState, room: str) -> None:
    if c.leaving[room] > 1:
        c.leaving[room] -= 1
    else:
        del c.leaving[room]


def handle_topic(c: IrcState, line: Line) -> None:
    target = line.params[0]
    room = room_named(target)
    if room is None:
        c.local(c.numeric("403", target[:40], "No such channel"))
    elif len(line.params) > 1:
        text = client_text(line.params[1])
        refused = partial(c.room_refused, target, c.sight(room))
        c.ask("topic", None, refused, room=room, topic=text)
    else:

        def show(info: Reply | None) -> None:
            if info is None:
                c.responses.emit(c.numeric("403", target, "No such channel"))
            else:
                c.show_topic(room, asked=True)

        c.with_room(room, show)


def handle_names(c: IrcState, line: Line) -> None:
    if not line.params:
        c.local(c.numeric("366", "*", "End of /NAMES list."))
        return
    room = room_named(line.params[0].split(",")[0])
    if room is None:
        c.local(c.numeric("366", line.params[0][:40], "End of /NAMES list."))
        return

    def show(rosters: dict[str, set[str]]) -> None:
        if room in c.channels:
            c.channels[room] = rosters[room]
        c.show_names(room, rosters[room])

    members_of(c, [room], show)


def handle_list(c: IrcState, line: Line) -> None:
    wanted = {r for t in line.params[0].split(",") if (r := room_named(t))} if line.params else None

    def show(reply: Reply) -> None:
        c.got_rooms(reply)
        c.responses.emit(c.numeric("321", "Channel", "Users  Name"))
        for room in reply["rooms"]:
            if wanted is None or room["name"] in wanted:
                c.responses.emit(
                    c.numeric(
                        "322",
                        "#" + room["name"],
                        str(room["members"]),  # as NAMES lists them: online or not
                        f"[+{'i' if room.get('private') else ''}nt] {room['topic']}",
                    )
                )
        c.responses.emit(c.numeric("323", "End of /LIST"))

    c.ask("rooms", show)


def handle_who(c: IrcState, line: Line) -> None:
    who_reply(c, line.params)


def handle_whois(c: IrcState, line: Line) -> None:
    name = line.params[-1].split(",")[0]
    if not USERNAME_RE.fullmatch(name):
        c.local(
            c.numeric("401", name[:40], "No such nick/channel"),
            c.numeric("318", name[:40], "End of /WHOIS list."),
        )
        return

    def got(reply: Reply) -> None:
        # Whether they are an operator where this client is not shown is
        # in the list of rooms (kept current only for the channels shown).
        if any(room not in c.channels for room in reply["user"]["rooms"]):
            c.ask("rooms", lambda rooms: show(reply, rooms), lambda _: show(reply, None))
        else:
            show(reply, None)

    def show(reply: Reply, rooms: Reply | None) -> None:
        if rooms is not None:
            c.got_rooms(rooms)
        p = reply["user"]
        nick = p["username"]
        got_profile(c, reply)
        username = c.directory.username(nick)
        c.responses.emit(c.numeric("311", nick, username, HOST, "*", c.realname_of(nick)))
        if p["rooms"]:
            listed = [r for r in p["rooms"] if r in c.rooms]  # the ones it may see
            shown = " ".join(("@" if c.is_op(r, nick) else "") + "#" + r for r in listed)
            if shown:
                c.responses.emit(c.numeric("319", nick, shown))
        c.responses.emit(c.numeric("312", nick, c.server, "Nexus"))
        away = away_text(c, nick)
        if away:
            c.responses.emit(c.numeric("301", nick, away))
        if not p["online"] and p["last_seen"]:
            seen = irc_time(p["last_seen"])
            c.responses.emit(c.numeric("320", nick, f"is offline, last seen {seen}; DMs wait"))
        if p.get("admin"):
            c.responses.emit(c.numeric("313", nick, "is a server administrator"))
        if not p.get("guest"):  # a guest has no account: no 330
            c.responses.emit(c.numeric("330", nick, nick, "is logged in as"))
        c.responses.emit(c.numeric("318", nick, "End of /WHOIS list."))

    def missing(reply: Reply) -> None:
        c.responses.emit(c.numeric("401", name, "No such nick/channel"))
        c.responses.emit(c.numeric("318", name, "End of /WHOIS list."))

    c.ask("whois", got, missing, username=name)


def handle_mode(c: IrcState, line: Line) -> None:
    target = line.params[0]
    room = room_named(target)
    if room is None:
        if target.lower() != c.nick.lower():
            c.local(c.numeric("502", "Can't change mode for other users"))
        elif len(line.params) == 1:
            c.local(c.numeric("221", "+i" if invisible(c) else "+"))
        else:
            user_mode(c, line.params[1])
        return
    if len(line.params) == 1:

        def show(info: Reply | None) -> None:
            if info is None:
                c.responses.emit(c.numeric("403", target, "No such channel"))
            else:
                private = "i" if info.get("private") else ""
                c.responses.emit(c.numeric("324", target, f"+{private}nt"))

        c.with_room(room, show)
        return
    changes = _mode_changes(line.params[1], line.params[2:])
    if changes and all(arg is None and mode in _LIST_MODES for _, mode, arg in changes):
        mode_list(c, target, room, changes[0][1])
        return
    asks = any((on, mode) in _MODE_COMMANDS and arg is not None for on, mode, arg in changes)
    refused = partial(c.room_refused, target, c.sight(room) if asks else None)
    for on, mode, arg in changes:
        if mode in "is":  # a private room is both: invite only and unlisted
            c.with_room(room, partial(privacy, c, target, room, on))
            continue
        if mode in "nt":
            c.with_room(room, partial(always, c, target, room, on, mode))
            continue
        cmd = _MODE_COMMANDS.get((on, mode))
        if cmd is None or arg is None:
            c.local(c.numeric("472", mode, "is not a mode this server changes"))
            continue
        nick = arg.split("!")[0]
        done = partial(banned, c, room, nick, on) if mode == "b" else None
        c.ask(cmd, done, refused, room=room, username=nick)


def invisible(c: IrcState) -> bool:
    return c.registration is not None and c.registration.invisible


def user_mode(c: IrcState, modes: str) -> None:
    """MODE nick +i / -i: invisible, a WHO mask lists the nick only to
    those who share a channel with it. No other user mode (501)."""
    on, changed, unknown = True, "", False
    for char in modes[:12]:
        if char in "+-":
            on = char == "+"
        elif char == "i" and c.registration is not None:
            if c.registration.invisible != on:
                c.registration.invisible = on
                changed += ("+" if on else "-") + "i"
        else:
            unknown = True
    lines = [build(c.mask(c.nick), "MODE", c.nick, changed)] if changed else []
    if unknown:
        lines.append(c.numeric("501", "Unknown MODE flag"))
    c.local(*lines)


def privacy(c: IrcState, target: str, room: str, on: bool, info: Reply | None) -> None:
    """MODE +i / -i: a room's privacy is chosen when it is created (the
    protocol has no request to change it), so an operator asking for a
    change is told so (400); setting what already holds changes nothing."""
    if info is None:
        c.responses.emit(c.numeric("403", target, "No such channel"))
    elif not c.is_op(room, c.nick):
        c.responses.emit(c.numeric("482", target, "You're not channel operator"))
    elif bool(info.get("private")) != on:
        now = "private (+i)" if not on else "public"
        c.responses.emit(
            c.numeric(
                "400",
                "MODE",
                f"{target} is {now}: a room's privacy is chosen when it is created"
                " (JOIN #room +i makes a new private one) and cannot change",
            )
        )


def always(c: IrcState, target: str, room: str, on: bool, mode: str, info: Reply | None) -> None:
    """MODE +t / +n change nothing (every channel is +nt); -t / -n are
    refused: only channel operators set a topic, and only members speak."""
    if info is None:
        c.responses.emit(c.numeric("403", target, "No such channel"))
    elif not c.is_op(room, c.nick):
        c.responses.emit(c.numeric("482", target, "You're not channel operator"))
    elif not on:
        why = _ALWAYS[mode]
        c.responses.emit(c.numeric("472", mode, f"is always set here: {why}"))


def banned(c: IrcState, room: str, nick: str, on: bool, _: Reply) -> None:
    """A ban or unban the client set, shown as the mode change IRC expects (a
    member's ban shows through its `kicked` event instead)."""
    if on and nick in c.channels.get(room, ()):
        return
    sign = "+" if on else "-"
    c.responses.emit(build(c.mask(c.nick), "MODE", "#" + room, sign + "b", f"{nick}!*@*"))


def mode_list(c: IrcState, target: str, room: str, mode: str) -> None:
    """MODE #room b / q: the bans, or the muted members (the quiet list)."""
    if mode == "b":

        def bans(reply: Reply) -> None:
            for ban in reply["bans"]:
                c.responses.emit(
                    c.numeric("367", target, f"{ban['user']}!*@*", ban["by"], str(int(ban["ts"])))
                )
            c.responses.emit(c.numeric("368", target, "End of channel ban list"))

        def not_shown(reply: Reply) -> None:
            if reply["error"]["code"] == "not_allowed":  # lists are the operators'
                c.responses.emit(c.numeric("368", target, "End of channel ban list"))
            else:
                c.failed(reply, target)

        refused = partial(c.room_refused, target, c.sight(room), told=not_shown)
        c.ask("bans", bans, refused, room=room)
    elif mode == "q":

        def quiets(info: Reply | None) -> None:
            for nick in (info or {}).get("muted", ()):
                c.responses.emit(c.numeric("728", target, "q", f"{nick}!*@*"))
            c.responses.emit(c.numeric("729", target, "q", "End of channel quiet list"))

        c.with_room(room, quiets)
    else:
        end = {"e": ("349", "exception"), "I": ("347", "invite")}.get(mode)
        if end is None:
            c.local(c.numeric("472", mode, "is not a mode this server changes"))
        else:
            c.local(c.numeric(end[0], target, f"End of channel {end[1]} list"))


def handle_kick(c: IrcState, line: Line) -> None:
    """KICK #chan nick[,nick...] [:reason], or KICK #a,#b nick1,nick2 (in
    pairs), at most TARGMAX's 4 nicks."""
    channels, nicks = line.params[0].split(","), line.params[1].split(",")[:4]
    reason = client_text(line.params[2]) if len(line.params) > 2 else ""
    if len(channels) == 1:
        pairs = [(channels[0], nick) for nick in nicks]
    elif len(channels) == len(nicks):
        pairs = list(zip(channels, nicks, strict=True))
    else:
        c.local(c.numeric("461", "KICK", "Not enough parameters"))
        return
    sights: dict[str, Sight | None] = {}
    for target, nick in pairs:
        room = room_named(target)
        if room is None:
            c.local(c.numeric("403", target[:40], "No such channel"))
            continue
        if room not in sights:
            sights[room] = c.sight(room)

        def not_theirs(reply: Reply, nick: str = nick, target: str = target) -> None:
            if reply["error"]["code"] == "not_member":
                c.responses.emit(c.numeric("441", nick, target, "They aren't on that channel"))
            else:
                c.failed(reply, target)

        refused = partial(c.room_refused, target, sights[room], told=not_theirs)
        c.ask("kick", None, refused, room=room, username=nick, reason=reason[:TOPICLEN])


def handle_invite(c: IrcState, line: Line) -> None:
    nick, target = line.params[0], line.params[1]
    room = room_named(target)
    if room is None:
        c.local(c.numeric("403", target[:40], "No such channel"))
        return

    def invited(_: Reply) -> None:
        members = {n.lower() for n in c.channels.get(room, ())}
        if nick.lower() in members:  # nothing to invite them to
            c.responses.emit(c.numeric("443", nick, target, "is already on channel"))
        else:
            c.responses.emit(c.numeric("341", nick, target))

    sight = c.sight(room)

    def refused(reply: Reply) -> None:
        if reply["error"]["code"] == "no_such_user":
            c.failed(reply, nick)
        else:
            c.room_refused(target, sight, reply)

    c.ask("invite", invited, refused, room=room, username=nick)


def handle_away(c: IrcState, line: Line) -> None:
    text = client_text(line.params[0]) if line.params else ""

    def done(_: Reply) -> None:
        if text:
            c.responses.emit(c.numeric("306", "You have been marked as being away"))
        else:
            c.responses.emit(c.numeric("305", "You are no longer marked as being away"))

    c.ask("away", done, text=text[:TOPICLEN])


def handle_privmsg(c: IrcState, line: Line, notice: bool = False) -> None:
    """PRIVMSG, and NOTICE (which no error ever answers): a message to
    each target, with what Nexus does not keep of the line (that it is a
    NOTICE, its client-only tags) noted for the IRC clients it reaches."""
    if len(line.params) < 2 or not line.params[1]:
        if not notice:
            c.local(c.numeric("412", "No text to send"))
        return
    if not line.utf8:  # UTF8ONLY: refused, never relayed mangled
        if not notice:
            why = "Message rejected: it is not valid UTF-8"
            c.local(build(c.server, "FAIL", line.command, "INVALID_UTF8", why))
        return
    text, action = line.params[1], False
    if text.startswith("\x01"):
        body = text.strip("\x01")
        if not body.upper().startswith("ACTION"):
            return  # CTCP queries (VERSION, PING...) are not messages
        text, action = body[6:].lstrip(" "), True
    text = from_irc(text)
    tags = line.tags
    reply_to = tags.get("+draft/reply")
    if tags:
        tags = {k: v for k, v in tags.items() if k.startswith("+") and k != "+draft/reply"}
    for target in line.params[0].split(",")[:4]:
        # What Nexus does not keep of the line, noted for the others (a
        # plain PRIVMSG has nothing to note).
        extras = Extras(notice, tags) if notice or tags else None
        send_to(c, target, text, action, reply_to, extras)


def send_to(
    c: IrcState, target: str, text: str, action: bool, reply_to: str | None, extras: Extras | None
) -> None:
    room = room_named(target)
    if target.startswith("#") and room is None:
        c.local(c.numeric("403", target[:40], "No such channel"))
        return
    if room is None and not USERNAME_RE.fullmatch(target):
        c.local(c.numeric("401", target[:40], "No such nick/channel"))
        return
    scope = room if room is not None else pair(c.nick, target)
    fields: dict[str, Any] = {"text": text}
    if action:
        fields["action"] = True
    seq = seq_of(reply_to) if reply_to and reply_to.rpartition(".")[0] == scope else None
    if seq is not None:
        fields["reply_to"] = seq
    sent = Sent(target.lower(), text, c.responses.label)
    c.sent.append(sent)
    if extras is not None:
        c.directory.said(scope, c.nick, text, extras)
    sight = c.sight(room) if room is not None else None

    def failed(reply: Reply) -> None:
        if sent in c.sent:
            c.sent.remove(sent)
        if extras is not None:
            c.directory.refused(extras)
            if extras.notice:  # never answered with an error
                return
        if room is not None:
            c.room_refused(target, sight, reply, partial(cannot_send, c, target))
        else:
            c.failed(reply, target)

    def done(reply: Reply) -> None:
        if sent in c.sent:  # the message never came back (not a member any more?)
            c.sent.remove(sent)
        if extras is not None:
            c.directory.stored(scope, reply["seq"], extras)
            if extras.notice:  # no automatic reply (301) to a NOTICE
                return
        if room is None and target.lower() != c.nick.lower():
            tell_away(c, target)

    if room is not None:
        c.ask("say", done, failed, room=room, **fields)
    else:
        c.ask("dm", done, failed, to=target, **fields)


def tell_away(c: IrcState, nick: str) -> None:
    """After a DM: 301 if its recipient is away (or offline: it waits for
    them), as known from a channel shared, else as `whois` tells."""
    if any(nick in nicks for nicks in c.channels.values()):
        away = away_text(c, nick)
        if away:
            c.responses.emit(c.numeric("301", nick, away))
        return

    def got(reply: Reply) -> None:
        got_profile(c, reply)
        name = reply["user"]["username"]
        away = away_text(c, name)
        if away:
            c.responses.emit(c.numeric("301", name, away))

    c.ask("whois", got, ignore, username=nick)


def cannot_send(c: IrcState, target: str, reply: Reply) -> None:
    if reply["error"]["code"] in _CANNOT_SEND:
        why = f"Cannot send to channel: {reply['error']['message']}"
        c.responses.emit(c.numeric("404", target, why))
    else:
        c.failed(reply, target)


def handle_notice(c: IrcState, line: Line) -> None:
    handle_privmsg(c, line, notice=True)


def handle_tagmsg(c: IrcState, line: Line) -> None:
    """A reaction (`+draft/react` or `+draft/unreact` with `+draft/reply`),
    or typing (`+typing`: active, else stopped)."""
    typing = line.tags.get("+typing")
    if typing is not None:
        on = typing == "active"
        c.ask("typing", None, c.failed, on=on, **address_of(c, line.params[0]))
        return
    emoji = line.tags.get("+draft/react") or line.tags.get("+draft/unreact")
    seq = seq_of(line.tags.get("+draft/reply"))
    if not emoji or seq is None:
        c.local()
        return
    on = "+draft/react" in line.tags
    target = line.params[0]
    address = address_of(c, target)
    room = address.get("room")
    mine = (room or pair(c.nick, target), seq, emoji, on)
    c.reacting.append((mine, c.responses.label))  # its echo comes back with its label

    def refused(reply: Reply) -> None:
        c.unreact(mine)
        if room is not None:
            c.room_refused(target, sight, reply, told=c.failed)
        else:
            c.failed(reply)

    sight = c.sight(room) if room is not None else None

    def done(_: Reply) -> None:
        c.unreact(mine)  # answered without coming back

    c.ask("react", done, refused, seq=seq, emoji=emoji, on=on, **address)


def handle_redact(c: IrcState, line: Line) -> None:
    seq = seq_of(line.params[1])
    if seq is None:
        c.local(
            build(
                c.server,
                "FAIL",
                "REDACT",
                "UNKNOWN_MSGID",
                line.params[1][:80],
                "No such message",
            )
        )
        return

    target, mid = line.params[0], line.params[1]
    address = address_of(c, target)
    room = address.get("room")
    sight = c.sight(room) if room is not None else None

    def refused(reply: Reply) -> None:
        err = reply["error"]
        if room is not None and (err["code"] == "no_such_room" or (sight and sight.hidden)):
            fail = ("INVALID_TARGET", target, mid, "No such channel")
        elif err["code"] == "not_allowed":
            fail = ("REDACT_FORBIDDEN", target, mid, err["message"])
        else:
            fail = ("UNKNOWN_MSGID", target, mid, err["message"])
        c.responses.emit(build(c.server, "FAIL", "REDACT", *fail))

    c.ask("erase", None, refused, seq=seq, **address)


def address_of(c: IrcState, target: str) -> dict[str, str]:
    room = room_named(target)
    return {"room": room} if room is not None else {"with": target}


def handle_chathistory(c: IrcState, line: Line) -> None:
    sub, target = line.params[0].upper(), line.params[1]
    if sub == "TARGETS":
        targets(c, line.params[1:])
        return
    room = room_named(target)
    if room is not None and room not in c.channels:  # a channel one is in, as IRC has it
        c.local(history_fail(c, "INVALID_TARGET", sub[:20], target[:40], "No such channel"))
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
        c.local(history_fail(c, "INVALID_PARAMS", sub[:20], "Invalid parameters"))
        return

    def answer(chosen: list[Reply]) -> None:
        c.replay(chosen, None if room is not None else target, batch_target=target)

    def refused(reply: Reply) -> None:
        # A room's history is refused only when there is none the account may see.
        why = "No such channel" if room is not None else reply["error"]["message"]
        c.responses.emit(history_fail(c, "INVALID_TARGET", sub, target, why))

    if room is not None:
        walk = chathistory(sub, refs, limit, ROOM_HISTORY_CAP)
        c.walk(walk, answer, refused, room=room)
    elif USERNAME_RE.fullmatch(target):
        # Reading a DM conversation marks it read up to its newest DM (as
        # `dms` does everywhere): noted from that one DM, asked first.
        c.ask("dms", partial(read_newest_dm, c), ignore, limit=1, **{"with": target})
        walk = chathistory(sub, refs, limit, DM_HISTORY_CAP)
        c.walk(walk, answer, refused, **{"with": target})
    else:
        c.local(history_fail(c, "INVALID_TARGET", sub, target[:40], "No such target"))


def history_fail(c: IrcState, code: str, *params: str) -> str:
    return build(c.server, "FAIL", "CHATHISTORY", code, *params)


def read_newest_dm(c: IrcState, reply: Reply) -> None:
    c.read_all_dms(reply["messages"])


def targets(c: IrcState, args: list[str]) -> None:
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
        c.local(history_fail(c, "INVALID_PARAMS", "TARGETS", "Invalid parameters"))
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
        lines = [build(c.server, "CHATHISTORY", "TARGETS", t, irc_time(ts)) for ts, t in chosen]
        c.responses.batched(lines, "draft/chathistory-targets")

    # Each channel's newest message (erased ones skipped), and every DM
    # conversation with the time of its newest (which reads none of them).
    for room in sorted(c.channels):
        c.walk(newest(1), partial(latest, "#" + room), ignore, room=room)
    c.ask("conversations", partners, ignore, limit=PAGE_MAX)
    c.local(then=answer)


def handle_ping(c: IrcState, line: Line) -> None:
    c.local(build(c.server, "PONG", c.server, line.params[0]))


def handle_pong(c: IrcState, line: Line) -> None:
    c.local()


def handle_quit(c: IrcState, line: Line) -> None:
    given = client_text(line.params[0])[:TOPICLEN] if line.params else ""
    if given and c.registered:
        c.directory.quitting(c.nick, given)  # the others' QUIT of a guest says it
    reason = given or "Client quit"
    c.ask("quit", lambda _: c.error(f"Quit: {reason}"[:200]))


def handle_motd(c: IrcState, line: Line) -> None:
    c.local(then=partial(send_motd, c))


def handle_version(c: IrcState, line: Line) -> None:
    c.local(
        c.numeric("351", f"nexus-{c.version}", c.server, "IRC gateway"),
        then=partial(isupport, c),
    )


def handle_ison(c: IrcState, line: Line) -> None:
    """ISON nick...: which of them are online, asked of each (not the list of
    everyone online, which costs what the server's whole population does)."""
    asked = {n.lower(): n for n in " ".join(line.params).split() if USERNAME_RE.fullmatch(n)}
    online: dict[str, str] = {}

    def got(reply: Reply) -> None:
        if reply["user"]["online"]:
            online[reply["user"]["username"].lower()] = reply["user"]["username"]

    def show() -> None:
        c.responses.emit(c.numeric("303", " ".join(online[n] for n in asked if n in online)))

    for nick in asked.values():
        c.ask("whois", got, ignore, username=nick)
    c.local(then=show)


def handle_userhost(c: IrcState, line: Line) -> None:
    """USERHOST nick...: `nick[*]=+|-user@host` for each online one (`*` a
    server admin, `-` away), asked of each as ISON does."""
    found: dict[str, str] = {}
    asked = [n for n in line.params[:5] if USERNAME_RE.fullmatch(n)]

    def got(reply: Reply) -> None:
        got_profile(c, reply)
        p = reply["user"]
        if p["online"]:
            nick = p["username"]
            oper = "*" if p.get("admin") else ""
            here = "-" if p.get("away") else "+"
            user = c.directory.username(nick)
            found[nick.lower()] = f"{nick}{oper}={here}{user}@{HOST}"

    def show() -> None:
        c.responses.emit(c.numeric("302", " ".join(found[n.lower()] for n in asked
                                                 if n.lower() in found)))  # fmt: skip

    for nick in asked:
        c.ask("whois", got, ignore, username=nick)
    c.local(then=show)


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
