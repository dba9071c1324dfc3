"""Threads over real sockets, on every engine (protocol 3, section 1):
replies and their events, the rules on the root, summaries, thread pages,
timelines without replies, following, the inbox of threads and its read
markers, privacy, and all of it surviving a restart."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from nexus.server.store import postgres, tables
from tests.conftest import PASSWORD, Running, StartServer
from tests.wire import Peer


def seqs(page: dict) -> list[int]:
    return [m["seq"] for m in page["messages"]]


async def trio(running: Running) -> tuple[Peer, Peer, Peer]:
    """ana, bob and cyd, members of #den (ana owns it)."""
    ana, bob, cyd = [await running.user(name) for name in ("ana", "bob", "cyd")]
    await ana.ok("create", room="den")
    for peer in (bob, cyd):
        await peer.ok("join", room="den")
    return ana, bob, cyd


async def test_a_reply_goes_to_every_member_and_stays_out_of_the_timeline(
    start_server: StartServer,
) -> None:
    running = await start_server()
    ana, bob, cyd = await trio(running)
    root = await ana.ok("say", room="den", text="lunch?")
    reply = await bob.ok("say", room="den", text="yes", thread=root["seq"])
    assert reply["seq"] == 2  # the room's next seq
    for peer in (ana, bob, cyd):
        event = await peer.event("message", seq=2)
        assert event["thread"] == 1 and "broadcast" not in event and event["text"] == "yes"
    also = await cyd.ok("say", room="den", text="me too", thread=1, broadcast=True)
    event = await ana.event("message", seq=also["seq"])
    assert event["thread"] == 1 and event["broadcast"] is True
    await ana.ok("say", room="den", text="after")
    history = await cyd.ok("history", room="den")
    assert seqs(history) == [1, 3, 4]  # the plain reply is only in the thread
    summary = history["messages"][0]["thread_summary"]
    assert summary["replies"] == 2 and summary["participants"] == ["cyd", "bob"]
    assert summary["last"] == history["messages"][1]["ts"]
    joined = await (await running.user("dee")).ok("join", room="den")
    assert [m["seq"] for m in joined["history"]] == [1, 3, 4]
    page = await ana.ok("thread", room="den", seq=1)
    assert page["root"]["seq"] == 1 and page["root"]["thread_summary"]["replies"] == 2
    assert seqs(page) == [2, 3] and page["more"] is False
    # Paging around and after a message counts timeline messages only.
    assert seqs(await cyd.ok("history", room="den", after=1, limit=1)) == [3]
    assert seqs(await cyd.ok("history", room="den", around=2, limit=3)) == [1, 3, 4]


async def test_the_rules_on_the_root(start_server: StartServer) -> None:
    running = await start_server()
    ana, bob, cyd = await trio(running)
    await ana.ok("say", room="den", text="root")
    await bob.ok("say", room="den", text="reply", thread=1)
    await ana.ok("say", room="den", text="gone")
    await ana.ok("erase", room="den", seq=3)
    await bob.fails("no_such_message", "say", room="den", text="x", thread=99)
    await bob.fails("no_such_message", "say", room="den", text="x", thread=3)  # erased
    await bob.fails("bad_args", "say", room="den", text="x", thread=2)  # a reply: one level
    await bob.fails("bad_args", "say", room="den", text="x", broadcast=True)
    await bob.fails("bad_args", "say", room="den", text="x", thread="1")
    # A reply's address opens the thread it is in.
    opened = await bob.ok("thread", room="den", seq=2)
    assert opened["root"]["seq"] == 1 and seqs(opened) == [2]
    await bob.fails("no_such_message", "thread", room="den", seq=99)
    await bob.fails("bad_args", "thread", room="den", seq=1, limit=501)
    await bob.fails("bad_args", "thread", seq=1)
    await bob.fails("bad_args", "threads", limit=101)
    await bob.fails("bad_args", "follow", room="den", seq=2)
    await ana.ok("mute", room="den", username="cyd")
    await cyd.fails("muted", "say", room="den", text="shh", thread=1)
    await ana.ok("create", room="secret", private=True)
    await ana.ok("say", room="secret", text="the plan")
    await ana.ok("say", room="secret", text="step one", thread=1)
    await bob.fails("not_member", "say", room="secret", text="x", thread=1)
    await bob.fails("not_member", "thread", room="secret", seq=1)
    await bob.fails("not_member", "follow", room="secret", seq=1)
    await bob.fails("not_member", "read", room="secret", seq=2, thread=1)
    hits = await bob.ok("search", query="step")
    assert hits["results"] == []


