"""Framing, request fine points, names, text rules and history caps, over real sockets."""

from __future__ import annotations

from typing import Any

import pytest

from nexus import __version__
from tests.conftest import PASSWORD
from tests.wire import Peer

MAX_FRAME = 65_536


async def raw_reply(peer: Peer, data: bytes) -> dict[str, Any]:
    """Sends raw bytes and returns the next reply."""
    await peer.send_raw(data)
    return await peer.reply()


def sized(size: int, end: bytes = b"\n", rid: int = 1) -> bytes:
    """A ping frame of exactly `size` bytes, `end` included, padded with an unknown key."""
    head = b'{"id":%d,"cmd":"ping","pad":"' % rid
    tail = b'"}' + end
    return head + b"x" * (size - len(head) - len(tail)) + tail


def nested(levels: int) -> bytes:
    """A ping request whose JSON nests `levels` containers deep, the object itself included."""
    return b'{"id":9,"cmd":"ping","deep":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}\n"


async def history_texts(peer: Peer, room: str) -> list[str]:
    return [m["text"] for m in (await peer.ok("history", room=room, limit=500))["messages"]]


# -- connection and frames -----------------------------------------------------


async def test_hello_on_connect(server):
    """The server greets with hello: server name, package version, protocol 1 and motd."""
    peer = await Peer.connect(server.host, server.port)
    server.peers.append(peer)
    assert await peer.frame() == {
        "event": "hello",
        "server": "nexus",
        "version": __version__,
        "protocol": 3,
        "motd": "test server",
    }


async def test_blank_and_white_space_lines_are_ignored(server):
    """Empty lines and lines of only white space get no reply at all."""
    peer = await server.user("alice")
    reply = await raw_reply(peer, b"\n\r\n   \n\t \r\n \x0c\n" + b'{"id":"after","cmd":"ping"}\n')
    assert reply["id"] == "after" and reply["ok"] is True
    assert peer.events == []


async def test_trailing_carriage_return_is_ignored(server):
    """A frame ended by \\r\\n is read like one ended by \\n."""
    peer = await server.peer()
    reply = await raw_reply(peer, b'{"id":1,"cmd":"ping"}\r\n')
    assert reply["id"] == 1 and reply["ok"] is True


async def test_frame_of_exactly_max_frame_bytes_is_accepted(server):
    """A frame of max_frame bytes, newline (and \\r) included, is answered."""
    peer = await server.user("alice")
    assert (await raw_reply(peer, sized(MAX_FRAME, rid=1)))["id"] == 1
    assert (await raw_reply(peer, sized(MAX_FRAME, b"\r\n", rid=2)))["id"] == 2
    await peer.ok("ping")


async def test_frame_one_byte_too_long_is_refused_and_closes(server):
    """max_frame + 1 bytes gets frame_too_large (no id) and the connection is closed."""
    peer = await server.user("alice")
    await peer.send_raw(sized(MAX_FRAME + 1))
    error = await peer.reply()
    assert error["ok"] is False and "id" not in error
    assert error["error"]["code"] == "frame_too_large" and error["error"]["message"]
    assert await peer.closed()


async def test_carriage_return_counts_toward_max_frame(server):
    """A frame that fits only without its \\r is too large."""
    peer = await server.user("alice")
    await peer.send_raw(sized(MAX_FRAME + 1, b"\r\n"))
    assert (await peer.reply())["error"]["code"] == "frame_too_large"
    assert await peer.closed()


async def test_command_hidden_after_over_long_line_is_not_run(server):
    """A valid request in the same write after an over-long line is never executed."""
    alice = await server.user("alice")
    hidden = b'{"id":2,"cmd":"say","room":"general","text":"hidden"}\n'
    await alice.send_raw(b'{"cmd":"ping","pad":"' + b"x" * MAX_FRAME + b'"}\n' + hidden)
    assert (await alice.reply())["error"]["code"] == "frame_too_large"
    assert await alice.closed()
    assert not [f for f in alice.events if f.get("id") == 2]
    bob = await server.user("bob")
    assert await history_texts(bob, "general") == []


async def test_unterminated_over_long_line_is_refused_at_once(server):
    """An over-long line is refused as soon as it passes the limit, without waiting for \\n."""
    alice = await server.user("alice")
    await alice.send_raw(b'{"cmd":"ping","pad":"' + b"x" * (MAX_FRAME + 10))
    assert (await alice.reply())["error"]["code"] == "frame_too_large"
    assert await alice.closed()


