"""The sans-I/O protocol core, with no sockets: framing, decoding, typed requests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexus import protocol as p
from nexus.errors import NexusError


def feed_bytewise(framer: p.LineFramer, data: bytes) -> list[bytes]:
    lines = []
    for i in range(len(data)):
        lines += framer.feed(data[i : i + 1])
    return lines


def test_framer_one_byte_at_a_time_gives_the_same_lines():
    """Lines fed one byte at a time come out whole and in order."""
    data = b'{"cmd":"ping"}\n\n  \r\n{"cmd":"quit"}\r\npartial'
    framer = p.LineFramer()
    assert feed_bytewise(framer, data) == [b'{"cmd":"ping"}', b"", b"  \r", b'{"cmd":"quit"}\r']
    assert framer.pending == len(b"partial")


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.data()
)
def test_framer_is_independent_of_chunking(lines, data):
    """However the stream is cut into reads, the same frames come out."""
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = p.LineFramer()
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += framer.feed(stream[start:end])
    assert out == lines


def test_framer_accepts_a_frame_of_exactly_max_frame_bytes():
    """max_frame counts the newline: a line of max_frame - 1 bytes fits."""
    framer = p.LineFramer(max_frame=16)
    assert feed_bytewise(framer, b"x" * 15 + b"\n") == [b"x" * 15]
    assert not framer.too_large


def test_framer_refuses_one_byte_more_and_runs_nothing_after_it():
    """An over-long line sets too_large; a command in its tail never comes out."""
    framer = p.LineFramer(max_frame=16)
    assert framer.feed(b"ok\n" + b"x" * 16 + b'\n{"cmd":"say"}\n') == [b"ok"]
    assert framer.too_large
    assert framer.feed(b'{"cmd":"ping"}\n') == []


def test_framer_refuses_an_unterminated_line_as_soon_as_it_cannot_fit():
    """A line that already fills max_frame without its newline is refused early."""
    framer = p.LineFramer(max_frame=16)
    assert feed_bytewise(framer, b"y" * 15) == []
    assert not framer.too_large
    assert framer.feed(b"y") == []
    assert framer.too_large


def test_framer_counts_a_trailing_carriage_return():
    """The \\r before \\n counts toward max_frame."""
    framer = p.LineFramer(max_frame=16)
    framer.feed(b"x" * 14 + b"\r\n")
    assert not framer.too_large
    framer.feed(b"x" * 15 + b"\r\n")
    assert framer.too_large


@pytest.mark.parametrize(
    "line",
    [
        b"[1, 2]",
        b'"text"',
        b"42",
        b"{not json}",
        b'{"cmd": "ping", "x": NaN}',
        b'{"cmd": "ping", "x": Infinity}',
        b'{"cmd": "ping", "x": 1e999}',
        b'{"cmd": "ping", "x": "\\ud800"}',
        b'{"cmd": "\xff\xfe"}',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 33 + b"1" + b"}" * 33,
    ],
)
def test_decode_refuses_what_is_not_a_sound_json_object(line):
    """Non-objects, bad UTF-8, lone surrogates, NaN, infinities and deep nesting are bad_frame."""
    with pytest.raises(NexusError) as caught:
        p.decode(line)
    assert caught.value.code == "bad_frame"


def test_decode_accepts_nesting_of_exactly_32_levels():
    """32 levels of nesting are allowed; blank lines decode to None."""
    assert p.decode(b'{"a":' * 31 + b"1" + b"}" * 31 + b"\r") is not None
    assert p.decode(b" \t \r") is None


@pytest.mark.parametrize(
    ("frame", "expected"),
    [({}, None), ({"id": None}, None), ({"id": 7}, 7), ({"id": "x" * 64}, "x" * 64)],
)
def test_request_id_accepts_integers_short_strings_and_null(frame, expected):
    """An id is an integer or a string of at most 64 characters; null is none."""
    assert p.request_id(frame) == expected


@pytest.mark.parametrize("rid", [True, 1.5, "x" * 65, [1], {"a": 1}])
def test_request_id_refuses_other_values(rid):
    """Any other id is bad_args."""
    with pytest.raises(NexusError) as caught:
        p.request_id({"id": rid})
    assert caught.value.code == "bad_args"


@pytest.mark.parametrize(
    ("cmd", "frame", "code"),
    [
        ("register", {"username": "ab", "password": "12345678"}, "invalid_username"),
        ("register", {"username": "a" * 25, "password": "12345678"}, "invalid_username"),
        ("register", {"username": "bad name", "password": "12345678"}, "invalid_username"),
        ("register", {"username": "alice", "password": "x" * 1025}, "too_long"),
        ("register", {"username": "alice"}, "bad_args"),
        ("register", {"username": 5, "password": "12345678"}, "bad_args"),
        ("join", {"room": "Bad Room"}, "invalid_room"),
        ("join", {"room": ""}, "invalid_room"),
        ("join", {"room": "#"}, "invalid_room"),
        ("join", {"room": "x" * 33}, "invalid_room"),
        ("join", {"room": ["tech"]}, "bad_args"),
        ("say", {"room": "tech", "text": "x" * 4001}, "too_long"),
        ("say", {"room": "tech", "text": " \n\t\u3000\u2003"}, "empty"),
        ("say", {"room": "tech", "text": ""}, "empty"),
        ("say", {"room": "tech", "text": "bell\x07"}, "bad_args"),
        ("say", {"room": "tech", "text": "esc\x1b[31m"}, "bad_args"),
        ("say", {"room": "tech", "text": "del\x7f"}, "bad_args"),
        ("say", {"room": "tech", "text": "c1\x9b"}, "bad_args"),
        ("bio", {"text": "x" * 201}, "too_long"),
        ("bio", {"text": "two\nlines"}, "bad_args"),
        ("topic", {"room": "tech", "topic": "x" * 201}, "too_long"),
        ("history", {"room": "tech", "limit": 0}, "bad_args"),
        ("history", {"room": "tech", "limit": 501}, "bad_args"),
        ("history", {"room": "tech", "limit": True}, "bad_args"),
        ("history", {"room": "tech", "before": "5"}, "bad_args"),
        ("dms", {"with": "bob", "limit": 2.5}, "bad_args"),
    ],
)
def test_parse_refuses_each_argument_error_with_its_code(cmd, frame, code):
    """Each malformed argument maps to the protocol's code for it."""
    with pytest.raises(NexusError) as caught:
        p.parse(cmd, {"cmd": cmd, **frame})
    assert caught.value.code == code