async def test_summaries_count_out_erased_replies_and_an_erased_root_keeps_its_thread(
    start_server: StartServer,
) -> None:
    running = await start_server()
    ana, bob, cyd = await trio(running)
    await ana.ok("say", room="den", text="root")
    for peer, text in ((bob, "b1"), (cyd, "c1"), (bob, "b2")):
        await peer.ok("say", room="den", text=text, thread=1)
    await bob.ok("erase", room="den", seq=4)
    page = await ana.ok("thread", room="den", seq=1)
    assert page["root"]["thread_summary"] == {
        "replies": 2,
        "last": page["messages"][1]["ts"],
        "participants": ["cyd", "bob"],
    }
    assert page["messages"][2]["erased"] is True and page["messages"][2]["thread"] == 1
    await ana.ok("erase", room="den", seq=1)
    erased = await cyd.event("erased", timeout=5)
    while erased["message"]["seq"] != 1:
        erased = await cyd.event("erased")
    assert erased["message"]["thread_summary"]["replies"] == 2
    history = await cyd.ok("history", room="den")
    assert history["messages"][0]["erased"] is True
    assert history["messages"][0]["thread_summary"]["replies"] == 2
    page = await cyd.ok("thread", room="den", seq=1)
    assert page["root"]["erased"] is True and seqs(page) == [2, 3, 4]
    for seq in (2, 3):
        await ana.ok("erase", room="den", seq=seq)
    history = await cyd.ok("history", room="den")
    assert "thread_summary" not in history["messages"][0]  # no reply left to count


async def test_every_message_a_client_sees_carries_the_summary(start_server: StartServer) -> None:
    running = await start_server()
    ana, bob, _ = await trio(running)
    await ana.ok("say", room="den", text="root about llamas")
    await bob.ok("say", room="den", text="llamas reply @ana", thread=1)
    await ana.ok("edit", room="den", seq=1, text="root about alpacas")
    edited = await bob.event("edited")
    assert edited["message"]["thread_summary"]["replies"] == 1
    found = await bob.ok("search", query="alpacas")
    assert found["results"][0]["thread_summary"]["participants"] == ["bob"]
    replies = await bob.ok("search", query="llamas")
    assert [m["seq"] for m in replies["results"]] == [2]  # replies are searched too
    assert replies["results"][0]["thread"] == 1
    mentions = await ana.ok("mentions")
    assert [m["seq"] for m in mentions["messages"]] == [2]
    await ana.ok("pin", room="den", seq=1)
    pinned = await bob.ok("pins", room="den")
    assert pinned["messages"][0]["thread_summary"]["replies"] == 1


async def test_thread_pages(start_server: StartServer, engine: str) -> None:
    # The table engines keep 10 a room in memory and read the rest from
    # disk, through the index of threads; json keeps all it keeps in memory.
    running = await start_server(history_limit=100 if engine == "json" else 10)
    ana, bob, _ = await trio(running)
    await ana.ok("say", room="den", text="root")
    await bob.burst(
        [{"cmd": "say", "room": "den", "text": f"r{i}", "thread": 1} for i in range(30)]
    )
    for i in range(5):
        await ana.ok("say", room="den", text=f"top {i}")
    history = await bob.ok("history", room="den", limit=3)
    assert seqs(history) == [34, 35, 36] and history["more"] is True
    page = await bob.ok("thread", room="den", seq=1, limit=5)
    assert seqs(page) == [27, 28, 29, 30, 31] and page["more"] is True
    page = await bob.ok("thread", room="den", seq=1, limit=5, before=27)
    assert seqs(page) == [22, 23, 24, 25, 26] and page["more"] is True
    page = await bob.ok("thread", room="den", seq=1, limit=5, before=6)
    assert seqs(page) == [2, 3, 4, 5] and page["more"] is False
    assert page["root"]["thread_summary"]["replies"] == 30
    history = await bob.ok("history", room="den", limit=3, before=34)
    assert seqs(history) == [1, 32, 33] and history["more"] is False
    assert history["messages"][0]["thread_summary"]["replies"] == 30
    around = await bob.ok("history", room="den", around=20, limit=3)
    assert seqs(around) == [1, 32, 33]


