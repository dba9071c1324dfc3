"""What the server tells: messages, DMs, joins and parts, topics, presence,
edits, erasures and reactions, as the lines an IRC client expects."""

from __future__ import annotations

from functools import partial

from nexus.server.irc.commands import Commands
from nexus.server.irc.history import msgid, pair
from nexus.server.irc.lines import build, split_text
from nexus.server.irc.state import Reply, Sent, ignore


class Events(Commands):
    """One method an event; `Translator` maps event names to them."""

    def _on_hello(self, event: Reply) -> None:
        self.motd = event["motd"]

    def _own(self, target: str, text: str) -> Sent | None:
        """The message this connection sent that `target`/`text` is coming back as."""
        for sent in self.sent:
            if sent.target == target and sent.text == text:
                self.sent.remove(sent)
                return sent
        return None

    def _deliver(self, m: Reply) -> None:
        me = self.nick.lower()
        if m["from"].lower() == me:
            target = "#" + m["room"] if "room" in m else m["to"].lower()
            sent = self._own(target, m["text"])
            if sent is not None:
                to_me = "room" not in m and m["to"].lower() == me  # to oneself: received too
                if "echo-message" not in self.caps and not to_me:
                    return
                lines = self._message_lines(m)
                if "echo-message" in self.caps:
                    outer, self.responses.label = self.responses.label, sent.label
                    for line in lines:
                        self.responses.emit(line)
                    self.responses.label = outer
                if to_me:
                    self.responses.lines.extend(lines)
                return
        self.responses.lines.extend(self._message_lines(m))

    def _on_message(self, event: Reply) -> None:
        if event["room"] in self.channels or event["from"].lower() == self.nick.lower():
            self._deliver(event)

    def _on_dm(self, event: Reply) -> None:
        self._log_dm(event)
        self._deliver(event)

    def _on_joined(self, event: Reply) -> None:
        room, nick = event["room"], event["user"]
        self.directory.joined(room, nick)
        if nick.lower() == self.nick.lower():
            if room not in self.channels and room not in self.joining:
                self._join_room(room, create=False)  # joined from another connection
            return
        if room in self.channels and nick not in self.channels[room]:
            if event.get("guest"):  # no account: see _account
                profile = {"username": nick, "rooms": [], "bio": ""}
                self.people.setdefault(nick.lower(), profile)["guest"] = True
            known = any(nick in nicks for nicks in self.channels.values())
            self.channels[room].add(nick)
            self.responses.lines.append(self._join_line(nick, room))
            if "away-notify" in self.caps:  # an away joiner is told away (as on any server)
                if known:
                    if self._away_text(nick):
                        self.responses.lines.append(self._away_line(nick))
                else:
                    self._ask("whois", partial(self._joined_away, nick), ignore, username=nick)

    def _joined_away(self, nick: str, reply: Reply) -> None:
        self._got_profile(reply)
        if self._away_text(nick) and any(nick in nicks for nicks in self.channels.values()):
            self.responses.emit(self._away_line(nick))

    def _on_left(self, event: Reply) -> None:
        room, nick = event["room"], event["user"]
        reason = self.directory.part_reason(room, nick)  # an IRC client's PART said why
        if nick.lower() == self.nick.lower():
            if room not in self.leaving and self._forget(room):  # left from another session
                self.responses.lines.append(self._part_line(self.nick, room, reason))
            return
        self._no_longer_moderator(room, nick)
        if room in self.channels and nick in self.channels[room]:
            self.channels[room].discard(nick)
            self.responses.lines.append(self._part_line(nick, room, reason))

    def _on_topic(self, event: Reply) -> None:
        room = event["room"]
        self.directory.topic_set(room, event["by"], event["topic"])
        if room in self.rooms:
            self.rooms[room] = {**self.rooms[room], "topic": event["topic"]}
        if room in self.channels:
            self.responses.lines.append(
                build(self._mask(event["by"]), "TOPIC", "#" + room, event["topic"])
            )

    def _on_room_deleted(self, event: Reply) -> None:
        room = event["room"]
        if self._forget(room):
            self.responses.lines.append(
                build(self._mask(self.nick), "PART", "#" + room, f"deleted by {event['by']}")
            )

    def _on_kicked(self, event: Reply) -> None:
        """A member kicked or banned out of a room; if it is this account, the
        channel is forgotten (shown or not: a join may be on its way)."""
        room, nick = event["room"], event["user"]
        if room in self.channels:
            by = self._mask(event["by"])
            if event["banned"]:
                self.responses.lines.append(build(by, "MODE", "#" + room, "+b", f"{nick}!*@*"))
            self.responses.lines.append(
                build(by, "KICK", "#" + room, nick, event["reason"] or event["by"])
            )
        if nick.lower() == self.nick.lower():
            self._forget(room)
        else:
            self._no_longer_moderator(room, nick)
            self.channels.get(room, set()).discard(nick)

    def _no_longer_moderator(self, room: str, nick: str) -> None:
        """A member who goes is a moderator no more (as the server has it), so
        the channel's RoomInfo, kept from the join, stops showing them as one."""
        info = self.rooms.get(room)
        if info is not None and info.get("moderators"):
            lower = nick.lower()
            moderators = [m for m in info["moderators"] if m.lower() != lower]
            self.rooms[room] = {**info, "moderators": moderators}

    def _on_invited(self, event: Reply) -> None:
        info = event["room"]
        self.rooms[info["name"]] = info
        self.responses.lines.append(
            build(self._mask(event["by"]), "INVITE", self.nick, "#" + info["name"])
        )

    def _on_muted(self, event: Reply) -> None:
        room, nick = event["room"], event["user"]
        info = self.rooms.get(room)
        if info is not None:  # MODE #room q answers from it
            muted = [m for m in info.get("muted", ()) if m.lower() != nick.lower()]
            if event["on"]:
                muted = sorted([*muted, nick], key=str.casefold)
            self.rooms[room] = {**info, "muted": muted}
        if room in self.channels:
            sign = "+" if event["on"] else "-"
            self.responses.lines.append(
                build(self._mask(event["by"]), "MODE", "#" + room, sign + "q", event["user"])
            )

    def _on_room_updated(self, event: Reply) -> None:
        """A member became or stopped being a moderator: +o / -o."""
        info = event["room"]
        room = info["name"]
        before = {m.lower(): m for m in self.rooms.get(room, {}).get("moderators", ())}
        after = {m.lower(): m for m in info.get("moderators", ())}
        self.rooms[room] = info
        if room not in self.channels:
            return
        by = self._mask(event["by"])
        for key in sorted(after.keys() - before.keys()):
            self.responses.lines.append(build(by, "MODE", "#" + room, "+o", after[key]))
        for key in sorted(before.keys() - after.keys()):
            self.responses.lines.append(build(by, "MODE", "#" + room, "-o", before[key]))

    def _where(self, m: Reply) -> tuple[str, str] | None:
        """Where lines about message `m` go: (target, msgid scope); None if the
        client does not see that room."""
        if "room" in m:
            if m["room"] not in self.channels:
                return None
            return "#" + m["room"], m["room"]
        other = m["to"] if m["from"].lower() == self.nick.lower() else m["from"]
        return other, pair(m["from"], m["to"])

    def _on_edited(self, event: Reply) -> None:
        m = event["message"]
        where = self._where(m)
        if where is None:
            return
        target = where[0] if "room" in m or m["from"].lower() != self.nick.lower() else m["to"]
        if "room" not in m and m["from"].lower() != self.nick.lower():
            target = self.nick
        tags = self._tags(m.get("edited"), m["from"])
        if "message-tags" in self.caps:
            tags["+draft/reply"] = msgid(where[1], m["seq"])
        for piece in split_text("(edited) " + m["text"], 400):
            self.responses.lines.append(
                build(self._mask(m["from"]), "NOTICE", target, piece, tags=tags)
            )

    def _on_erased(self, event: Reply) -> None:
        m = event["message"]
        where = self._where(m)
        if where is None:
            return
        mid = msgid(where[1], m["seq"])
        if "draft/message-redaction" in self.caps:
            target = (
                where[0]
                if "room" in m
                else (m["to"] if m["from"].lower() == self.nick.lower() else self.nick)
            )
            self.responses.lines.append(build(self._mask(m["from"]), "REDACT", target, mid))
        else:
            target = where[0] if "room" in m else self.nick
            self.responses.lines.append(
                build(self.server, "NOTICE", target, f"a message from {m['from']} was erased")
            )

    def _on_reaction(self, event: Reply) -> None:
        m = event["message"]
        where = self._where(m)
        if where is None:
            return
        who = event["user"]
        if "room" in m:
            target = where[0]
        else:
            target = self.nick if who.lower() != self.nick.lower() else where[0]
        label = self.responses.label  # none: an event's lines are told as they come
        if who.lower() == self.nick.lower():  # its own TAGMSG: echoed with its label
            mine = self._unreact((where[1], m["seq"], event["emoji"], event["on"]))
            if mine is not None:
                if "echo-message" not in self.caps:
                    return
                label = mine[1]
        if "message-tags" in self.caps:
            tags = self._tags(None, who)
            tags["+draft/react" if event["on"] else "+draft/unreact"] = event["emoji"]
            tags["+draft/reply"] = msgid(where[1], m["seq"])
            outer, self.responses.label = self.responses.label, label
            self.responses.emit(build(self._mask(who), "TAGMSG", target, tags=tags))
            self.responses.label = outer
            return
        quoted = m["text"] if len(m["text"]) <= 60 else m["text"][:57] + "..."
        verb = "reacted" if event["on"] else "took back"
        text = f"{verb} {event['emoji']} to {m['from']}: {quoted}"
        self.responses.lines.append(build(self._mask(who), "NOTICE", target, text))