async def test_smaller_max_frame_setting_is_enforced(start_server):
    """max_frame comes from the settings: exactly the limit passes, one more byte fails."""
    server = await start_server(max_frame=100)
    peer = await server.peer()
    assert (await raw_reply(peer, sized(100)))["ok"] is True
    assert (await raw_reply(peer, sized(101)))["error"]["code"] == "frame_too_large"
    assert await peer.closed()


async def test_unterminated_line_at_end_of_stream_is_dropped(server):
    """A request without its newline when the client stops writing is not executed."""
    alice = await server.user("alice")
    await alice.send_raw(b'{"id":1,"cmd":"say","room":"general","text":"cut"}')
    alice.writer.write_eof()
    assert await alice.closed()
    assert not [f for f in alice.events if "ok" in f]
    bob = await server.user("bob")
    assert await history_texts(bob, "general") == []


@pytest.mark.parametrize(
    "line",
    [
        b"[]",
        b'["cmd", "ping"]',
        b"1",
        b'"ping"',
        b"null",
        b"true",
        b"{",
        b'{"cmd": "ping",}',
        b"{'cmd': 'ping'}",
        b'{"cmd": "ping"} {"cmd": "ping"}',
        b'{"cmd": "p\xffing"}',
        b'{"cmd": "ping", "x": "\xc3"}',
        b'{"cmd": "ping", "x": "\xed\xa0\x80"}',
        b'{"cmd": "ping", "x": "\\ud800"}',
        b'{"cmd": "ping", "x": "\\udc00 tail"}',
        b'{"cmd": "ping", "x": NaN}',
        b'{"cmd": "ping", "x": Infinity}',
        b'{"cmd": "ping", "x": -Infinity}',
        b'{"cmd": "ping", "x": 1e400}',
        b"{}",
        b'{"id": 1}',
        b'{"cmd": null}',
        b'{"cmd": 5}',
        b'{"cmd": ["ping"]}',
        b'{"CMD": "ping"}',
        b"\xef\xbb\xbf{}",
    ],
)
async def test_bad_frames_get_bad_frame_and_keep_the_connection(server, line):
    """Anything but a JSON object with a string cmd is bad_frame (no id); the link stays open."""
    alice = await server.user("alice")
    reply = await raw_reply(alice, line + b"\n")
    assert reply["ok"] is False and "id" not in reply, reply
    assert reply["error"]["code"] == "bad_frame" and reply["error"]["message"]
    await alice.ok("ping")


async def test_nesting_32_levels_passes_33_is_bad_frame(server):
    """A frame nested 32 containers deep is read; 33 levels is bad_frame."""
    alice = await server.user("alice")
    assert (await raw_reply(alice, nested(32)))["ok"] is True
    assert (await raw_reply(alice, nested(33)))["error"]["code"] == "bad_frame"
    assert (await raw_reply(alice, nested(2000)))["error"]["code"] == "bad_frame"
    await alice.ok("ping")


async def test_valid_paired_surrogates_and_unicode_are_fine(server):
    """Escaped surrogate pairs and raw UTF-8 are good text."""
    alice = await server.user("alice")
    await alice.send_raw(
        b'{"id":1,"cmd":"say","room":"general","text":"\\ud83d\\ude00 \xc3\xa9"}\n'
    )
    assert (await alice.reply())["ok"] is True
    assert (await alice.event("message"))["text"] == "😀 é"


# -- ids -------------------------------------------------------------------------


@pytest.mark.parametrize("rid", [0, 7, -3, 2**53, 2**63 - 1, "", "abc", "x" * 64, "😀" * 64])
async def test_valid_ids_are_echoed(server, rid):
    """Integer ids and string ids of at most 64 characters are echoed unchanged."""
    peer = await server.peer()
    await peer.send({"id": rid, "cmd": "ping"})
    reply = await peer.reply()
    assert reply["id"] == rid and reply["ok"] is True


async def test_failed_request_echoes_its_id(server):
    """An error reply carries the request's id too."""
    peer = await server.peer()
    await peer.send({"id": "q1", "cmd": "whois", "username": "x"})
    reply = await peer.reply()
    assert reply["id"] == "q1" and reply["error"]["code"] == "auth_required"


