"""Hostile peers over real sockets: the server answers with codes, keeps serving, forgets them.

Every test here also checks, through the autouse `no_tracebacks` fixture, that
nothing a peer sent made the server log a traceback or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
import tracemalloc
import unicodedata
from typing import Any

import orjson
import pytest

from nexus.errors import ERROR_CODES
from nexus.protocol import (
    REQUESTS,
    boolean,
    file_ids,
    page_limit,
    search_limit,
    sequence,
    timestamp,
)
from nexus.server.commands.registry import ANONYMOUS, COMMANDS
from tests.clock import ManualClock
from tests.conftest import PASSWORD
from tests.procs import ServerProcess
from tests.wire import Peer

# Commands asked only before login (the others need a logged-in peer).
BEFORE_LOGIN = {name for name, command in COMMANDS.items() if command.phases == ANONYMOUS}

MAX_FRAME = 65_536


@pytest.fixture(autouse=True)
def no_tracebacks(caplog):
    """Fails the test if the server logged a traceback or an error for a peer's mistake."""
    caplog.set_level(logging.DEBUG, logger="nexus")
    yield
    bad = [
        r
        for r in caplog.records
        if r.name.startswith(("nexus", "asyncio")) and (r.exc_info or r.levelno >= logging.ERROR)
    ]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad][:3]


def assert_refused(reply: dict[str, Any], code: str) -> None:
    """An error reply with `code` whose message is safe to print on a terminal."""
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == code, reply
    message = reply["error"]["message"]
    assert message and not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in message), reply


async def raw_reply(peer: Peer, data: bytes) -> dict[str, Any]:
    await peer.send_raw(data)
    return await peer.reply()


async def still_serves(peer: Peer) -> None:
    """The connection answers a ping."""
    reply = await peer.request("ping")
    assert reply["ok"] is True and "ts" in reply, reply


