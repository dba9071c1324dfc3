"""`history` and `dms` pages just after a message and centred on one (what a
link to a message opens), on every engine, from memory and from disk."""

from __future__ import annotations

from tests.conftest import PASSWORD, StartServer
from tests.server.test_commands import dm_many, say_many
from tests.wire import Peer

WINDOW = 10  # messages the server keeps in memory a room (the json engine: all it keeps)


def seqs(page: dict) -> list[int]:
    return [m["seq"] for m in page["messages"]]


async def history(peer: Peer, **args: int) -> dict:
    return await peer.ok("history", room="general", **args)


async def test_pages_after_and_around_a_message(start_server: StartServer) -> None:
    running = await start_server(history_limit=WINDOW)
    ana = await running.user("ana")
    await say_many(ana, "general", 30)
    # Within the window: every engine has these.
    page = await history(ana, after=22, limit=5)
    assert seqs(page) == [23, 24, 25, 26, 27]
    assert page["more"] is True and page["more_after"] is True
    page = await history(ana, after=27, limit=5)
    assert seqs(page) == [28, 29, 30] and page["more_after"] is False
    page = await history(ana, after=30)
    assert seqs(page) == [] and page["more"] is True and page["more_after"] is False
    page = await history(ana, around=25, limit=5)
    assert seqs(page) == [23, 24, 25, 26, 27] and page["more_after"] is True
    page = await history(ana, around=25, limit=4)  # an even page: one more before it
    assert seqs(page) == [24, 25, 26, 27]
    page = await history(ana, around=29, limit=5)  # near the end: still a full page
    assert seqs(page) == [26, 27, 28, 29, 30] and page["more_after"] is False
    newest = await history(ana, limit=5)
    assert seqs(newest) == [26, 27, 28, 29, 30] and newest["more_after"] is False
    # Past the window: the table engines read them from disk; json kept none.
    page = await history(ana, after=3, limit=5)
    page_around = await history(ana, around=2, limit=5)
    if running.server.config.store == "json":
        assert seqs(page) == [] and page["more"] is False and page["more_after"] is True
        assert seqs(page_around) == []
    else:
        assert seqs(page) == [4, 5, 6, 7, 8]
        assert page["more"] is True and page["more_after"] is True
        assert seqs(page_around) == [1, 2, 3, 4, 5] and page_around["more"] is False
        across = await history(ana, around=20, limit=6)  # half on disk, half in memory
        assert seqs(across) == [18, 19, 20, 21, 22, 23]
        assert [m["text"] for m in across["messages"]][2] == "m20"


async def test_paging_forward_walks_the_whole_history_once(start_server: StartServer) -> None:
    running = await start_server(history_limit=WINDOW)
    ana = await running.user("ana")
    await say_many(ana, "general", 23)
    kept = 23 if running.server.config.store != "json" else WINDOW
    first = 24 - kept
    seen: list[int] = []
    after = first - 1
    while True:
        page = await history(ana, after=after, limit=4)
        seen += seqs(page)
        if not page["more_after"]:
            break
        after = seen[-1]
    assert seen == list(range(first, 24))


async def test_one_anchor_at_most(start_server: StartServer) -> None:
    running = await start_server()
    ana = await running.user("ana")
    for anchors in (
        {"before": 5, "after": 1},
        {"after": 1, "around": 3},
        {"before": 2, "around": 1},
    ):
        await ana.fails("bad_args", "history", room="general", **anchors)
        await ana.fails("bad_args", "dms", **{"with": "ana", **anchors})
    for bad in ("5", 1.5, True):
        await ana.fails("bad_args", "history", room="general", after=bad)
        await ana.fails("bad_args", "history", room="general", around=bad)


async def test_a_private_rooms_pages_stay_private(start_server: StartServer) -> None:
    running = await start_server()
    ana, eve = await running.user("ana"), await running.user("eve")
    await ana.ok("create", room="secret", private=True)
    await ana.ok("say", room="secret", text="hush")
    await eve.fails("not_member", "history", room="secret", around=1)
    await eve.fails("not_member", "history", room="secret", after=0)


async def test_dms_around_a_message_read_only_what_they_show(start_server: StartServer) -> None:
    running = await start_server(dm_history_limit=WINDOW)
    ana, bob = await running.user("ana"), await running.user("bob")
    await dm_many(bob, "ana", 20)
    page = await ana.ok("dms", **{"with": "bob", "around": 17, "limit": 3})
    assert seqs(page) == [16, 17, 18] and page["more"] is True and page["more_after"] is True
    relog = await running.peer()
    unread = (await relog.ok("login", username="ana", password=PASSWORD))["unread"]
    assert unread["dms"] == {"bob": 2}  # 19 and 20 were not shown
    page = await relog.ok("dms", **{"with": "bob", "after": 18})
    assert seqs(page) == [19, 20] and page["more_after"] is False
    again = await running.peer()
    assert (await again.ok("login", username="ana", password=PASSWORD))["unread"]["dms"] == {}
