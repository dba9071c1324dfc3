"""The translator without sockets: client lines in, request frames out; frames in,
IRC lines out. What a line asks and when its answer is said."""

from __future__ import annotations

import base64
from collections.abc import Collection
from itertools import pairwise
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from nexus.server.frames import Frame
from nexus.server.irc.history import (
    chathistory,
    irc_time,
    latest_between,
    ms,
    read_up_to,
    ref_key,
)
from nexus.server.irc.members import whox_spec
from nexus.server.irc.translator import Translator
from nexus.server.outbox import Broadcast, View


def requests(t: Translator) -> list[dict[str, Any]]:
    return t.take_requests()


def answer(t: Translator, frame: dict[str, Any]) -> list[str]:
    t.server_event(frame)
    return t.take_output().decode().splitlines()


def login_reply(rid: int, name: str = "ana") -> dict[str, Any]:
    return {
        "id": rid,
        "ok": True,
        "user": {"username": name},
        "rooms": ["general"],
        "unread": {"dms": {}},
    }


def test_every_line_is_a_request_the_core_counts() -> None:
    """Lines that ask the server nothing still become one `ping` each, so the core
    counts them against the login budget and answers them in order."""
    t = Translator("1.0")
    for line in (b"CAP LS 302", b"NICK ana", b"USER ana 0 * :A", b"PING :x", b"BOGUS"):
        t.client_line(line)
    frames = requests(t)
    assert [f["cmd"] for f in frames] == ["ping"] * 5
    assert len({f["id"] for f in frames}) == 5


def test_local_answers_wait_for_the_requests_before_them() -> None:
    """A PONG is said only when its `ping` is answered, after earlier replies."""
    t = Translator("1.0")
    t.client_line(b"PING :first")
    t.client_line(b"PING :second")
    first, second = requests(t)
    assert t.take_output() == b""
    assert answer(t, {"id": first["id"], "ok": True, "ts": 1.0}) == [":nexus PONG nexus first"]
    assert answer(t, {"id": second["id"], "ok": True, "ts": 1.0}) == [":nexus PONG nexus second"]


def test_sasl_plain_sends_a_login_and_answers_900_903() -> None:
    """AUTHENTICATE with PLAIN credentials asks `login`; its reply says 900 and 903."""
    t = Translator("1.0")
    creds = base64.b64encode(b"\0ana\0secret words").decode()
    for line in (b"CAP LS 302", b"CAP REQ :sasl", b"AUTHENTICATE PLAIN", creds.encode()):
        t.client_line(line if line != creds.encode() else b"AUTHENTICATE " + line)
    frames = requests(t)
    login = frames[-1]
    assert login["cmd"] == "login" and login["username"] == "ana"
    assert login["password"] == "secret words"
    for frame in frames[:-1]:
        answer(t, {"id": frame["id"], "ok": True, "ts": 1.0})
    lines = answer(t, login_reply(login["id"]))
    assert [line.split()[1] for line in lines] == ["900", "903"]


def test_bad_sasl_payload_fails_without_asking() -> None:
    """A payload that is not base64 of three NUL-separated parts answers 904 only."""
    t = Translator("1.0")
    t.client_line(b"AUTHENTICATE PLAIN")
    t.client_line(b"AUTHENTICATE !!notbase64")
    frames = requests(t)
    assert [f["cmd"] for f in frames] == ["ping", "ping"]
    answer(t, {"id": frames[0]["id"], "ok": True, "ts": 1})
    assert " 904 " in answer(t, {"id": frames[1]["id"], "ok": True, "ts": 1})[0]


def test_privmsg_to_a_channel_and_a_nick() -> None:
    """PRIVMSG #room asks `say`, PRIVMSG nick asks `dm`, CTCP ACTION sets action,
    and bold becomes the protocol's `**`."""
    t = registered()
    t.client_line(b"PRIVMSG #General,bob :\x02hi\x02")
    t.client_line(b"PRIVMSG #general :\x01ACTION waves\x01")
    say, dm, action = requests(t)
    assert (say["cmd"], say["room"], say["text"]) == ("say", "general", "**hi**")
    assert (dm["cmd"], dm["to"], dm["text"]) == ("dm", "bob", "**hi**")
    assert action["action"] is True and action["text"] == "waves"


