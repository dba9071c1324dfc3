"""The command table: parsing typed lines, /help and completion all read it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexus.client.commands import (
    COMMANDS,
    UsageError,
    _ref,
    completions,
    describe,
    execute,
    parse,
)
from nexus.client.connection import ChatConnection
from nexus.client.state import ChatState
from nexus.errors import NexusError
from tests.client.conftest import HELLO, profile, room_info, scripted_server


def test_plain_text_is_said_in_the_current_room():
    """A line without a leading slash is /say with the whole line, spaces kept."""
    cmd, args = parse("hello  there ")
    assert cmd.name == "say"
    assert args == {"text": "hello  there "}


def test_double_slash_says_a_literal_leading_slash():
    """`//shrug` sends the text `/shrug` instead of running a command."""
    cmd, args = parse("//shrug")
    assert (cmd.name, args) == ("say", {"text": "/shrug"})


def test_blank_lines_do_nothing():
    """An empty or all-space line is not sent."""
    assert parse("") is None
    assert parse("   ") is None


def test_required_optional_and_rest_arguments_follow_the_usage_string():
    """`<room> [topic...]`: the first word, then the rest of the line with its spaces."""
    assert parse("/create den a  cosy place")[1] == {"room": "den", "topic": "a  cosy place"}
    assert parse("/create den")[1] == {"room": "den", "topic": None}
    assert parse("/dm mike hi there")[1] == {"user": "mike", "text": "hi there"}
    assert parse("/JOIN tech")[0].name == "join"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/nope", "unknown command /nope"),
        ("/join", "usage: /join <room>"),
        ("/dm mike", "usage: /dm <user> <text...>"),
        ("/rooms extra", "too many arguments"),
    ],
)
def test_bad_command_lines_raise_one_clear_message(line, message):
    """Unknown commands, missing and extra arguments each say what is wrong."""
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse(line)


def test_every_command_the_spec_asks_for_is_in_the_table_with_help():
    """The one table holds each command with a usage line and help text."""
    wanted = "join leave create delete topic rooms online dm dms history whois bio clear help quit"
    assert set(wanted.split()) <= set(COMMANDS)
    assert all(cmd.help and cmd.synopsis.startswith("/") for cmd in COMMANDS.values())


@pytest.fixture
def state() -> ChatState:
    state = ChatState("ana", "localhost:9999")
    state.add_room(room_info("general"))
    state.known_rooms.update({"tech", "random"})
    state.known_users.update({"Mike", "mia", "bob"})
    return state


def test_tab_completes_command_names(state):
    """A slash word completes to the commands starting with it."""
    assert completions("/d", state) == ("/d", ["/delete", "/dm", "/dms", "/deop"])


def test_tab_completes_rooms_where_the_table_says_room(state):
    """The argument named `room` completes room names, with or without `#`."""
    assert completions("/join t", state) == ("t", ["tech"])
    assert completions("/leave #g", state) == ("#g", ["general"])


def test_tab_completes_user_names_in_commands_and_plain_text(state):
    """`user` arguments and words of plain text complete names, ignoring case."""
    assert completions("/whois m", state) == ("m", ["mia", "Mike"])
    assert completions("hey @bo", state) == ("@bo", ["bob"])
    assert completions("/dm bob hel", state) == ("hel", [])


async def test_a_reply_missing_its_fields_is_reported_not_raised(state):
    """A server reply without the promised fields ends as one error line."""
    async with scripted_server(HELLO, answer=lambda request: {"ok": True}) as port:
        conn = ChatConnection()
        await conn.connect("127.0.0.1", port)
        await execute(SimpleNamespace(state=state, request=conn.request), "/rooms")
        await conn.close()
    assert state.pane.entries[-1].plain.endswith(
        " ! the server sent a malformed reply to 'rooms' (internal)"
    )


async def test_names_on_a_server_without_members_lists_who_is_online(state):
    """A server that answers `members` with unknown_command: /names falls back to
    the `online` list and says it shows online members only."""

    def answer(request):
        if request["cmd"] == "members":
            return {"ok": False, "error": {"code": "unknown_command", "message": "no"}}
        return {"ok": True, "users": [profile("bob", ["general"]), profile("cy", ["tech"])]}

    async with scripted_server(HELLO, answer=answer) as port:
        conn = ChatConnection()
        await conn.connect("127.0.0.1", port)
        await execute(SimpleNamespace(state=state, request=conn.request), "/names #general")
        await conn.close()
    shown = state.pane.entries[-1].plain
    assert shown.endswith("#general (online only) (2 online, 2 members): ana  bob")


@given(st.text(max_size=200))
def test_any_typed_line_parses_or_gives_a_usage_message(line):
    """No typed line makes the parser fail with anything but a UsageError."""
    try:
        parsed = parse(line)
    except UsageError as exc:
        assert str(exc)
    else:
        assert parsed is None or parsed[0].name in COMMANDS


def test_refusals_read_as_message_code_and_when_to_retry():
    """A server error shows its message and code; rate limits say when to try again."""
    assert describe(NexusError("not_owner", "only the owner")) == "only the owner (not_owner)"
    limited = NexusError("rate_limited", "slow down", retry_after=1.5)
    assert describe(limited) == "slow down (rate_limited), try again in 1.5 s"


def test_tabs_separate_a_command_from_its_arguments():
    """`/join<Tab>tech` works like `/join tech`."""
    assert parse("/join\ttech")[1] == {"room": "tech"}


def test_tab_completes_the_conversation_commands_and_goto_buffers(state):
    """The new commands come from the one table: names complete, /goto completes buffers."""
    assert completions("/e", state) == ("/e", ["/edit", "/erase"])
    assert sorted(completions("/re", state)[1]) == ["/react", "/reconnect", "/reply"]
    assert completions("/unr", state)[1] == ["/unreact"]
    assert completions("/goto #ge", state) == ("#ge", ["#general"])


def test_help_lists_every_conversation_command():
    """/help's table is the command table: each new command has a synopsis and a line."""
    for name in ("me", "reply", "edit", "erase", "react", "unreact", "search", "goto"):
        assert COMMANDS[name].help
    assert COMMANDS["edit"].synopsis == "/edit [n] [text...]"
    for name in ("mentions", "away", "password"):
        assert name in COMMANDS


@pytest.mark.parametrize(
    ("n", "rest", "expected"),
    [
        ("5", "new text", (5, "new text")),
        ("new", "text", (None, "new text")),
        ("12", None, (12, None)),
        (None, None, (None, None)),
        ("👍", None, (None, "👍")),
    ],
)
def test_a_first_word_of_digits_is_the_message_number(n, rest, expected):
    """`/edit 5 new text` edits 5; `/edit new text` my last one; `/react 👍` the newest."""
    assert _ref(n, rest) == expected


@pytest.mark.parametrize(
    "line", ["/buffer ²", "/buffer move ²", "/history general ²", "/threads ²", "/goto ³"]
)
async def test_a_number_in_another_script_is_a_usage_error_not_a_crash(state, line):
    """`²` passes str.isdigit but not int(): such an argument got a traceback
    out of the command; it is a usage line, and nothing is asked."""

    async def request(cmd, **args):
        raise AssertionError(f"asked {cmd} {args}")

    await execute(SimpleNamespace(state=state, request=request), line)
    shown = state.pane.entries[-1].plain
    assert " ! " in shown and ("usage" in shown or "number" in shown or "no " in shown), shown