async def wait_until(predicate, timeout: float = 10.0) -> bool:
    """Polls `predicate` every 10 ms for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def quiet(running) -> bool:
    """No connection, session or anonymous address is left on the server."""
    server = running.server
    return not server.core.connections and not server.core.per_address


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- bytes that are not JSON --------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b'{"cmd":"ping","x":"\xff"}',
        b'{"cmd":"ping","x":"\xc0\xaf"}',  # over-long encoding of "/"
        b'{"cmd":"ping","x":"\xe2\x82"}',  # truncated sequence
        b'{"cmd":"ping","x":"\xf8\x88\x80\x80\x80"}',  # five-byte form
        b'{"cmd":"ping","x":"\xed\xa0\x80"}',  # a surrogate encoded raw
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",  # a byte-order mark
    ],
)
async def test_invalid_utf8_is_bad_frame_and_the_connection_lives(server, line):
    """Invalid UTF-8 anywhere in a line is bad_frame; the next request is served."""
    peer = await server.user()
    assert_refused(await raw_reply(peer, line + b"\n"), "bad_frame")
    await still_serves(peer)


@pytest.mark.parametrize(
    "escaped", [rb'"\ud800"', rb'"\udc00"', rb'"a\ud800b"', rb'"\udbff\u0041"', rb'"\ud800\ud800"']
)
async def test_lone_surrogates_are_bad_frame(server, escaped):
    """A lone surrogate escape, in a value or a key, is bad_frame (it could never be encoded)."""
    peer = await server.user()
    value = await raw_reply(peer, b'{"cmd":"say","room":"general","text":' + escaped + b"}\n")
    assert_refused(value, "bad_frame")
    assert_refused(await raw_reply(peer, b'{"cmd":"ping",' + escaped + b":1}\n"), "bad_frame")
    assert (await peer.ok("history", room="general"))["messages"] == []


@pytest.mark.parametrize(
    "number",
    [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", str(10**400).encode(), b"1e400"],
)
async def test_nan_infinity_and_overflowing_numbers_are_bad_frame(server, number):
    """NaN, infinities and numbers that overflow a double are bad_frame wherever they appear."""
    peer = await server.user()
    for frame in (
        b'{"id":1,"cmd":"ping","x":%s}\n' % number,
        b'{"id":%s,"cmd":"ping"}\n' % number,
        b'{"cmd":"history","room":"general","before":%s}\n' % number,
        b"[%s]\n" % number,
    ):
        reply = await raw_reply(peer, frame)
        assert_refused(reply, "bad_frame")
        assert "id" not in reply
    await still_serves(peer)


async def test_integers_past_64_bits_are_bad_args_where_integers_are_expected(server):
    """2**64 parses as a float: bad_args as an id, limit or before; 2**64 - 1 still works."""
    peer = await server.user()
    big = 2**64
    assert_refused(await raw_reply(peer, b'{"id":%d,"cmd":"ping"}\n' % big), "bad_args")
    for arg in ("limit", "before"):
        reply = await raw_reply(
            peer, b'{"cmd":"history","room":"general","%s":%d}\n' % (arg.encode(), big)
        )
        assert_refused(reply, "bad_args")
    reply = await raw_reply(peer, b'{"id":%d,"cmd":"ping"}\n' % (big - 1))
    assert reply["ok"] is True and reply["id"] == big - 1
    await peer.ok("say", room="general", text="one")
    assert len((await peer.ok("history", room="general", before=big - 1))["messages"]) == 1
    assert (await peer.ok("history", room="general", before=-(2**63)))["messages"] == []


@pytest.mark.parametrize("opener,closer", [(b"[", b"]"), (b'{"a":', b"}")])
async def test_nesting_ten_thousand_deep_is_bad_frame(server, opener, closer):
    """10,000 levels of arrays or objects, closed or not, are bad_frame and cost nothing lasting."""
    peer = await server.user()
    depth = 10_000
    closed = b'{"cmd":"ping","x":' + opener * depth + b"1" + closer * depth + b"}\n"
    assert len(closed) < MAX_FRAME
    assert_refused(await raw_reply(peer, closed), "bad_frame")
    assert_refused(await raw_reply(peer, opener * depth + b"\n"), "bad_frame")
    await still_serves(peer)


async def test_duplicate_keys_take_the_last_value(server):
    """A repeated key counts once, with its last value, for id, cmd and arguments alike."""
    peer = await server.user()
    reply = await raw_reply(peer, b'{"id":1,"id":2,"cmd":"ping"}\n')
    assert reply["ok"] is True and reply["id"] == 2
    reply = await raw_reply(peer, b'{"id":3,"cmd":"ping","cmd":"nope"}\n')
    assert_refused(reply, "unknown_command")
    reply = await raw_reply(peer, b'{"id":4,"cmd":"nope","cmd":"ping"}\n')
    assert reply["ok"] is True
    text = b'"text":"first","text":"second"'
    reply = await raw_reply(peer, b'{"cmd":"say","room":"nope","room":"general",%s}\n' % text)
    assert reply["ok"] is True and reply["seq"] == 1
    history = await peer.ok("history", room="general")
    assert [m["text"] for m in history["messages"]] == ["second"]


# -- wrong types --------------------------------------------------------------

STRING_WRONG = [0, -1, 1.5, True, False, [], ["general"], {}, {"a": "b"}]
INTEGER_WRONG = ["5", "", 1.5, 2.0, True, False, [], [5], {}, {"n": 5}]
BOOLEAN_WRONG = ["true", "", 0, 1, 1.5, [], [True], {}]
NUMBER_WRONG = ["5", "", True, False, [], [5], {}]
# Not a list of 1-10 upload ids: one id bare, none, a short one, a number, eleven.
FILES_WRONG = ["A" * 22, "", 0, True, [], [1], [None], ["short"], {}, ["A" * 22] * 11]
WRONG = {page_limit: INTEGER_WRONG, search_limit: INTEGER_WRONG, sequence: INTEGER_WRONG}
WRONG |= {file_ids: FILES_WRONG}
WRONG |= {boolean: BOOLEAN_WRONG, timestamp: NUMBER_WRONG}


def valid_args(cmd: str) -> dict[str, Any]:
    """Arguments that make `cmd` pass validation (its outcome may still be a refusal)."""
    base = {
        "username": "hostile_x",
        "password": PASSWORD,
        "room": "general",
        "topic": "t",
        "text": "hello",
        "to": "nobody",
        "with": "nobody",
        "limit": 5,
        "before": 3,
        "token": None,
        "seq": 1,
        "emoji": "+1",
        "on": True,
        "action": False,
        "reply_to": None,
        "query": "hello",
        "from": "nobody",
        "old": PASSWORD,
        "new": "another password",
        "reason": "r",
        "private": False,
        "files": None,
        "plain": False,
        "thread": None,
        "broadcast": False,
        "after": None,  # a page takes one anchor: `before`
        "around": None,
        "replies": False,
    }
    _, rules = REQUESTS[cmd]
    args = {key: base[key] for key, *_ in rules}
    if "room" in args and "with" in args:
        args["with"] = None  # a message address names one of the two
    return args


def wrong_type_cases() -> list[tuple[str, str, Any]]:
    """(cmd, argument, wrong value) for every argument of every command in the protocol."""
    cases = []
    for cmd, (_, rules) in sorted(REQUESTS.items()):
        for key, validate, _, _ in rules:
            wrong = WRONG.get(validate, STRING_WRONG)
            cases += [(cmd, key, value) for value in wrong]
    return cases


CASES = wrong_type_cases()


def test_every_argument_of_every_command_gets_wrong_type_cases():
    """The wrong-type table covers each argument the protocol defines."""
    covered = {(cmd, arg) for cmd, arg, _ in CASES}
    wanted = {(cmd, key) for cmd, (_, rules) in REQUESTS.items() for key, *_ in rules}
    assert covered == wanted and len(wanted) >= 20


@pytest.mark.parametrize("cmd", sorted({cmd for cmd, _, _ in CASES}))
async def test_wrong_type_for_any_argument_is_bad_args(server, cmd):
    """Each argument of `cmd` given a wrong JSON type is bad_args, and changes nothing."""
    anonymous = cmd in BEFORE_LOGIN
    peer = await (server.peer() if anonymous else server.user())
    frames = []
    for arg, value in ((a, v) for c, a, v in CASES if c == cmd):
        args = {k: v for k, v in valid_args(cmd).items() if v is not None}
        args[arg] = value
        if cmd == "login" and arg == "token":
            args.pop("password")
        frames.append({"cmd": cmd, **args})
    for frame, reply in zip(frames, await peer.pipeline(frames), strict=True):
        assert reply["ok"] is False and reply["error"]["code"] == "bad_args", (frame, reply)
    await still_serves(peer)
    if not anonymous:
        assert (await peer.ok("history", room="general"))["messages"] == []
        assert (await peer.ok("whois", username=peer.name))["user"]["bio"] == ""
    else:
        await peer.fails("auth_failed", "login", username="hostile_x", password=PASSWORD)


@pytest.mark.parametrize("cmd", sorted(c for c, (_, rules) in REQUESTS.items() if rules))
async def test_missing_required_arguments_are_bad_args(server, cmd):
    """Leaving out any one required argument, or sending it as null, is bad_args."""
    anonymous = cmd in BEFORE_LOGIN
    peer = await (server.peer() if anonymous else server.user())
    _, rules = REQUESTS[cmd]
    required = [key for key, _, is_required, _ in rules if is_required]
    for arg in required:
        args = {k: v for k, v in valid_args(cmd).items() if v is not None}
        without = {k: v for k, v in args.items() if k != arg}
        await peer.fails("bad_args", cmd, **without)
        await peer.fails("bad_args", cmd, **{**args, arg: None})
    await still_serves(peer)


@pytest.mark.parametrize("cmd", [1, 1.5, True, None, [], ["ping"], {}, {"ping": 1}])
async def test_cmd_that_is_not_a_string_is_bad_frame(server, cmd):
    """A `cmd` of any type but string is bad_frame, before and after login."""
    for peer in (await server.peer(), await server.user()):
        reply = await raw_reply(peer, orjson.dumps({"id": 1, "cmd": cmd}) + b"\n")
        assert_refused(reply, "bad_frame")
        await still_serves(peer)


@pytest.mark.parametrize("rid", [1.5, True, False, [], [1], {}, {"a": 1}, "x" * 65])
async def test_id_of_wrong_type_is_bad_args_and_not_echoed(server, rid):
    """An id of a wrong type or an over-long string is bad_args, before the command is looked at."""
    peer = await server.peer()
    for cmd in ("ping", "say", "nope"):
        reply = await raw_reply(peer, orjson.dumps({"id": rid, "cmd": cmd}) + b"\n")
        assert_refused(reply, "bad_args")
        assert "id" not in reply


# -- white space and frame size -----------------------------------------------


@pytest.mark.parametrize("blank", [b" ", b"\t", b"\r", b" \t"])
async def test_white_space_line_under_max_frame_is_ignored(server, blank):
    """A line of nearly 64 KiB of white space (newline included) gets no reply at all."""
    peer = await server.user()
    line = (blank * MAX_FRAME)[: MAX_FRAME - 1] + b"\n"
    assert len(line) == MAX_FRAME
    await peer.send_raw(line * 3)
    reply = await peer.request("ping")  # checks that the first reply is the ping's
    assert reply["ok"] is True and not peer.events


@pytest.mark.parametrize("blank", [b" ", b"\t", b" \r"])
async def test_white_space_line_over_max_frame_is_frame_too_large_and_closes(server, blank):
    """64 KiB of white space plus a newline is one byte too many: frame_too_large, then close."""
    peer = await server.user()
    other = await server.user()
    line = (blank * MAX_FRAME)[:MAX_FRAME] + b"\n"
    assert len(line) == MAX_FRAME + 1
    await peer.send_raw(line + b'{"cmd":"say","room":"general","text":"hidden"}\n')
    assert_refused(await peer.reply(), "frame_too_large")
    assert await peer.closed()
    assert (await other.ok("history", room="general"))["messages"] == []


# -- terminal escapes and other characters in text ------------------------------

ESCAPES = [
    "\x1b[31mred\x1b[0m",  # SGR colour
    "\x1b[2J\x1b[H",  # clear screen
    "\x1b]0;owned\x07",  # OSC window title, BEL-terminated
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1bP+q\x1b\\",  # DCS
    "\x9b31m",  # C1 CSI
    "\x9d0;title\x9c",  # C1 OSC ... ST
    "nel\x85",  # C1 next line
    "\x00nul",
    "del\x7f",
    "bell\x07",
    "cr\rcr",
]
TEXT_FIELDS = [
    ("say", "text", {"room": "general"}),
    ("dm", "text", {"to": "{me}"}),
    ("bio", "text", {}),
    ("create", "topic", {"room": "escapes"}),
    ("topic", "topic", {"room": "owned"}),
]


@pytest.mark.parametrize(
    "cmd,field,extra", TEXT_FIELDS, ids=[f"{c}.{f}" for c, f, _ in TEXT_FIELDS]
)
async def test_terminal_escapes_and_c1_controls_are_refused_in_every_text_field(
    server, cmd, field, extra
):
    """ANSI/OSC/DCS sequences and C0/C1 controls are bad_args in any text field; none is stored."""
    peer = await server.user()
    await peer.ok("create", room="owned")
    args = {k: v.replace("{me}", peer.name) for k, v in extra.items()}
    for text in ESCAPES:
        await peer.fails("bad_args", cmd, **args, **{field: text})
    assert (await peer.ok("history", room="general"))["messages"] == []
    assert (await peer.ok("dms", **{"with": peer.name}))["messages"] == []
    profile = (await peer.ok("whois", username=peer.name))["user"]
    assert profile["bio"] == ""
    rooms = {r["name"]: r for r in (await peer.ok("rooms"))["rooms"]}
    assert "escapes" not in rooms and rooms["owned"]["topic"] == ""


async def test_escapes_in_names_are_invalid_and_never_echoed(server):
    """Escapes in usernames and room names are refused, and error messages never echo them raw."""
    peer = await server.user()
    evil = "\x1b]0;owned\x07\u202e\x9b2J"
    assert_refused(await peer.request("join", room=evil), "invalid_room")
    assert_refused(await peer.request("whois", username=evil), "no_such_user")
    assert_refused(await peer.request("dm", to=evil, text="hi"), "no_such_user")
    assert_refused(await peer.request(evil), "unknown_command")
    anonymous = await server.peer()
    assert_refused(
        await anonymous.request("register", username=evil, password=PASSWORD), "invalid_username"
    )
    assert_refused(
        await anonymous.request("login", username=evil, password=PASSWORD), "auth_failed"
    )


BIDI = "\u202eevil\u202c \u2066iso\u2069 \u200fRLM \u200dZWJ \ufeffBOM \u2028LS x\u0301"


async def test_bidi_and_format_characters_are_stored_and_returned_verbatim(server):
    """Bidi overrides, isolates, ZWJ, BOM and line separators are text: kept exactly as sent."""
    alice, bob = await server.user(), await server.user()
    await alice.ok("say", room="general", text=BIDI)
    await alice.ok("dm", to=bob.name, text=BIDI + "\n\tsecond line")
    await alice.ok("bio", text=BIDI)
    await alice.ok("create", room="bidi", topic=BIDI)
    history = await bob.ok("history", room="general")
    assert [m["text"] for m in history["messages"]] == [BIDI]
    assert (await bob.event("message"))["text"] == BIDI
    dms = await bob.ok("dms", **{"with": alice.name})
    assert [m["text"] for m in dms["messages"]] == [BIDI + "\n\tsecond line"]
    assert (await bob.ok("whois", username=alice.name))["user"]["bio"] == BIDI
    rooms = {r["name"]: r for r in (await bob.ok("rooms"))["rooms"]}
    assert rooms["bidi"]["topic"] == BIDI


# -- connections --------------------------------------------------------------


async def _hostile_connection(host: str, port: int, local: str, mode: int) -> bool:
    """One short-lived connection that misbehaves in one of six ways; False if refused."""
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0))
    except OSError:
        return False
    try:
        if mode == 1:
            writer.write(b'{"cmd":"pi')  # half a frame, then gone
        elif mode == 2:
            writer.write(b'{"cmd":"ping"}\n' * 3)  # requests it never reads the answers to
        elif mode == 3:
            writer.write(b'{"cmd":"ping"}\n')
            await asyncio.wait_for(reader.readline(), 5)  # hello
            await asyncio.wait_for(reader.readline(), 5)  # pong
        elif mode == 4:
            writer.write(b"\x00\xff" * 2048)  # binary junk, no newline
        elif mode == 5:
            writer.write(b'{"cmd":"register","username":"x')
            await asyncio.sleep(0)
            writer.transport.abort()  # RST, mid-frame
            return True
        await writer.drain()
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return True


async def churn(running, count: int, batch: int = 100, first_address: int = 20) -> None:
    """Opens and drops `count` misbehaving connections, `batch` at a time, from many addresses.

    A batch spreads over 10 loopback addresses (10 connections each, far under
    the per-address limit) and consecutive batches use different addresses, so
    the limit never refuses one whose predecessors are still being closed.
    """
    for start in range(0, count, batch):
        jobs = []
        for i in range(start, min(count, start + batch)):
            address = f"127.0.0.{first_address + (i // 10) % 200}"
            jobs.append(_hostile_connection(running.host, running.port, address, i % 6))
        assert all(await asyncio.gather(*jobs))


async def test_three_thousand_hostile_connections_leave_no_trace(start_server):
    """3,000 connections that drop, stall mid-frame or reset: counters and fds return to zero."""
    running = await start_server()
    witness = await running.user()
    fds = open_fds()
    await churn(running, 3_000)
    assert await wait_until(
        lambda: (
            len(running.server.core.connections) == 1
            and sum(running.server.core.per_address.values()) == 1
        )
    )
    assert set(running.server.core.hub.sessions) == {witness.name.lower()}
    await still_serves(witness)
    await witness.ok("say", room="general", text="still here")
    assert open_fds() <= fds + 5
    await witness.close()
    assert await wait_until(lambda: quiet(running))


async def test_per_address_connection_limit_refuses_the_65th_and_frees_slots(start_server):
    """64 connections from one address are served; the 65th gets rate_limited and is closed."""
    running = await start_server()
    host, port = running.host, running.port
    crowd = [await Peer.connect(host, port, local_addr=("127.0.0.7", 0)) for _ in range(64)]
    for peer in crowd:
        assert (await peer.frame())["event"] == "hello"
    extra = await Peer.connect(host, port, local_addr=("127.0.0.7", 0))
    refused = await extra.frame()
    assert_refused(refused, "rate_limited")
    assert refused["error"]["retry_after"] > 0
    assert await extra.closed()
    elsewhere = await running.peer(local_addr=("127.0.0.8", 0))
    await still_serves(elsewhere)
    await crowd[0].close()
    assert await wait_until(lambda: running.server.core.per_address["127.0.0.7"] == 63)
    again = await Peer.connect(host, port, local_addr=("127.0.0.7", 0))
    assert (await again.frame())["event"] == "hello"
    await still_serves(again)
    for peer in [*crowd[1:], extra, again]:
        await peer.close()
    await elsewhere.close()
    assert await wait_until(lambda: quiet(running))


async def test_slow_client_is_cut_off_at_login_timeout_while_others_are_served(start_server):
    """A peer trickling one byte at a time is closed at login_timeout; others get prompt replies."""
    running = await start_server(login_timeout=1.0)
    member = await running.user()
    slow = await running.peer()
    started = time.monotonic()
    payload = b'{"cmd":"login","username":"slow","password":"................"}\n'
    latencies = []
    closed_after = None
    for byte in payload[:12]:  # bounded: far fewer bytes than the frame
        with contextlib.suppress(ConnectionError):
            await slow.send_raw(bytes([byte]))
        t0 = time.monotonic()
        await still_serves(member)
        latencies.append(time.monotonic() - t0)
        with contextlib.suppress(TimeoutError):
            frame = await slow.frame(timeout=0.25)
            assert_refused(frame, "auth_required")
            assert await slow.closed()
            closed_after = time.monotonic() - started
            break
    assert closed_after is not None and 0.9 <= closed_after < 2.5, closed_after
    assert max(latencies) < 0.5, latencies
    assert await wait_until(lambda: len(running.server.core.connections) == 1)


async def test_slow_client_after_login_gets_its_frame_answered_byte_by_byte(server):
    """A logged-in peer may trickle a frame a byte at a time; it is answered once complete."""
    peer = await server.user()
    for byte in b'{"id":42,"cmd":"ping"}\n':
        await peer.send_raw(bytes([byte]))
        await asyncio.sleep(0.002)
    reply = await peer.reply()
    assert reply["ok"] is True and reply["id"] == 42


async def test_sixty_four_frames_before_login_then_closed(server):
    """Before login the 64th frame is answered, then auth_required and close; bad frames count."""
    peer = await server.peer()
    frames = b'{"cmd":"ping"}\n' * 40 + b"not json\n" * 23 + b'{"cmd":"say"}\n'
    await peer.send_raw(frames + b'{"cmd":"ping"}\n' * 5)
    replies = [await peer.reply() for _ in range(64)]
    assert [r["ok"] for r in replies] == [True] * 40 + [False] * 24
    assert_refused(replies[-1], "auth_required")
    assert_refused(await peer.reply(), "auth_required")
    assert await peer.closed()
    assert not any("ok" in f for f in peer.events), peer.events  # none of the 5 extra pings


async def test_sixty_three_frames_then_login_keeps_the_connection(server):
    """63 frames before login leave room to log in; after login the budget no longer applies."""
    peer = await server.peer()
    await peer.pipeline([{"cmd": "ping"}] * 63)
    await peer.ok("register", username="patient", password=PASSWORD)
    await peer.burst([{"cmd": "ping"}] * 100)


async def test_login_timeout_closes_a_silent_anonymous_connection_only(start_server):
    """An anonymous peer that sends nothing is closed at login_timeout; a logged-in one stays."""
    clock = ManualClock(time.time())
    running = await start_server(login_timeout=30.0, clock=clock)
    member = await running.user()
    silent = await running.peer()
    clock.advance(29.0)
    await still_serves(silent)  # not before its deadline
    clock.advance(1.0)
    frame = await silent.frame(timeout=3)
    assert_refused(frame, "auth_required")
    assert "timed out" in frame["error"]["message"]
    assert await silent.closed()
    clock.advance(60.0)
    await still_serves(member)


async def test_login_attempts_with_malformed_names_are_not_remembered(start_server):
    """Logins naming no possible account leave no per-account state, however long the name."""
    running = await start_server(login_attempts_per_minute=1000)
    for i in range(10):
        peer = await running.peer()
        for j in range(3):
            name = f"{i}-{j}-" + "\u00e9" * 30_000
            await peer.fails("auth_failed", "login", username=name, password="whatever1")
        await peer.fails("auth_failed", "login", username="x" * 25, password="whatever1")
        await peer.close()
    assert len(running.server.core.policy.failures_by_account) == 0
    peer = await running.peer()
    await peer.fails("auth_failed", "login", username="maybe_someone", password="whatever1")
    assert len(running.server.core.policy.failures_by_account) == 1


# -- memory -------------------------------------------------------------------


async def _heavy_connection(host: str, port: int, local: str) -> None:
    """Holds ~60 KiB of an unfinished frame on the server, then drops it."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0))
    try:
        await reader.readline()  # hello
        writer.write(b'{"cmd":"ping","pad":"' + b"x" * 60_000)
        await writer.drain()
        await asyncio.sleep(0.02)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def heavy_churn(running, count: int, batch: int = 50) -> None:
    for start in range(0, count, batch):
        await asyncio.gather(
            *(
                _heavy_connection(running.host, running.port, f"127.0.1.{1 + (i // 10) % 200}")
                for i in range(start, min(count, start + batch))
            )
        )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_memory_returns_to_baseline_after_hostile_churn(start_server):
    """After 1,300 hostile connections (300 with 60 KB half-frames) memory is back within 5 MB."""
    running = await start_server()
    member = await running.user()
    await churn(running, 300, first_address=40)  # warm up caches and pools
    await heavy_churn(running, 50)
    assert await wait_until(lambda: len(running.server.core.connections) == 1)
    gc.collect()
    tracemalloc.start()
    try:
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        rss_before = rss_bytes()
        await churn(running, 1_000, first_address=60)
        await heavy_churn(running, 300)
        _, peak = tracemalloc.get_traced_memory()
        assert await wait_until(lambda: len(running.server.core.connections) == 1)
        await asyncio.sleep(0.1)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_after = rss_bytes()
    assert peak - before > 2_000_000  # the unfinished frames really were held meanwhile
    assert after - before < 5_000_000, (before, after, peak)
    assert rss_after - rss_before < 16 * 1024 * 1024, (rss_before, rss_after)
    await still_serves(member)