def test_own_message_is_suppressed_without_echo_message() -> None:
    """The event of a message this connection said is not shown back without
    echo-message; the same text from another session of the account is."""
    t = registered()
    t.client_line(b"PRIVMSG #general :mine")
    (say,) = requests(t)
    event = {"event": "message", "room": "general", "seq": 1, "from": "ana", "text": "mine",
             "ts": 1.0}  # fmt: skip
    assert answer(t, event) == []
    assert answer(t, {"id": say["id"], "ok": True, "seq": 1, "ts": 1.0}) == []
    assert answer(t, {**event, "seq": 2}) == [":ana!~ana@nexus PRIVMSG #general :mine"]


def test_labeled_reply_carries_the_label() -> None:
    """With labeled-response, the one line answering a labeled command has the label."""
    t = registered(caps=b"labeled-response batch")
    t.client_line(b"@label=x1 PING :tok")
    (ping,) = requests(t)
    assert answer(t, {"id": ping["id"], "ok": True, "ts": 1}) == ["@label=x1 :nexus PONG nexus tok"]


def test_refusal_outside_any_request_becomes_error() -> None:
    """An `error` frame without an id (login timed out) becomes ERROR."""
    t = Translator("1.0")
    lines = answer(
        t, {"ok": False, "error": {"code": "auth_required", "message": "login timed out"}}
    )
    assert lines == ["ERROR :Closing link: login timed out"]


Messages = list[dict[str, Any]]


def paged(walk: Any, stored: Messages) -> tuple[Any, int, int]:
    """Runs a history walk against `stored` (consecutive seqs, oldest first)
    paged as the server pages it (History.page): what the walk returns, the
    pages it asked and the messages they held."""
    asked = read = 0
    try:
        page = next(walk)
        while True:
            limit, before = page
            assert 1 <= limit <= 500, page
            first = stored[0]["seq"] if stored else 0
            end = len(stored) if before is None else max(0, min(len(stored), before - first))
            start = max(0, end - limit)
            asked, read = asked + 1, read + end - start
            page = walk.send((stored[start:end], start > 0))
    except StopIteration as stop:
        return stop.value, asked, read


def selected(sub: str, refs: list[str], limit: int, stored: Messages) -> Messages:
    """What CHATHISTORY selects, read from the whole history at once."""
    shown = [m for m in stored if not m.get("erased")]

    def before(key: Any, m: dict[str, Any]) -> bool:
        if key is None:
            return True
        return m["seq"] < key[1] if key[0] == "seq" else ms(m["ts"]) < key[1]

    def after(key: Any, m: dict[str, Any]) -> bool:
        if key is None:
            return False
        return m["seq"] > key[1] if key[0] == "seq" else ms(m["ts"]) > key[1]

    keys = [ref_key(ref) for ref in refs]
    if limit <= 0:
        return []
    if sub == "LATEST":
        return [m for m in shown if keys[0] is None or after(keys[0], m)][-limit:]
    if sub == "BEFORE":
        return [m for m in shown if before(keys[0], m)][-limit:]
    if sub == "AFTER":
        return [m for m in shown if after(keys[0], m)][:limit]
    if sub == "AROUND":
        half = limit // 2
        earlier = [m for m in shown if before(keys[0], m)][-half:] if half else []
        return earlier + [m for m in shown if not before(keys[0], m)][: limit - len(earlier)]
    one, other = (sum(before(key, m) for m in shown) for key in keys)
    low, high = (keys[0], keys[1]) if one <= other else (keys[1], keys[0])
    between = [m for m in shown if after(low, m) and before(high, m)]
    return between[:limit] if one <= other else between[-limit:]


def history(
    count: int, first: int = 1, erased: Collection[int] = (), every: int = 1000
) -> Messages:
    """`count` stored messages from seq `first`, one each `every` ms (so
    several may share a millisecond), those in `erased` erased."""
    return [
        {"seq": seq, "ts": seq * every / 1000 + 0.0004, "from": "bob", "erased": seq in erased}
        for seq in range(first, first + count)
    ]