async def test_null_id_counts_as_no_id(server):
    """ "id": null is a request without id: the reply has no id key."""
    peer = await server.peer()
    await peer.send({"id": None, "cmd": "ping"})
    reply = await peer.reply()
    assert "id" not in reply and reply["ok"] is True
    await peer.send({"cmd": "ping"})
    reply = await peer.reply()
    assert "id" not in reply and reply["ok"] is True


@pytest.mark.parametrize("rid", ["x" * 65, True, False, 1.5, 1.0, [1], {"a": 1}])
async def test_bad_ids_are_bad_args_and_not_echoed(server, rid):
    """An id that is not an integer or a string of at most 64 characters is bad_args, not echoed."""
    alice = await server.user("alice")
    await alice.send({"id": rid, "cmd": "say", "room": "general", "text": "not run"})
    reply = await alice.reply()
    assert reply["ok"] is False and "id" not in reply
    assert reply["error"]["code"] == "bad_args"
    assert await history_texts(alice, "general") == []


async def test_integer_id_beyond_64_bits_is_bad_args(server):
    """An integer id too large for 64 bits is refused with bad_args, not echoed."""
    alice = await server.user("alice")
    reply = await raw_reply(alice, b'{"id":18446744073709551616,"cmd":"ping"}\n')
    assert "id" not in reply and reply["error"]["code"] == "bad_args"


async def test_unknown_command_comes_before_auth_required(server):
    """Before login an unknown cmd is unknown_command, not auth_required."""
    peer = await server.peer()
    await peer.fails("unknown_command", "frobnicate")
    await peer.fails("unknown_command", "")
    await peer.fails("unknown_command", "PING")
    await peer.fails("auth_required", "rooms")


async def test_unknown_command_after_login(server):
    """A logged-in user's unknown cmd is unknown_command, and the connection goes on."""
    alice = await server.user("alice")
    await alice.fails("unknown_command", "hello")
    await alice.fails("unknown_command", "Say", room="general", text="x")
    await alice.ok("ping")


async def test_unknown_keys_are_ignored(server):
    """Keys a command does not define change nothing."""
    alice = await server.user("alice")
    reply = await alice.ok("say", room="general", text="hi", to="bob", extra={"a": [1]}, ok=False)
    assert reply["seq"] == 1
    reply = await alice.ok("ping", event="x", ts="y")
    assert isinstance(reply["ts"], float)


@pytest.mark.parametrize(
    ("cmd", "args"),
    [
        ("join", {"room": 1}),
        ("join", {"room": ["tech"]}),
        ("leave", {"room": None}),
        ("create", {"room": {"name": "x"}}),
        ("create", {"room": "x", "topic": 1}),
        ("delete", {"room": True}),
        ("topic", {"room": "tech", "topic": False}),
        ("say", {"room": "general", "text": ["hi"]}),
        ("say", {"room": "general", "text": 1}),
        ("dm", {"to": None, "text": "hi"}),
        ("dm", {"to": "alice", "text": {"t": 1}}),
        ("dms", {"with": 5}),
        ("dms", {"with": "alice", "limit": "10"}),
        ("dms", {"with": "alice", "before": 2.0}),
        ("history", {"room": "general", "limit": 50.0}),
        ("history", {"room": "general", "before": "9"}),
        ("whois", {"username": ["alice"]}),
        ("bio", {"text": None}),
    ],
)
async def test_missing_or_mistyped_args_are_bad_args(server, cmd, args):
    """A missing or mistyped argument is bad_args."""
    alice = await server.user("alice")
    await alice.fails("bad_args", cmd, **args)


# -- names -----------------------------------------------------------------------


async def test_usernames_unique_ignoring_case_and_shown_as_registered(server):
    """MixedCase stays MixedCase everywhere; mixedcase cannot register; login ignores case."""
    bob = await server.user("bob")
    mixed = await server.user("MiXeD_Name")
    peer = await server.peer()
    await peer.fails("username_taken", "register", username="mixed_name", password=PASSWORD)
    await peer.ok("login", username="MIXED_NAME", password=PASSWORD)
    assert (await bob.ok("whois", username="mixed_name"))["user"]["username"] == "MiXeD_Name"
    await mixed.ok("say", room="general", text="hi")
    assert (await bob.event("message"))["from"] == "MiXeD_Name"
    online = [u["username"] for u in (await bob.ok("online"))["users"]]
    assert online == ["bob", "MiXeD_Name"]


