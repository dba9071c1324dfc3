"""Pins over real sockets, on every engine: who may pin, the `pinned` event,
`pins` (the latest pin first), the limit, erasure unpinning, privacy, and
pins surviving a restart (and a SIGKILL: test_crash.py's kind of loss is
the store's, which every record shares)."""

from __future__ import annotations

import pytest

from tests.conftest import Running, StartServer
from tests.server.test_threads import BEFORE_THREADS, as_older_schema, assert_current_schema
from tests.wire import Peer


async def den(running: Running) -> tuple[Peer, Peer, Peer, Peer]:
    """root (the first account: an admin), olga who owns #den, mia her
    moderator, and bob, a member."""
    root, olga, mia, bob = [await running.user(n) for n in ("root", "olga", "mia", "bob")]
    await olga.ok("create", room="den")
    for peer in (mia, bob):
        await peer.ok("join", room="den")
    await olga.ok("op", room="den", username="mia")
    return root, olga, mia, bob


async def test_staff_pin_members_see_it_and_pins_lists_them(start_server: StartServer) -> None:
    running = await start_server()
    root, olga, mia, bob = await den(running)
    for i in range(1, 5):
        await bob.ok("say", room="den", text=f"note {i}")
    await olga.ok("pin", room="den", seq=2)
    event = await bob.event("pinned")
    assert event == {"event": "pinned", "room": "den", "seq": 2, "by": "olga", "on": True}
    await mia.ok("pin", room="den", seq=4)
    assert (await bob.event("pinned"))["by"] == "mia"
    await root.ok("pin", room="den", seq=1)  # an admin, not a member
    assert (await bob.event("pinned"))["by"] == "root"
    await bob.fails("not_allowed", "pin", room="den", seq=3)
    await bob.fails("no_such_message", "pin", room="den", seq=99)
    await olga.fails("bad_args", "pin", **{"with": "bob", "seq": 1})
    await olga.fails("no_such_room", "pin", room="nowhere", seq=1)

    pins = await bob.ok("pins", room="den")
    assert [m["seq"] for m in pins["messages"]] == [1, 4, 2]  # the latest pin first
    first = pins["messages"][2]
    assert first["text"] == "note 2" and first["pinned_by"] == "olga"
    assert isinstance(first["pinned_at"], float)
    info = await bob.ok("rooms")
    assert next(r for r in info["rooms"] if r["name"] == "den")["pins"] == 3

    await olga.ok("pin", room="den", seq=2)  # pinned already: nothing changes, no event
    await bob.no_event("pinned", wait=0.05)
    await mia.ok("pin", room="den", seq=2, on=False)
    assert await bob.event("pinned") == {
        "event": "pinned",
        "room": "den",
        "seq": 2,
        "by": "mia",
        "on": False,
    }
    assert [m["seq"] for m in (await bob.ok("pins", room="den"))["messages"]] == [1, 4]


async def test_erasing_a_pinned_message_unpins_it(start_server: StartServer) -> None:
    running = await start_server()
    _, olga, _, bob = await den(running)
    await bob.ok("say", room="den", text="pin me")
    await olga.ok("pin", room="den", seq=1)
    await bob.event("pinned")
    await bob.ok("erase", room="den", seq=1)
    await bob.event("erased")
    unpinned = await bob.event("pinned")
    assert unpinned["on"] is False and unpinned["seq"] == 1
    assert (await bob.ok("pins", room="den"))["messages"] == []
    await olga.fails("no_such_message", "pin", room="den", seq=1)


async def test_at_most_fifty_pins_and_the_muted_cannot_pin(start_server: StartServer) -> None:
    running = await start_server()
    _, olga, mia, bob = await den(running)
    await bob.burst([{"cmd": "say", "room": "den", "text": f"m{i}"} for i in range(51)])
    await olga.burst([{"cmd": "pin", "room": "den", "seq": seq} for seq in range(1, 51)])
    await olga.fails("limit_reached", "pin", room="den", seq=51)
    await olga.ok("pin", room="den", seq=50, on=False)
    await olga.ok("pin", room="den", seq=51)
    await olga.ok("mute", room="den", username="mia")
    await mia.fails("muted", "pin", room="den", seq=1, on=False)


async def test_a_private_rooms_pins_stay_private(start_server: StartServer) -> None:
    running = await start_server()
    _, olga, _, _ = await den(running)
    eve = await running.user("eve")
    await olga.ok("create", room="secret", private=True)
    await olga.ok("say", room="secret", text="the plan")
    await olga.ok("pin", room="secret", seq=1)
    await eve.fails("not_member", "pins", room="secret")
    await eve.no_event("pinned", wait=0.05)


async def test_pins_survive_a_restart(start_server: StartServer) -> None:
    running = await start_server()
    _, olga, _, bob = await den(running)
    for i in range(3):
        await bob.ok("say", room="den", text=f"m{i}")
    await olga.ok("pin", room="den", seq=3)
    await olga.ok("pin", room="den", seq=1)
    await olga.ok("pin", room="den", seq=3, on=False)
    await olga.ok("pin", room="den", seq=2)
    data = running.server.config.data
    await running.close()
    again = await start_server(data)
    carol = await again.user("carol")
    pins = await carol.ok("pins", room="den")
    assert [(m["seq"], m["pinned_by"]) for m in pins["messages"]] == [(2, "olga"), (1, "olga")]


async def as_schema_before_pins(running: Running) -> None:
    """Closes the server and takes its database back to the schema before
    pins (sqlite 3, PostgreSQL 1): no column for them, nor threads."""
    unpinned = (*BEFORE_THREADS, "ALTER TABLE rooms DROP COLUMN pins")
    await as_older_schema(running, unpinned, sqlite=3, postgresql=1)


@pytest.mark.engines("sqlite", "postgresql")
async def test_a_database_from_before_pins_is_brought_up_to_date(start_server: StartServer) -> None:
    running = await start_server()
    root = await running.user("root")  # the store's first account: an admin
    await root.ok("say", room="general", text="kept")
    data = running.server.config.data
    await as_schema_before_pins(running)
    again = await start_server(data)
    root = await again.user("root", register=False)
    history = await root.ok("history", room="general")
    assert [m["text"] for m in history["messages"]] == ["kept"]
    assert (await root.ok("pins", room="general"))["messages"] == []
    await root.ok("pin", room="general", seq=1)
    await assert_current_schema(again)
    third = await start_server(data)
    reader = await third.user("root", register=False)
    assert [m["text"] for m in (await reader.ok("pins", room="general"))["messages"]] == ["kept"]