def test_chathistory_walks_select_like_chathistory_and_read_a_page() -> None:
    """LATEST, BEFORE, AFTER, AROUND and BETWEEN pick the right messages, oldest
    first, and read about as many as they pick (by time: and a search)."""
    stored = history(100, erased={50})

    def walked(sub: str, refs: list[str], limit: int) -> tuple[list[int], int]:
        found, _, read = paged(chathistory(sub, refs, limit, 500), stored)
        assert found == selected(sub, refs, limit, stored)
        return [m["seq"] for m in found], read

    assert walked("LATEST", ["*"], 3) == ([98, 99, 100], 3)
    assert walked("LATEST", ["msgid=g.98"], 5) == ([99, 100], 2)
    assert walked("LATEST", ["msgid=g.100"], 5) == ([], 1)
    assert walked("BEFORE", ["msgid=g.4"], 5) == ([1, 2, 3], 3)
    assert walked("BEFORE", ["msgid=g.52"], 2) == ([49, 51], 2 + 2)  # 50 is erased
    assert walked("AFTER", ["timestamp=1970-01-01T00:00:07.000Z"], 5)[0] == [8, 9, 10, 11, 12]
    assert walked("AROUND", ["msgid=g.5"], 4) == ([3, 4, 5, 6], 2 + 1 + 2)  # the newest too
    assert walked("BETWEEN", ["msgid=g.2", "msgid=g.6"], 10) == ([3, 4, 5], 1 + 3)
    assert walked("BETWEEN", ["msgid=g.60", "msgid=g.2"], 2) == ([58, 59], 2)
    assert walked("BETWEEN", ["msgid=g.600", "msgid=g.98"], 5) == ([99, 100], 1 + 1)
    seqs, read = walked("BEFORE", ["timestamp=1970-01-01T00:01:00.000Z"], 1)
    assert seqs == [59] and read <= 1 + 8  # a search of 100 messages, then one
    assert walked("LATEST", ["*"], 0) == ([], 0)