def test_parse_normalises_and_ignores_unknown_keys():
    """Room names lose a leading # and are lower-cased; extra keys are ignored."""
    req = p.parse("say", {"cmd": "say", "room": "#TeCh", "text": "a\n\tb", "extra": [1]})
    assert (req.room, req.text) == ("tech", "a\n\tb")
    page = p.parse("dms", {"cmd": "dms", "with": "bob", "limit": None})
    assert (page.with_, page.limit, page.before) == ("bob", p.PAGE_DEFAULT, None)


def test_text_limits_count_code_points():
    """4,000 emoji are 4,000 characters, however many bytes they take."""
    assert p.parse("say", {"room": "tech", "text": "😀" * 4000}).text == "😀" * 4000


def test_passwords_never_appear_in_reprs():
    """A request's repr masks the password, so it cannot reach a log."""
    req = p.parse("login", {"username": "alice", "password": "hunter2hunter2"})
    assert "hunter2" not in repr(req)
    assert "alice" in repr(req)


def test_replies_and_events_are_one_json_line():
    """encode() gives compact JSON and a newline; replies echo the id first."""
    data = p.encode(p.ok(3, {"seq": 1}))
    assert data == b'{"id":3,"ok":true,"seq":1}\n'
    err = p.error(None, NexusError("empty", "no text"))
    assert err == {"ok": False, "error": {"code": "empty", "message": "no text"}}


def test_an_event_is_checked_against_its_declaration():
    """parse_event accepts a well-formed event (extra keys kept), refuses a
    malformed one, and passes over events this side does not know."""
    message = {"event": "message", "room": "tech", "seq": 1, "from": "ana", "text": "hi", "ts": 2}
    assert p.parse_event({**message, "new_field": [1]}) == {**message, "new_field": [1]}
    for broken in ({**message, "seq": "1"}, {**message, "seq": True}, {**message, "ts": None}):
        with pytest.raises(p.MalformedFrame):
            p.parse_event(broken)
    without_text = dict(message)
    del without_text["text"]
    with pytest.raises(p.MalformedFrame):
        p.parse_event(without_text)
    assert p.parse_event({"event": "from_the_future", "x": 1}) is None
    for kind in (["message"], {"a": 1}, 5, None):
        with pytest.raises(p.MalformedFrame):
            p.parse_event({**message, "event": kind})
    created = {
        "event": "room_created",
        "room": {
            "name": "x",
            "topic": "",
            "owner": None,
            "default": False,
            "members": 1,
            "online": 1,
        },
    }
    assert p.parse_event(created) == created
    with pytest.raises(p.MalformedFrame):
        p.parse_event({**created, "room": {**created["room"], "owner": 3}})


def test_a_reply_is_checked_against_its_command():
    """parse_reply knows each command's reply fields; optional ones may be absent."""
    profile = {
        "username": "ana",
        "bio": "",
        "online": True,
        "rooms": ["general"],
        "created": 1.0,
        "last_seen": None,
    }
    login = {"ok": True, "user": profile, "rooms": ["general"], "unread": {"dms": {"bob": 2}}}
    assert p.parse_reply("login", login) is login
    assert p.parse_reply("login", {**login, "token": "t"})
    with pytest.raises(p.MalformedFrame):
        p.parse_reply("login", {**login, "unread": {"dms": {"bob": "2"}}})
    with pytest.raises(p.MalformedFrame):
        p.parse_reply("history", {"ok": True, "messages": [{"seq": 1}], "more": False})


def test_an_error_reply_becomes_a_nexus_error():
    """error_of keeps the code, message and extra fields; an unknown code is internal."""
    err = p.error_of(
        {"ok": False, "error": {"code": "rate_limited", "message": "slow", "retry_after": 1.5}}
    )
    assert (err.code, err.message, err.extra) == ("rate_limited", "slow", {"retry_after": 1.5})
    assert p.error_of({"ok": False, "error": {"code": "new_code", "message": "m"}}).code == (
        "internal"
    )
    assert p.error_of({"ok": False}).code == "internal"
