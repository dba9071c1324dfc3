"""What the server tells: messages, DMs, joins and parts, topics, presence,
edits, erasures and reactions, as the lines an IRC client expects. Each
event is a function of the connection's state and the event (`on_<event>`),
which the translator's table names."""

from __future__ import annotations

from functools import partial

from nexus.server.irc.commands import join_room
from nexus.server.irc.history import msgid, pair
from nexus.server.irc.lines import build, split_text
from nexus.server.irc.members import away_line, away_text, got_profile
from nexus.server.irc.state import IrcState, Reply, Sent, ignore


def on_hello(c: IrcState, event: Reply) -> None:
    c.motd = event["motd"]
    files = event.get("files")
    if files is not None:
        c.files_url = files["url"]


def own(c: IrcState, target: str, text: str) -> Sent | None:
    """The message this connection sent that `target`/`text` is coming back as."""
    for sent in c.sent:
        if sent.target == target and sent.text == text:
            c.sent.remove(sent)
            return sent
    return None


def deliver(c: IrcState, m: Reply) -> None:
    me = c.nick.lower()
    if m["from"].lower() == me:
        target = "#" + m["room"] if "room" in m else m["to"].lower()
        sent = own(c, target, m["text"])
        if sent is not None:
            to_me = "room" not in m and m["to"].lower() == me  # to oneself: received too
            if "echo-message" not in c.caps and not to_me:
                return
            lines = c.message_lines(m)
            if "echo-message" in c.caps:
                outer, c.responses.label = c.responses.label, sent.label
                for line in lines:
                    c.responses.emit(line)
                c.responses.label = outer
            if to_me:
                c.responses.lines.extend(lines)
            return
    c.responses.lines.extend(c.message_lines(m))


def on_message(c: IrcState, event: Reply) -> None:
    if event["room"] in c.channels or event["from"].lower() == c.nick.lower():
        deliver(c, event)


def on_dm(c: IrcState, event: Reply) -> None:
    c.log_dm(event)
    deliver(c, event)


def on_joined(c: IrcState, event: Reply) -> None:
    room, nick = event["room"], event["user"]
    c.directory.joined(room, nick)
    if nick.lower() == c.nick.lower():
        if room not in c.channels and room not in c.joining:
            join_room(c, room, create=False)  # joined from another connection
        return
    if room in c.channels and nick not in c.channels[room]:
        if event.get("guest"):  # no account: see _account
            profile = {"username": nick, "rooms": [], "bio": ""}
            c.people.setdefault(nick.lower(), profile)["guest"] = True
        known = any(nick in nicks for nicks in c.channels.values())
        c.channels[room].add(nick)
        c.responses.lines.append(c.join_line(nick, room))
        if "away-notify" in c.caps:  # an away joiner is told away (as on any server)
            if known:
                if away_text(c, nick):
                    c.responses.lines.append(away_line(c, nick))
            else:
                c.ask("whois", partial(joined_away, c, nick), ignore, username=nick)


def joined_away(c: IrcState, nick: str, reply: Reply) -> None:
    got_profile(c, reply)
    if away_text(c, nick) and any(nick in nicks for nicks in c.channels.values()):
        c.responses.emit(away_line(c, nick))


def on_left(c: IrcState, event: Reply) -> None:
    room, nick = event["room"], event["user"]
    reason = c.directory.part_reason(room, nick)  # an IRC client's PART said why
    if nick.lower() == c.nick.lower():
        if room not in c.leaving and c.forget(room):  # left from another session
            c.responses.lines.append(c.part_line(c.nick, room, reason))
        return
    no_longer_moderator(c, room, nick)
    if room in c.channels and nick in c.channels[room]:
        c.channels[room].discard(nick)
        c.responses.lines.append(c.part_line(nick, room, reason))


def on_topic(c: IrcState, event: Reply) -> None:
    room = event["room"]
    c.directory.topic_set(room, event["by"], event["topic"])
    if room in c.rooms:
        c.rooms[room] = {**c.rooms[room], "topic": event["topic"]}
    if room in c.channels:
        c.responses.lines.append(build(c.mask(event["by"]), "TOPIC", "#" + room, event["topic"]))


def on_room_deleted(c: IrcState, event: Reply) -> None:
    room = event["room"]
    if c.forget(room):
        c.responses.lines.append(
            build(c.mask(c.nick), "PART", "#" + room, f"deleted by {event['by']}")
        )


def on_kicked(c: IrcState, event: Reply) -> None:
    """A member kicked or banned out of a room; if it is this account, the
    channel is forgotten (shown or not: a join may be on its way)."""
    room, nick = event["room"], event["user"]
    if room in c.channels:
        by = c.mask(event["by"])
        if event["banned"]:
            c.responses.lines.append(build(by, "MODE", "#" + room, "+b", f"{nick}!*@*"))
        c.responses.lines.append(
            build(by, "KICK", "#" + room, nick, event["reason"] or event["by"])
        )
    if nick.lower() == c.nick.lower():
        c.forget(room)
    else:
        no_longer_moderator(c, room, nick)
        c.channels.get(room, set()).discard(nick)


def no_longer_moderator(c: IrcState, room: str, nick: str) -> None:
    """A member who goes is a moderator no more (as the server has it), so
    the channel's RoomInfo, kept from the join, stops showing them as one."""
    info = c.rooms.get(room)
    if info is not None and info.get("moderators"):
        lower = nick.lower()
        moderators = [m for m in info["moderators"] if m.lower() != lower]
        c.rooms[room] = {**info, "moderators": moderators}