# -- the real binary ------------------------------------------------------------


def test_real_server_binary_survives_hostile_input_without_a_traceback(tmp_path):
    """`nexus-server` answers hostile lines with codes, keeps serving, and logs no traceback."""
    data = tmp_path / "nexus_data.json"
    hostile = [
        b'{"cmd":"ping","x":"\xff"}\n',
        b'{"cmd":"ping","x":"\\ud800"}\n',
        b'{"cmd":"ping","x":NaN}\n',
        b'{"cmd":"ping","x":1e999}\n',
        b'{"cmd":"ping","x":' + str(10**400).encode() + b"}\n",
        b"[" * 10_000 + b"\n",
        b'{"cmd":"ping","cmd":[]}\n',
        b'{"id":{},"cmd":"ping"}\n',
        b'{"cmd":"login","username":[],"password":{}}\n',
        b'{"cmd":"login","username":"' + b"\xc3\xa9" * 20_000 + b'","password":"whatever1"}\n',
    ]

    async def attack(port: int) -> None:
        peer = await Peer.connect("127.0.0.1", port)
        assert (await peer.frame())["event"] == "hello"
        for line in hostile:
            reply = await raw_reply(peer, line)
            assert reply["ok"] is False and reply["error"]["code"] in ERROR_CODES, reply
            assert reply["error"]["code"] != "internal", reply
        await peer.ok("register", username="survivor", password=PASSWORD)
        await peer.ok("say", room="general", text="\u202estill here")
        await peer.send_raw(b" " * MAX_FRAME + b"\n")
        assert_refused(await peer.reply(), "frame_too_large")
        assert await peer.closed()
        again = await Peer.connect("127.0.0.1", port)
        assert (await again.frame())["event"] == "hello"
        await again.ok("login", username="survivor", password=PASSWORD)
        history = await again.ok("history", room="general")
        assert [m["text"] for m in history["messages"]] == ["\u202estill here"]
        await again.close()

    with ServerProcess(data) as proc:
        asyncio.run(attack(proc.port))
        assert proc.stop() == 0
        stderr = proc.proc.stderr.read()
    log = data.with_suffix(".log").read_text(encoding="utf-8")
    assert "Traceback" not in stderr and "Traceback" not in log, (stderr, log)
    assert " ERROR " not in log, log