async def test_pages_with_replies_hold_every_message(
    start_server: StartServer, engine: str
) -> None:
    """`replies: true` pages every message of a room or conversation, thread
    replies in seq order among the rest: how a reader that missed some
    catches up (tail after moving to another node). From memory and, on the
    table engines, from disk past the window."""
    running = await start_server(history_limit=100 if engine == "json" else 4)
    ana, bob, _ = await trio(running)
    await ana.ok("say", room="den", text="root")
    for i in range(6):
        await bob.ok("say", room="den", text=f"r{i}", thread=1, broadcast=i == 3)
        await ana.ok("say", room="den", text=f"top {i}")  # 2..13: replies even, top odd
    everything = list(range(1, 14))
    page = await bob.ok("history", room="den", limit=50, replies=True)
    assert seqs(page) == everything and page["more"] is False
    page = await bob.ok("history", room="den", limit=4, before=12, replies=True)
    assert seqs(page) == [8, 9, 10, 11] and page["more"] is True
    page = await bob.ok("history", room="den", after=3, limit=4, replies=True)
    assert seqs(page) == [4, 5, 6, 7] and page["more_after"] is True and page["more"] is True
    page = await bob.ok("history", room="den", after=9, limit=50, replies=True)
    assert seqs(page) == [10, 11, 12, 13] and page["more_after"] is False
    assert page["messages"][0]["thread"] == 1
    page = await bob.ok("history", room="den", around=6, limit=3, replies=True)
    assert seqs(page) == [5, 6, 7]
    # Without it, as before: the timeline (the broadcast reply, 8, is on it).
    page = await bob.ok("history", room="den", after=3, limit=4)
    assert seqs(page) == [5, 7, 8, 9]
    await bob.fails("bad_args", "history", room="den", replies="yes")
    await ana.ok("dm", to="bob", text="root")
    await ana.ok("dm", to="bob", text="reply", thread=1)
    await ana.ok("dm", to="bob", text="top")
    page = await bob.ok("dms", after=0, replies=True, **{"with": "ana"})
    assert seqs(page) == [1, 2, 3]
    assert seqs(await bob.ok("dms", after=0, **{"with": "ana"})) == [1, 3]


@pytest.mark.engines("json")
async def test_a_root_trimmed_away_takes_its_thread(start_server: StartServer) -> None:
    running = await start_server(history_limit=4)
    ana, bob, _ = await trio(running)
    await ana.ok("say", room="den", text="root")
    for i in range(3):
        await bob.ok("say", room="den", text=f"r{i}", thread=1)
    await bob.ok("say", room="den", text="top")  # 5: the root goes
    await bob.fails("no_such_message", "thread", room="den", seq=1)
    await bob.fails("no_such_message", "say", room="den", text="late", thread=1)
    await ana.ok("say", room="den", text="a")
    await ana.ok("say", room="den", text="b")  # 7: replies 2 and 3 go too
    assert (await bob.ok("history", room="den"))["messages"][0]["seq"] == 5


async def test_threads_in_a_conversation(start_server: StartServer) -> None:
    running = await start_server()
    ana, bob = await running.user("ana"), await running.user("bob")
    await ana.ok("dm", to="bob", text="root")
    await bob.event("dm")
    await bob.ok("dm", to="ana", text="reply", thread=1)
    for peer in (ana, bob):
        event = await peer.event("dm", seq=2)
        assert event["thread"] == 1
    await ana.ok("dm", to="bob", text="top")
    page = await bob.ok("dms", **{"with": "ana"})
    assert seqs(page) == [1, 3] and page["messages"][0]["thread_summary"]["replies"] == 1
    thread = await ana.ok("thread", seq=1, **{"with": "bob"})
    assert seqs(thread) == [2]
    await ana.fails("bad_args", "dm", to="bob", text="x", thread=2)
    await ana.fails("no_such_message", "dm", to="bob", text="x", thread=9)
    eve = await running.user("eve")
    await eve.fails("no_such_message", "thread", seq=1, **{"with": "bob"})
    listed = await ana.ok("threads")
    assert [t["root"]["seq"] for t in listed["threads"]] == [1]
    assert listed["threads"][0]["unread"] == 1 and listed["threads"][0]["root"]["to"] == "bob"