def on_invited(c: IrcState, event: Reply) -> None:
    info = event["room"]
    c.rooms[info["name"]] = info
    c.responses.lines.append(build(c.mask(event["by"]), "INVITE", c.nick, "#" + info["name"]))


def on_muted(c: IrcState, event: Reply) -> None:
    room, nick = event["room"], event["user"]
    info = c.rooms.get(room)
    if info is not None:  # MODE #room q answers from it
        muted = [m for m in info.get("muted", ()) if m.lower() != nick.lower()]
        if event["on"]:
            muted = sorted([*muted, nick], key=str.casefold)
        c.rooms[room] = {**info, "muted": muted}
    if room in c.channels:
        sign = "+" if event["on"] else "-"
        c.responses.lines.append(
            build(c.mask(event["by"]), "MODE", "#" + room, sign + "q", event["user"])
        )


def on_room_updated(c: IrcState, event: Reply) -> None:
    """A member became or stopped being a moderator: +o / -o."""
    info = event["room"]
    room = info["name"]
    before = {m.lower(): m for m in c.rooms.get(room, {}).get("moderators", ())}
    after = {m.lower(): m for m in info.get("moderators", ())}
    c.rooms[room] = info
    if room not in c.channels:
        return
    by = c.mask(event["by"])
    for key in sorted(after.keys() - before.keys()):
        c.responses.lines.append(build(by, "MODE", "#" + room, "+o", after[key]))
    for key in sorted(before.keys() - after.keys()):
        c.responses.lines.append(build(by, "MODE", "#" + room, "-o", before[key]))


def shown_where(c: IrcState, m: Reply) -> tuple[str, str] | None:
    """Where lines about message `m` go: (target, msgid scope); None if the
    client does not see that room."""
    if "room" in m:
        if m["room"] not in c.channels:
            return None
        return "#" + m["room"], m["room"]
    other = m["to"] if m["from"].lower() == c.nick.lower() else m["from"]
    return other, pair(m["from"], m["to"])


def on_edited(c: IrcState, event: Reply) -> None:
    m = event["message"]
    where = shown_where(c, m)
    if where is None:
        return
    target = where[0] if "room" in m or m["from"].lower() != c.nick.lower() else m["to"]
    if "room" not in m and m["from"].lower() != c.nick.lower():
        target = c.nick
    tags = c.tags(m.get("edited"), m["from"])
    if "message-tags" in c.caps:
        tags["+draft/reply"] = msgid(where[1], m["seq"])
    for piece in split_text("(edited) " + m["text"], 400):
        c.responses.lines.append(build(c.mask(m["from"]), "NOTICE", target, piece, tags=tags))


def on_erased(c: IrcState, event: Reply) -> None:
    m = event["message"]
    where = shown_where(c, m)
    if where is None:
        return
    mid = msgid(where[1], m["seq"])
    if "draft/message-redaction" in c.caps:
        target = (
            where[0]
            if "room" in m
            else (m["to"] if m["from"].lower() == c.nick.lower() else c.nick)
        )
        c.responses.lines.append(build(c.mask(m["from"]), "REDACT", target, mid))
    else:
        target = where[0] if "room" in m else c.nick
        c.responses.lines.append(
            build(c.server, "NOTICE", target, f"a message from {m['from']} was erased")
        )


def on_reaction(c: IrcState, event: Reply) -> None:
    m = event["message"]
    where = shown_where(c, m)
    if where is None:
        return
    who = event["user"]
    own_dm = "room" not in m and who.lower() != c.nick.lower()  # a DM to this client
    target = c.nick if own_dm else where[0]
    label = c.responses.label  # none: an event's lines are told as they come
    if who.lower() == c.nick.lower():  # its own TAGMSG: echoed with its label
        mine = c.unreact((where[1], m["seq"], event["emoji"], event["on"]))
        if mine is not None:
            if "echo-message" not in c.caps:
                return
            label = mine[1]
    if "message-tags" in c.caps:
        tags = c.tags(None, who)
        tags["+draft/react" if event["on"] else "+draft/unreact"] = event["emoji"]
        tags["+draft/reply"] = msgid(where[1], m["seq"])
        outer, c.responses.label = c.responses.label, label
        c.responses.emit(build(c.mask(who), "TAGMSG", target, tags=tags))
        c.responses.label = outer
        return
    quoted = m["text"] if len(m["text"]) <= 60 else m["text"][:57] + "..."
    verb = "reacted" if event["on"] else "took back"
    text = f"{verb} {event['emoji']} to {m['from']}: {quoted}"
    c.responses.lines.append(build(c.mask(who), "NOTICE", target, text))


def on_typing(c: IrcState, event: Reply) -> None:
    """Someone types (IRCv3 `+typing`): a TAGMSG for clients that take tags;
    plain clients are told nothing."""
    if "message-tags" not in c.caps:
        return
    room = event.get("room")
    if room is not None and room not in c.channels:
        return
    target = "#" + room if room is not None else c.nick
    tags = {"+typing": "active" if event["on"] else "done"}
    c.responses.lines.append(build(c.mask(event["user"]), "TAGMSG", target, tags=tags))


def on_pinned(c: IrcState, event: Reply) -> None:
    """A pin is a notice in its channel: IRC has no pins (`#room/seq` is how
    Nexus names a message, which nexus-chat and the page open)."""
    room = event["room"]
    if room not in c.channels:
        return
    verb = "pinned" if event["on"] else "unpinned"
    text = f"{event['by']} {verb} #{room}/{event['seq']}"
    c.responses.lines.append(build(c.server, "NOTICE", "#" + room, text))