# -- replies that would not fit -------------------------------------------------

HUGE = "\U0001f600" * 4_000  # the longest message: 16 KB of UTF-8


async def fill(peer: Peer, count: int, **target: str) -> None:
    """Sends `count` of the largest messages, 20 at a time so the echoes are read as they come."""
    cmd = "say" if "room" in target else "dm"
    for _ in range(count // 20):
        await peer.burst([{"cmd": cmd, **target, "text": HUGE}] * 20)
        peer.events.clear()


async def test_history_of_huge_messages_is_paged_not_a_disconnect(server):
    """500 messages of 16 KB (8 MB) would pass the outbound cap: the page is cut, more is true."""
    peer = await server.user()
    await fill(peer, 500, room="general")
    page = await peer.ok("history", room="general", limit=500)
    seqs = [m["seq"] for m in page["messages"]]
    assert seqs and seqs[-1] == 500 and page["more"] is True
    assert seqs == list(range(seqs[0], 501)) and len(seqs) < 500
    assert sum(len(orjson.dumps(m)) for m in page["messages"]) <= 1024 * 1024 // 2
    got, before = len(seqs), seqs[0]
    for _ in range(500):  # bounded: paging back must reach seq 1
        page = await peer.ok("history", room="general", limit=500, before=before)
        if not page["messages"]:
            break
        got += len(page["messages"])
        before = page["messages"][0]["seq"]
    assert got == 500 and before == 1
    joined = await (await server.user()).ok("join", room="general")
    assert joined["history"][-1]["seq"] == 500
    await still_serves(peer)


async def test_dms_of_huge_messages_are_paged_not_a_disconnect(server):
    """A DM page of 200 messages of 16 KB is cut to fit; the asker stays connected."""
    alice, bob = await server.user(), await server.user()
    await fill(alice, 200, to=bob.name)
    page = await bob.ok("dms", **{"with": alice.name}, limit=200)
    seqs = [m["seq"] for m in page["messages"]]
    assert seqs[-1] == 200 and page["more"] is True and len(seqs) < 200
    await still_serves(bob)


async def test_a_page_always_holds_one_message_even_past_the_budget(start_server):
    """With a budget smaller than one message, each page holds one, so paging still advances."""
    running = await start_server(max_outbound=6_000)  # budget 3,000 bytes; a message ~4,100
    peer = await running.user()
    for _ in range(3):
        await peer.ok("say", room="general", text="x" * 4_000)
    pages = []
    before = None
    for _ in range(4):
        args = {} if before is None else {"before": before}
        page = await peer.ok("history", room="general", limit=3, **args)
        pages.append(([m["seq"] for m in page["messages"]], page["more"]))
        if not page["messages"]:
            break
        before = page["messages"][0]["seq"]
    assert pages == [([3], True), ([2], True), ([1], False), ([], False)]
