"""Who is in a channel: every member of the room, online or not.

A Nexus member stays a member while offline (messages wait for them), as
Ergo's always-on clients do, so NAMES and WHO list every member and an
offline one is shown away (WHO `G`, WHOIS 301 "offline", an `away-notify`
AWAY when they go or come back) instead of leaving with QUIT and coming
back with JOIN: irssi and WeeChat drop a nick from the nick list on QUIT,
and a JOIN for every member who reconnects is noise in every shared
channel. JOIN and PART stay for joining and leaving the room itself.

The protocol tells a room's member count but not its names, so the members
are learnt from what a member may ask: who is online and in which rooms
(`online`); the room's owner, moderators and muted members (RoomInfo); the
authors of its stored messages (`history`); each offline one of them
confirmed with `whois`. A member who is offline and never wrote one of the
stored messages shows once they come online (a JOIN: the client did not
know them yet).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from nexus.protocol import USERNAME_RE
from nexus.server.irc.lines import build
from nexus.server.irc.numerics import HISTORY_MAX, HOST, SERVER
from nexus.server.irc.state import IrcState, Reply, ignore, room_named

Rosters = dict[str, set[str]]  # room -> its members' names


OFFLINE = "offline"  # the away text of a member with no session (WHOIS 301, AWAY)


# WHOX fields in the order a 354 reply gives them (https://modern.ircdocs.horse/#who-message).
_WHOX_ORDER = "tcuihsnfdlaor"


class Members(IrcState):
    """Learning and showing channel members, and WHO."""

    def _learn_members(
        self,
        rooms: list[str],
        then: Callable[[Rosters, dict[str, list[Reply]]], None],
    ) -> None:
        """Finds every member of `rooms` it can (see the module), then calls
        `then` with each room's members and the room history it read."""
        fresh: set[str] = set()  # whose profile was read for this answer
        histories: dict[str, list[Reply]] = {}

        def got_online(reply: Reply) -> None:
            self.admins.clear()
            shared = {*rooms, *self.channels}
            for profile in reply["users"]:
                key = profile["username"].lower()
                if profile.get("admin"):
                    self.admins.add(key)
                # The reply lists everyone online: keep those these channels show.
                if shared.intersection(profile["rooms"]):
                    self.people[key] = profile
                    fresh.add(key)

        def got_history(room: str, reply: Reply) -> None:
            histories[room] = reply["messages"]

        def confirm() -> None:
            """Asks about the candidates not seen online: offline, or no longer members."""
            candidates: dict[str, str] = {}
            for room in rooms:
                info = self.rooms.get(room, {})
                names = [m["from"] for m in histories.get(room, ())]
                names += [info.get("owner") or "", *info.get("moderators", ())]
                names += [*info.get("muted", ()), *self.channels.get(room, ())]
                for name in names:
                    if name and name.lower() not in fresh:
                        candidates.setdefault(name.lower(), name)
            for key in sorted(candidates):
                self._ask("whois", partial(confirmed, key), ignore, username=candidates[key])
            self._local(then=finish)

        def confirmed(key: str, reply: Reply) -> None:
            self._got_profile(reply)
            fresh.add(key)

        def finish() -> None:
            rosters: Rosters = {room: {self.nick} for room in rooms}
            for key in fresh - {self.nick.lower()}:
                profile = self.people[key]
                for room in profile["rooms"]:
                    if room in rosters:
                        rosters[room].add(profile["username"])
            then(rosters, histories)
            shown = {nick.lower() for nicks in self.channels.values() for nick in nicks}
            self.people = {key: p for key, p in self.people.items() if key in shown}

        self._ask("online", got_online)
        for room in rooms:
            self._ask("history", partial(got_history, room), ignore, room=room, limit=HISTORY_MAX)
        self._local(then=confirm)

    def _got_profile(self, reply: Reply) -> None:
        profile = reply["user"]
        key = profile["username"].lower()
        self.people[key] = profile
        if profile.get("admin"):
            self.admins.add(key)  # an operator everywhere, online or not
        else:
            self.admins.discard(key)

    def _away_text(self, nick: str) -> str | None:
        """What `nick` is away with: their away text, "offline" with no session."""
        profile = self.people.get(nick.lower())
        if profile is None:
            return None
        away = profile.get("away")
        if not profile["online"]:
            return f"{OFFLINE}: {away}" if away else OFFLINE
        return away or None

    def _away_line(self, nick: str) -> str:
        """The `away-notify` line telling where `nick` is now."""
        text = self._away_text(nick)
        params = (text,) if text else ()
        return build(self._mask(nick), "AWAY", *params, tags=self._tags(account=nick))

    def _flags(self, nick: str, room: str | None) -> str:
        """WHO flags: H here or G gone (away or offline), * a server admin, @ an operator."""
        flags = "G" if self._away_text(nick) else "H"
        if nick.lower() in self.admins:
            flags += "*"
        if room is not None and self._is_op(room, nick):
            flags += "@"
        return flags

    def _who(self, line_params: list[str]) -> None:
        """WHO <#channel|nick> [%fields[,token]]: 352 lines, or 354 with WHOX."""
        mask = line_params[0]
        whox = whox_spec(line_params[1]) if len(line_params) > 1 else None
        room = room_named(mask)

        def end() -> None:
            self._emit(self._numeric("315", mask[:40], "End of /WHO list."))

        def by_room(rosters: Rosters, _: dict[str, list[Reply]]) -> None:
            assert room is not None
            members = rosters[room]
            if room not in self.channels:
                members.discard(self.nick)  # not a member: only who is
            for nick in sorted(members, key=str.lower):
                self._emit(self._who_row(nick, room, whox))
            end()

        def by_nick(reply: Reply) -> None:
            self._got_profile(reply)
            self._emit(self._who_row(reply["user"]["username"], None, whox))
            end()

        if room is not None:
            self._learn_members([room], by_room)
        elif USERNAME_RE.fullmatch(mask):
            self._ask("whois", by_nick, lambda _: end(), username=mask)
        else:
            self._local(then=end)

    def _who_row(self, nick: str, room: str | None, whox: tuple[str, str] | None) -> str:
        profile = self.people.get(nick.lower(), {})
        realname = profile.get("bio") or nick
        channel = "#" + room if room is not None else "*"
        flags = self._flags(nick, room)
        if whox is None:
            return self._numeric("352", channel, nick, HOST, SERVER, nick, flags, f"0 {realname}")
        fields, token = whox
        values = {
            "t": token,
            "c": channel,
            "u": nick,
            "i": "255.255.255.255",
            "h": HOST,
            "s": SERVER,
            "n": nick,
            "f": flags,
            "d": "0",
            "l": "0",
            "a": nick,
            "o": "*",
            "r": realname,
        }
        return self._numeric("354", *(values[field] for field in _WHOX_ORDER if field in fields))

    def _came_online(self, reply: Reply) -> None:
        """A member the client did not know of came online: it joins their channels."""
        self._got_profile(reply)
        profile = reply["user"]
        nick = profile["username"]
        joined = False
        for room in profile["rooms"]:
            if room in self.channels and nick not in self.channels[room]:
                self.channels[room].add(nick)
                self._emit(self._join_line(nick, room))
                joined = True
        if joined and profile.get("away") and "away-notify" in self.caps:
            self._emit(self._away_line(nick))

    def _on_presence(self, event: Reply) -> None:
        """A member came, went or changed their away text: an AWAY line for
        `away-notify` clients where the nick is shown (they stay members)."""
        nick = event["user"]
        key = nick.lower()
        if key == self.nick.lower():
            return
        shown = any(nick in nicks for nicks in self.channels.values())
        if not shown:
            if event["online"]:
                self._ask("whois", self._came_online, ignore, username=nick)
            return
        before = self._away_text(nick)
        profile = self.people.get(key)
        if profile is None:
            profile = self.people[key] = {"username": nick, "rooms": [], "bio": ""}
        profile.update(online=event["online"], away=event.get("away"))
        if "away-notify" in self.caps and self._away_text(nick) != before:
            self.out.append(self._away_line(nick))


def whox_spec(spec: str) -> tuple[str, str] | None:
    """'%tcuhnfar,743' -> ('tcuhnfar', '743'); None for a WHO without WHOX."""
    if "%" not in spec:
        return None
    fields, _, token = spec.partition("%")[2].partition(",")
    if not (token.isdigit() and len(token) <= 3):
        token = "0"
    return "".join(f for f in fields.lower() if f in _WHOX_ORDER), token