_REFS = st.one_of(
    st.just("*"),
    st.integers(0, 130).map(lambda seq: f"msgid=g.{seq}"),
    st.integers(0, 130_000).map(lambda at: "timestamp=" + irc_time(at / 1000)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"]),
    st.lists(_REFS, min_size=2, max_size=2),
    st.integers(0, 30),
    st.integers(0, 60),
    st.integers(1, 40),
    st.sets(st.integers(1, 100), max_size=20),
    st.sampled_from([1, 300, 1000]),
)
def test_chathistory_walks_select_what_the_whole_history_would(
    sub: str,
    refs: list[str],
    limit: int,
    count: int,
    first: int,
    erased: set[int],
    every: int,
) -> None:
    """Whatever the history (trimmed to its last 40, erased messages, several in
    one millisecond) and the request, a walk selects what reading the whole
    history would, and reads in proportion: what it returns and the erased
    messages in its way, twice over at most, and about log2(40) probes a search."""
    cap = 40
    stored = history(min(count, cap), first + max(0, count - cap), erased, every)
    refs = refs if sub == "BETWEEN" else refs[:1]
    found, _, read = paged(chathistory(sub, refs, limit, cap), stored)
    assert found == selected(sub, refs, limit, stored)
    skipped = sum(1 for m in stored if m["erased"])
    assert read <= 2 * (len(found) + skipped) + 3 * (6 + 2) + 2


def test_targets_reads_the_newest_message_of_a_window_that_ends_after_it() -> None:
    """The latest message in a TARGETS window: the newest one when the window ends
    after it (one message read); otherwise found by a search; erased ones skipped."""
    stored = history(100, erased={100, 99})
    assert paged(latest_between(0, 10**9, 500), stored)[::2] == (98.0004, 1 + 3)
    assert paged(latest_between(97_999, 10**9, 500), stored)[::2] == (98.0004, 4)
    assert paged(latest_between(98_000, 10**9, 500), stored)[0] is None
    found, asked, _ = paged(latest_between(0, 50_000, 500), stored)
    assert found == 49.0004 and asked <= 9
    assert paged(latest_between(0, 10**9, 500), [])[0] is None


def test_read_up_to_is_the_message_before_the_first_unread_one() -> None:
    """The marker's time: the message before the first one after the marker that
    the server counts unread (neither the reader's own nor erased), else the
    newest; None when that one is not stored."""
    stored = [
        {"seq": 1, "ts": 1.0, "from": "bob"},
        {"seq": 2, "ts": 2.0, "from": "bob"},
        {"seq": 3, "ts": 3.0, "from": "Ana"},
        {"seq": 4, "ts": 4.0, "from": "bob", "erased": True},
        {"seq": 5, "ts": 5.0, "from": "bob"},
    ]
    assert paged(read_up_to(5, "ana", 500), stored)[0] == 5.0
    assert paged(read_up_to(2, "ana", 500), stored)[0] == 4.0
    assert paged(read_up_to(1, "ana", 500), stored)[0] == 1.0
    assert paged(read_up_to(0, "ana", 500), stored)[0] is None
    assert paged(read_up_to(0, "ana", 500), [])[0] is None
    trimmed = history(40, first=61)
    found, _, read = paged(read_up_to(3, "ana", 40), trimmed)
    assert found is None and read <= 4
    assert paged(read_up_to(70, "ana", 40), trimmed)[0] == 70.0004


def registered(caps: bytes = b"", name: str = "ana", welcomed: bytes = b"") -> Translator:
    """A translator past registration as `name`, its requests answered; the
    client line `welcomed`, if given, said as soon as it is welcomed, before
    the rest of its requests are answered."""
    t = Translator("1.0")
    if caps:
        t.client_line(b"CAP REQ :" + caps)
        t.client_line(b"CAP END")
    t.client_line(f"PASS :{name}:secret words".encode())
    t.client_line(f"NICK {name}".encode())
    t.client_line(f"USER {name} 0 * :A".encode())
    pending = requests(t)
    while pending:
        frame = pending.pop(0)
        if frame["cmd"] == "login":
            answer(t, login_reply(frame["id"], name))
        elif frame["cmd"] == "join":
            answer(t, {"id": frame["id"], "ok": True, "room": {"name": frame["room"], "topic": ""}})
        elif frame["cmd"] == "rooms":
            answer(t, {"id": frame["id"], "ok": True, "rooms": []})
        elif frame["cmd"] == "members":
            answer(t, {"id": frame["id"], "ok": True, "members": []})
        elif frame["cmd"] == "history":
            answer(t, {"id": frame["id"], "ok": True, "messages": [], "more": False})
        elif frame["cmd"] == "read":
            answer(t, {"id": frame["id"], "ok": True, "seq": 0})
        else:
            answer(t, {"id": frame["id"], "ok": True, "ts": 1.0})
        if welcomed and t.registered:
            t.client_line(welcomed)
            welcomed = b""
        pending += requests(t)
    assert t.registered and t.nick == name and "general" in t.channels
    return t


_WORDS = st.sampled_from(
    ["PRIVMSG", "NOTICE", "JOIN", "PART", "MODE", "TOPIC", "WHO", "WHOIS", "CAP", "NICK",
     "AUTHENTICATE", "CHATHISTORY", "TAGMSG", "REDACT", "KICK", "LIST", "NAMES", "AWAY",
     "PING", "QUIT", "#general", "#", "ana", "*", "+o", "LATEST", "msgid=general.1",
     ":", ":text", "@label=x", "\x01ACTION", "REQ", "LS", "+", "0"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=8), st.binary(max_size=20))
@example(["REDACT", "#general", "general.²"], b"")  # isdigit() but not int()
@example(["CAP", "LS", "³⁰²"], b"")
def test_any_line_is_answered_without_an_exception(words: list[str], noise: bytes) -> None:
    """Whatever a registered client sends, and whatever error the server answers
    with, the translator asks, answers and never raises."""
    t = registered(caps=b"labeled-response batch message-tags echo-message")
    t.client_line(" ".join(words).encode() + noise)
    for frame in requests(t):
        error = {"code": "bad_args", "message": "no"}
        t.server_event({"id": frame["id"], "ok": False, "error": error})
    t.take_output()


def test_whox_spec_takes_known_fields_and_a_numeric_token() -> None:
    """`%fields,token`: fields are case-insensitive and unknown ones dropped; the
    token is 1-3 digits, else 0; no `%` is a plain WHO."""
    assert whox_spec("%tcuhnfdar,743") == ("tcuhnfdar", "743")
    assert whox_spec("o%CNx") == ("cn", "0")
    assert whox_spec("%tn,abcd") == ("tn", "0")
    assert whox_spec("%tn,1234") == ("tn", "0")
    assert whox_spec("o") is None


def test_names_and_join_ask_members_once_and_read_history_only_for_a_marker() -> None:
    """NAMES and JOIN ask `members` for the room, and no `whois` per member; JOIN
    reads the room's history only for a `draft/read-marker` client: its marker
    (`read` with seq 0 moves nothing), the newest message and the two from the
    marker on."""
    t = registered()
    t.client_line(b"NAMES #general")
    assert [f["cmd"] for f in requests(t)] == ["members", "ping"]
    t.client_line(b"JOIN #tech")
    join = requests(t)
    answer(t, {"id": join[0]["id"], "ok": True, "room": {"name": "tech", "topic": ""}})
    assert [f["cmd"] for f in requests(t)] == ["members", "ping"]
    marked = registered(caps=b"draft/read-marker")
    marked.client_line(b"JOIN #tech")
    join = requests(marked)
    answer(marked, {"id": join[0]["id"], "ok": True, "room": {"name": "tech", "topic": ""}})
    (read,) = requests(marked)
    assert (read["cmd"], read["room"], read["seq"]) == ("read", "tech", 0)
    answer(marked, {"id": read["id"], "ok": True, "seq": 7})
    messages = [{"seq": seq, "ts": float(seq), "from": "bob"} for seq in (7, 8, 9)]
    (newest,) = requests(marked)
    assert (newest["cmd"], newest["limit"], "before" in newest) == ("history", 1, False)
    answer(marked, {"id": newest["id"], "ok": True, "messages": messages[-1:], "more": True})
    (page,) = requests(marked)
    assert (page["cmd"], page["limit"], page["before"]) == ("history", 2, 9)
    answer(marked, {"id": page["id"], "ok": True, "messages": messages[:2], "more": True})
    members, ping = requests(marked)
    assert (members["cmd"], ping["cmd"]) == ("members", "ping")
    answer(marked, {"id": members["id"], "ok": True, "members": []})
    lines = answer(marked, {"id": ping["id"], "ok": True, "ts": 1.0})
    assert f":nexus MARKREAD #tech timestamp={irc_time(7.0)}" in lines


BOB = {"username": "bob", "online": True, "away": None, "bio": "", "admin": False, "guest": False}


def test_what_a_room_hears_while_its_join_is_on_its_way_follows_the_join() -> None:
    """A message said after the join but before its roster is answered was
    dropped (the channel was not shown yet); it is held and follows the JOIN
    and NAMES, as are a join and a topic change, in the order heard."""
    t = registered()
    t.client_line(b"JOIN #tech")
    join = requests(t)
    answer(t, {"id": join[0]["id"], "ok": True, "room": {"name": "tech", "topic": ""}})
    members, ping = requests(t)
    said = {"event": "message", "room": "tech", "seq": 4, "from": "bob", "text": "quick",
            "ts": 1.0}  # fmt: skip
    assert answer(t, said) == []
    assert answer(t, {"event": "joined", "room": "tech", "user": "cid"}) == []
    assert answer(t, {"event": "topic", "room": "tech", "topic": "news", "by": "bob"}) == []
    answer(t, {"id": members["id"], "ok": True, "members": [BOB]})
    lines = answer(t, {"id": ping["id"], "ok": True, "ts": 1.0})
    commands = [line.split()[1] for line in lines]
    assert commands == ["JOIN", "353", "366", "PRIVMSG", "JOIN", "TOPIC"], lines
    assert lines[3] == ":bob!~bob@nexus PRIVMSG #tech :quick"
    assert answer(t, {**said, "seq": 5, "text": "later"}) == [
        ":bob!~bob@nexus PRIVMSG #tech :later"
    ]


def test_a_held_message_the_join_showed_already_is_not_shown_twice() -> None:
    """A client shown the room's latest lines on JOIN sees a message heard
    while joining once, whether the join's reply holds it or not."""
    t = registered()
    t.client_line(b"JOIN #tech")
    join = requests(t)
    said = {"event": "message", "room": "tech", "seq": 4, "from": "bob", "text": "quick",
            "ts": 1.0}  # fmt: skip
    assert answer(t, said) == []
    reply = {"id": join[0]["id"], "ok": True, "room": {"name": "tech", "topic": ""},
             "history": [{k: v for k, v in said.items() if k != "event"}]}  # fmt: skip
    answer(t, reply)
    members, ping = requests(t)
    answer(t, {"id": members["id"], "ok": True, "members": [BOB]})
    lines = answer(t, {"id": ping["id"], "ok": True, "ts": 1.0})
    assert sum("PRIVMSG #tech :" in line and "quick" in line for line in lines) == 1, lines


def test_a_join_sent_before_the_welcome_shows_its_channels_holds_nothing() -> None:
    """A client that JOINs a room it is a member of as soon as it is welcomed,
    before the rooms it is in are shown, saw nothing said in the room after:
    its JOIN waited for a release that only a JOIN showing the channel gave,
    and here the welcome showed it. What the room hears reaches the client."""
    t = registered(welcomed=b"JOIN #general")
    said = {"event": "message", "room": "general", "seq": 4, "from": "bob", "text": "hi",
            "ts": 1.0}  # fmt: skip
    assert answer(t, said) == [":bob!~bob@nexus PRIVMSG #general :hi"]


_ROOM_FRAMES = st.one_of(
    st.builds(
        lambda author, text, action: {"event": "message", "room": "general", "from": author,
                                      "text": text, "ts": 1.5, "action": action},
        st.sampled_from(["ana", "bob", "Cid"]),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_categories=("Cc",)),
                min_size=1, max_size=600),
        st.booleans(),
    ),
    st.builds(lambda kind, who: {"event": kind, "room": "general", "user": who},
              st.sampled_from(["joined", "left"]), st.sampled_from(["dan", "eve", "ana", "bob"])),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_ROOM_FRAMES, min_size=1, max_size=12),
    st.lists(st.integers(min_value=0, max_value=12), max_size=3),
    st.sampled_from([b"", b"echo-message", b"server-time message-tags account-tag"]),
)
def test_a_room_write_reads_the_same_whole_or_in_slices(
    frames: list[dict[str, Any]], cuts: list[int], caps: bytes
) -> None:
    """The outbox hands a room's frames to each member as a view of the room's
    broadcast, whole or in slices around the member's own replies; whichever it
    gets, and whether its translation is shared or its own, a member sees what
    it would see were the frames told one by one: its own messages (said from
    here, so echoed or not) and other events included; one that gets others'
    messages only takes the broadcast's shared lines as they are."""
    broadcast = Broadcast(0)
    broadcast.frames = [Frame({**frame, "seq": seq}) for seq, frame in enumerate(frames, 1)]
    at = sorted({0, len(frames), *(min(cut, len(frames)) for cut in cuts)})
    for name in ("bob", "ana", "bob"):  # bob twice: the second finds the lines made
        one_by_one, whole_write, sliced = members = [registered(caps, name) for _ in range(3)]
        for t in members:
            for frame in frames:
                if frame.get("from") == name:
                    action = b"\x01ACTION %s\x01" if frame["action"] else b"%s"
                    t.client_line(b"PRIVMSG #general :" + action % frame["text"].encode())
                    assert requests(t)[0]["text"] == frame["text"]
        for framed in broadcast.frames:
            one_by_one.server_event(framed.body)
        whole_write.server_view(View(broadcast, 0))
        for start, end in pairwise(at):
            view = View(broadcast, start)
            view.end = end
            sliced.server_view(view)
        expected = one_by_one.take_output()
        written = whole_write.take_output()
        assert written == expected
        assert sliced.take_output() == expected
        # Others' messages only: the lines every such member takes, made once.
        if all(f["event"] == "message" and f["from"] != name for f in frames):
            assert written is broadcast.encodings[whole_write.profile].lines