@pytest.mark.parametrize(
    ("cmd", "args"),
    [
        ("join", {}),
        ("leave", {}),
        ("create", {}),
        ("delete", {}),
        ("topic", {"topic": "x"}),
        ("say", {"text": "x"}),
        ("history", {}),
    ],
)
@pytest.mark.parametrize(
    "room", ["", "#", "##tech", "te ch", "tech!", "ünï", "a" * 33, "#" + "b" * 33, "tech\n"]
)
async def test_malformed_room_names_are_invalid_room_everywhere(server, cmd, args, room):
    """Every command naming a room refuses a malformed name with invalid_room."""
    alice = await server.user("alice")
    await alice.fails("invalid_room", cmd, room=room, **args)


@pytest.mark.parametrize("room", ["TECH", "#tech", "#Tech", "tEcH"])
async def test_room_names_strip_hash_and_ignore_case(server, room):
    """#Tech, TECH and tech all name the room `tech`."""
    alice = await server.user("alice")
    reply = await alice.ok("join", room=room)
    assert reply["room"]["name"] == "tech"
    await alice.ok("say", room=room, text="hi")
    assert (await alice.event("message"))["room"] == "tech"


async def test_non_ascii_letter_that_lower_cases_to_ascii_is_invalid_room(server):
    """A room name is ASCII: U+212A KELVIN SIGN does not name room `k`."""
    alice = await server.user("alice")
    await alice.fails("invalid_room", "create", room="\u212a")


# -- text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blank",
    [" ", "\t", "\n", "\r\n", "\x0b\x0c", "\x85", "\u00a0", "\u1680", "\u2000\u200a", "\u2028",
     "\u2029", "\u202f", "\u205f", "\u3000", " \n\t\u3000 "],
)  # fmt: skip
async def test_unicode_white_space_only_message_is_empty(server, blank):
    """A message of Unicode white space only is `empty`."""
    alice = await server.user("alice")
    await alice.fails("empty", "say", room="general", text=blank)
    await alice.fails("empty", "dm", to="alice", text=blank)


@pytest.mark.parametrize(
    "control", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\r", "\x1b", "\x1f", "\x7f", "\x80",
                "\x85", "\x9b", "\x9f"],
)  # fmt: skip
async def test_control_characters_in_messages_are_bad_args(server, control):
    """C0 controls but tab and newline, DEL and C1 controls are refused with bad_args."""
    alice = await server.user("alice")
    await alice.fails("bad_args", "say", room="general", text=f"a{control}b")
    await alice.fails("bad_args", "dm", to="alice", text=f"a{control}b")


@pytest.mark.parametrize("text", [" \x1c", "\x1d", "\x1e ", "\x1f"])
async def test_separator_controls_are_not_white_space(server, text):
    """U+001C-U+001F are controls, not Unicode white space: bad_args, not empty."""
    alice = await server.user("alice")
    await alice.fails("bad_args", "say", room="general", text=text)


async def test_tabs_newlines_and_other_unicode_are_allowed_in_messages(server):
    """Tabs, newlines, format characters and astral symbols pass through unchanged."""
    alice = await server.user("alice")
    texts = ["a\tb\nc", "\n\nx\n", "\u200b", "\u200d😀", "RTL \u202e text", "\u00a0x\u00a0"]
    for text in texts:
        await alice.ok("say", room="general", text=text)
    assert await history_texts(alice, "general") == texts


async def test_message_length_counts_code_points(server):
    """4000 code points pass even at 4 bytes each; 4001 are too_long, also in DMs."""
    alice = await server.user("alice")
    await alice.ok("say", room="general", text="😀" * 4000)
    await alice.ok("dm", to="alice", text="é" * 4000)
    await alice.fails("too_long", "say", room="general", text="😀" * 4001)
    await alice.fails("too_long", "dm", to="alice", text="a" * 4001)


async def test_bio_and_topic_count_code_points_up_to_200(server):
    """Bio and topic take 0-200 code points; 201 is too_long."""
    alice = await server.user("alice")
    await alice.ok("create", room="games")
    await alice.ok("bio", text="😀" * 200)
    await alice.ok("topic", room="games", topic="😀" * 200)
    await alice.fails("too_long", "bio", text="😀" * 201)
    await alice.fails("too_long", "topic", room="games", topic="😀" * 201)
    await alice.fails("too_long", "create", room="other", topic="x" * 201)


# -- history caps and paging ---------------------------------------------------