async def test_following_and_the_inbox_of_threads(start_server: StartServer) -> None:
    running = await start_server()
    ana, bob, cyd = await trio(running)
    dee = await running.user("dee")
    await ana.ok("say", room="den", text="first root")  # 1
    await ana.ok("say", room="den", text="second root")  # 2
    await bob.ok("say", room="den", text="on the first", thread=1)  # 3
    await bob.ok("say", room="den", text="on the second @cyd", thread=2)  # 4
    # ana wrote both roots: every reply by others is unread; bob replied: read.
    listed = (await ana.ok("threads"))["threads"]
    assert [(t["root"]["seq"], t["unread"]) for t in listed] == [(2, 1), (1, 1)]
    assert listed[0]["last"] > listed[1]["last"]
    assert [(t["root"]["seq"], t["unread"]) for t in (await bob.ok("threads"))["threads"]] == [
        (2, 0),
        (1, 0),
    ]
    # cyd was mentioned in the second: from just before that reply.
    assert [(t["root"]["seq"], t["unread"]) for t in (await cyd.ok("threads"))["threads"]] == [
        (2, 1)
    ]
    assert (await dee.ok("threads"))["threads"] == []  # no member, never named
    login = await running.peer()
    unread = (await login.ok("login", username="ana", password=PASSWORD))["unread"]
    assert unread["threads"] == 2
    assert unread["rooms"] == {}  # replies count in their threads, not in the room
    # read with thread: the marker moves, capped at the newest reply; the
    # user's other sessions hear it.
    moved = await ana.ok("read", room="den", seq=99, thread=1)
    assert moved["seq"] == 3
    event = await login.event("read")
    assert event == {"event": "read", "room": "den", "seq": 3, "thread": 1}
    assert (await ana.ok("read", room="den", seq=1, thread=1))["seq"] == 3  # never back
    assert [t["unread"] for t in (await ana.ok("threads"))["threads"]] == [1, 0]
    # follow off: gone from the inbox, and mentions do not bring it back...
    assert (await cyd.ok("follow", room="den", seq=2, on=False))["following"] is False
    await ana.ok("say", room="den", text="again @cyd", thread=2)  # 5
    assert (await cyd.ok("threads"))["threads"] == []
    # ...until they reply there again.
    await cyd.ok("say", room="den", text="fine", thread=2)  # 6
    assert [(t["root"]["seq"], t["unread"]) for t in (await cyd.ok("threads"))["threads"]] == [
        (2, 0)
    ]
    # follow: a reader starts at the newest reply then; a reply after it is unread.
    assert (await dee.ok("follow", room="den", seq=1))["following"] is True
    await bob.ok("say", room="den", text="more", thread=1)  # 7
    assert [(t["root"]["seq"], t["unread"]) for t in (await dee.ok("threads"))["threads"]] == [
        (1, 1)
    ]
    # Following a root with no replies yet lists it by the root's time.
    await ana.ok("say", room="den", text="quiet root")  # 8
    await dee.ok("follow", room="den", seq=8)
    listed = (await dee.ok("threads"))["threads"]
    assert [t["root"]["seq"] for t in listed] == [8, 1] and listed[0]["unread"] == 0
    assert (await dee.ok("threads", limit=1))["threads"][0]["root"]["seq"] == 8
    # Saying off where one only read keeps mentions from bringing it in.
    await dee.ok("join", room="den")  # a member: a mention would make them follow
    await dee.ok("read", room="den", seq=99, thread=2)
    await dee.ok("follow", room="den", seq=2, on=False)
    await ana.ok("say", room="den", text="@dee look", thread=2)
    assert 2 not in [t["root"]["seq"] for t in (await dee.ok("threads"))["threads"]]
    # Leaving a private room takes its threads out of the inbox.
    await ana.ok("create", room="secret", private=True)
    await ana.ok("invite", room="secret", username="bob")
    await bob.ok("join", room="secret")
    await bob.ok("say", room="secret", text="hush")
    await ana.ok("say", room="secret", text="ok", thread=1)
    assert "secret" in [t["root"]["room"] for t in (await bob.ok("threads"))["threads"]]
    await bob.ok("leave", room="secret")
    assert "secret" not in [t["root"]["room"] for t in (await bob.ok("threads"))["threads"]]