def test_a_broadcast_keeps_one_translation_per_capability_set() -> None:
    """Members with the same capabilities share one translation of a room's
    broadcast, kept by the broadcast; members with others get their own."""
    broadcast = Broadcast(0)
    said = {"event": "message", "room": "general", "from": "cid", "text": "hi", "ts": 1.5}
    broadcast.frames = [Frame({**said, "seq": 1}), Frame({**said, "seq": 2})]
    plain = [registered(b"", name) for name in ("ana", "bob")]
    tagged = [registered(b"server-time message-tags", name) for name in ("dan", "eve")]
    written = []
    for t in [*plain, *tagged]:
        t.server_view(View(broadcast, 0))
        written.append(t.take_output())
    assert len(broadcast.encodings) == 2
    assert written[0] is written[1] and written[2] is written[3]  # the same bytes, not copies
    assert written[0].startswith(b":cid!") and written[2].startswith(b"@time=")


def test_a_room_broadcast_heard_while_joining_follows_the_join() -> None:
    """A broadcast's shared lines for a room whose JOIN is being told wait
    for it too, as single events do."""
    t = registered()
    t.client_line(b"JOIN #tech")
    join = requests(t)
    answer(t, {"id": join[0]["id"], "ok": True, "room": {"name": "tech", "topic": ""}})
    members, ping = requests(t)
    answer(t, {"id": members["id"], "ok": True, "members": [BOB]})
    said = {"event": "message", "room": "tech", "seq": 4, "from": "bob", "text": "quick",
            "ts": 1.0}  # fmt: skip
    broadcast = Broadcast(0)
    broadcast.frames = [Frame(said)]
    t.server_view(View(broadcast, 0))
    assert t.take_output() == b""
    lines = answer(t, {"id": ping["id"], "ok": True, "ts": 1.0})
    assert [line.split()[1] for line in lines] == ["JOIN", "353", "366", "PRIVMSG"], lines