@pytest.mark.engines("json")  # the sqlite engine keeps every message
async def test_room_history_keeps_500_and_never_reuses_seq(server):
    """Beyond 500 the oldest messages go; seq keeps counting; more ignores trimmed ones."""
    alice = await server.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"m{i}"} for i in range(1, 506)])
    page = await alice.ok("history", room="general", limit=500)
    assert [m["seq"] for m in page["messages"]] == list(range(6, 506))
    assert page["more"] is False
    page = await alice.ok("history", room="general", limit=499)
    assert page["messages"][0]["seq"] == 7 and page["more"] is True
    page = await alice.ok("history", room="general", before=7)
    assert [m["seq"] for m in page["messages"]] == [6] and page["more"] is False
    page = await alice.ok("history", room="general", before=6)
    assert page["messages"] == [] and page["more"] is False
    assert (await alice.ok("say", room="general", text="next"))["seq"] == 506
    joined = await alice.ok("join", room="general")
    assert [m["seq"] for m in joined["history"]] == list(range(457, 507))


@pytest.mark.engines("json")
async def test_dm_history_keeps_200_per_pair(server):
    """Beyond 200 a pair's oldest DMs go; seq keeps counting; other pairs are untouched."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await server.user("carol")
    await bob.burst([{"cmd": "dm", "to": "alice", "text": f"d{i}"} for i in range(1, 204)])
    await bob.ok("dm", to="carol", text="other pair")
    page = await alice.ok("dms", **{"with": "bob", "limit": 500})
    assert [m["seq"] for m in page["messages"]] == list(range(4, 204))
    assert page["more"] is False
    page = await alice.ok("dms", **{"with": "bob", "limit": 199})
    assert page["messages"][0]["seq"] == 5 and page["more"] is True
    page = await alice.ok("dms", **{"with": "bob", "before": 4})
    assert page["messages"] == [] and page["more"] is False
    assert (await alice.ok("dm", to="bob", text="back"))["seq"] == 204
    page = await bob.ok("dms", **{"with": "carol"})
    assert [m["seq"] for m in page["messages"]] == [1]


async def test_unread_counts_only_stored_messages(server, engine):
    """Unread counts the other user's DMs still stored: at most the pair's cap
    on the json engine, every one on sqlite."""
    alice = await server.user("alice")
    await alice.ok("quit")
    bob = await server.user("bob")
    await bob.burst([{"cmd": "dm", "to": "alice", "text": f"d{i}"} for i in range(1, 206)])
    peer = await server.peer()
    reply = await peer.ok("login", username="alice", password=PASSWORD)
    assert reply["unread"]["dms"] == {"bob": 200 if engine == "json" else 205}


@pytest.mark.parametrize("limit", [1, 2, 499, 500])
async def test_history_limit_bounds(server, limit):
    """limit takes 1-500 and returns at most that many, newest last."""
    alice = await server.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"m{i}"} for i in range(1, 4)])
    page = await alice.ok("history", room="general", limit=limit)
    assert [m["seq"] for m in page["messages"]] == list(range(max(1, 4 - limit), 4))
    assert page["more"] is (limit < 3)


@pytest.mark.parametrize("limit", [0, -1, 501, 10**6])
async def test_history_limit_outside_bounds_is_bad_args(server, limit):
    """limit outside 1-500 is bad_args, for history and dms alike."""
    alice = await server.user("alice")
    await alice.fails("bad_args", "history", room="general", limit=limit)
    await alice.fails("bad_args", "dms", **{"with": "alice", "limit": limit})


@pytest.mark.parametrize("before", [1, 0, -1, -(2**40)])
async def test_before_at_most_one_is_an_empty_page(server, before):
    """before <= 1 gives an empty page without more, in rooms and DMs."""
    alice = await server.user("alice")
    await alice.ok("say", room="general", text="x")
    await alice.ok("dm", to="alice", text="x")
    page = await alice.ok("history", room="general", before=before)
    assert page["messages"] == [] and page["more"] is False
    page = await alice.ok("dms", **{"with": "alice", "before": before})
    assert page["messages"] == [] and page["more"] is False


async def test_before_past_the_newest_returns_the_newest(server):
    """before beyond the last seq pages from the newest message."""
    alice = await server.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"m{i}"} for i in range(1, 4)])
    page = await alice.ok("history", room="general", before=10**9, limit=2)
    assert [m["seq"] for m in page["messages"]] == [2, 3] and page["more"] is True