async def test_summaries_follows_and_markers_survive_a_restart(start_server: StartServer) -> None:
    running = await start_server(history_limit=5)
    ana, bob, cyd = await trio(running)
    await ana.ok("say", room="den", text="root")
    await bob.burst([{"cmd": "say", "room": "den", "text": f"r{i}", "thread": 1} for i in range(3)])
    await bob.ok("say", room="den", text="shout", thread=1, broadcast=True)
    await ana.ok("read", room="den", seq=3, thread=1)
    await cyd.ok("follow", room="den", seq=1)
    await ana.ok("dm", to="bob", text="dm root")
    await bob.ok("dm", to="ana", text="dm reply", thread=1)
    await bob.ok("follow", seq=1, on=False, **{"with": "ana"})
    data = running.server.config.data
    await running.close()
    again = await start_server(data, history_limit=5)
    ana, bob, cyd = [await again.user(n, register=False) for n in ("ana", "bob", "cyd")]
    history = await cyd.ok("history", room="den")
    assert seqs(history) == [1, 5]
    assert history["messages"][0]["thread_summary"]["replies"] == 4
    assert history["messages"][1]["broadcast"] is True
    assert seqs(await cyd.ok("thread", room="den", seq=1)) == [2, 3, 4, 5]
    listed = (await ana.ok("threads"))["threads"]
    assert [(t["root"].get("room"), t["unread"]) for t in listed] == [(None, 1), ("den", 2)]
    assert [t["unread"] for t in (await cyd.ok("threads"))["threads"]] == [0]
    assert [t["root"].get("room") for t in (await bob.ok("threads"))["threads"]] == ["den"]
    unread = (await (await again.peer()).ok("login", username="ana", password=PASSWORD))["unread"]
    assert unread["threads"] == 2 and unread["dms"] == {}


async def test_a_thread_reply_reaches_the_page_of_its_address(start_server: StartServer) -> None:
    """A message address names a reply like any message: edit, react, erase."""
    running = await start_server()
    ana, bob, _ = await trio(running)
    await ana.ok("say", room="den", text="root")
    await bob.ok("say", room="den", text="typo", thread=1)
    await bob.ok("edit", room="den", seq=2, text="fixed")
    edited = await ana.event("edited")
    assert edited["message"]["thread"] == 1 and edited["message"]["text"] == "fixed"
    await ana.ok("react", room="den", seq=2, emoji="+1")
    reaction = await bob.event("reaction")
    assert reaction["message"]["thread"] == 1


# What takes a database back to the schema before threads (any engine's).
BEFORE_THREADS = (
    "DROP INDEX messages_thread",
    "DROP INDEX messages_timeline",
    "DROP TABLE follows",
    "ALTER TABLE messages DROP COLUMN thread",
    "ALTER TABLE messages DROP COLUMN timeline",
)


async def as_schema_before_threads(running: Running) -> None:
    """Closes the server and takes its database back to the schema before
    threads (sqlite 4, PostgreSQL 2)."""
    await as_older_schema(running, BEFORE_THREADS, sqlite=4, postgresql=2)


async def assert_current_schema(running: Running) -> None:
    """Closes the server and checks its database was brought to this schema."""
    config = running.server.config
    await running.close()
    if config.store == "sqlite":
        with sqlite3.connect(config.data) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == tables.SCHEMA_VERSION
    else:
        with psycopg.connect(config.database) as db:
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            assert version == (postgres.SCHEMA_VERSION,)


async def as_older_schema(
    running: Running, statements: tuple[str, ...], sqlite: int, postgresql: int
) -> None:
    """Closes the server, runs `statements` on its database and gives it the
    older schema's version (`sqlite`'s user_version, or `postgresql`'s)."""
    config = running.server.config
    await running.close()
    if config.store == "sqlite":
        with sqlite3.connect(config.data, isolation_level=None) as db:
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {sqlite}")
    else:
        with psycopg.connect(config.database, autocommit=True) as db:
            db.execute("DROP TABLE changes")  # schema 4's (several nodes)
            for statement in statements:
                db.execute(statement)
            db.execute("UPDATE meta SET value = %s WHERE key = 'schema'", (postgresql,))


@pytest.mark.engines("sqlite", "postgresql")
async def test_a_database_from_before_threads_is_brought_up_to_date(
    start_server: StartServer,
) -> None:
    running = await start_server(history_limit=3)
    ana = await running.user("ana")
    for i in range(6):
        await ana.ok("say", room="general", text=f"old {i}")
    data = running.server.config.data
    await as_schema_before_threads(running)
    again = await start_server(data, history_limit=3)
    ana = await again.user("ana", register=False)
    history = await ana.ok("history", room="general", before=5)
    assert [m["text"] for m in history["messages"]] == [f"old {i}" for i in range(4)]
    await ana.ok("say", room="general", text="reply", thread=2)
    await ana.ok("say", room="general", text="new")
    assert seqs(await ana.ok("history", room="general", limit=3)) == [5, 6, 8]
    await assert_current_schema(again)
    third = await start_server(data, history_limit=3)
    ana = await third.user("ana", register=False)
    page = await ana.ok("thread", room="general", seq=2)
    assert [m["text"] for m in page["messages"]] == ["reply"]
    assert [t["root"]["seq"] for t in (await ana.ok("threads"))["threads"]] == [2]
