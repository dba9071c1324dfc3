"""`typing` over real sockets: told to the others as it happens, at most
once a second, ended by a message or the last session going; never for
outsiders, never from the muted, never stored, free of flood control."""

from __future__ import annotations

from tests.clock import ManualClock
from tests.conftest import PASSWORD, Running, StartServer
from tests.wire import Peer


async def room_of_three(running: Running) -> tuple[Peer, Peer, Peer]:
    """root (the store's first account: an admin), ana and bob, all in #general."""
    people = [await running.user(name) for name in ("root", "ana", "bob")]
    for peer in people:
        await peer.ok("join", room="general")
    return people[0], people[1], people[2]


async def test_the_others_see_who_types_and_when_it_stops(start_server: StartServer) -> None:
    clock = ManualClock()
    running = await start_server(clock=clock)
    root, ana, bob = await room_of_three(running)
    ana_elsewhere = await running.user("ana", register=False)
    outsider = await running.user("eve")
    await outsider.ok("leave", room="general")

    await ana.ok("typing", room="general")
    on = {"event": "typing", "room": "general", "user": "ana", "on": True}
    assert await bob.event("typing") == on
    assert await root.event("typing") == on
    await ana_elsewhere.no_event("typing")  # not told to the typer's own sessions
    await outsider.no_event("typing", wait=0.05)

    # Every key a client tells: one event a second.
    await ana.ok("typing", room="general")
    await bob.no_event("typing", wait=0.05)
    clock.advance(1.0)
    await ana.ok("typing", room="general", on=True)
    assert await bob.event("typing") == on

    # The message ends it, and the `off` comes before the message.
    await ana.ok("say", room="general", text="done typing")
    assert await bob.event("typing") == {**on, "on": False}
    assert (await bob.event("message"))["text"] == "done typing"
    await ana.ok("typing", room="general", on=False)  # not typing: nothing to tell
    await bob.no_event("typing", wait=0.05)

    # The next `on` a second after the last one told, the `off` between
    # notwithstanding: a quick talker costs the others one `on` a second.
    await ana.ok("typing", room="general")
    await bob.no_event("typing", wait=0.05)
    await ana.ok("say", room="general", text="and again")
    assert (await bob.event("message"))["text"] == "and again"
    await bob.no_event("typing", wait=0.05)  # never shown: no `off`
    clock.advance(1.0)
    await ana.ok("typing", room="general")
    assert (await bob.event("typing"))["on"] is True
    await ana.ok("typing", room="general", on=False)
    assert (await bob.event("typing"))["on"] is False


async def test_a_dm_partner_sees_it_and_the_last_session_ends_it(start_server: StartServer) -> None:
    clock = ManualClock()
    running = await start_server(clock=clock)
    ana, bob = await running.user("ana"), await running.user("bob")
    await ana.ok("typing", **{"with": "Bob"})
    on = {"event": "typing", "with": "ana", "user": "ana", "on": True}
    assert await bob.event("typing") == on
    await ana.ok("dm", to="bob", text="hi")
    assert await bob.event("typing") == {**on, "on": False}
    clock.advance(1.0)
    await ana.ok("typing", **{"with": "bob"})
    assert (await bob.event("typing"))["on"] is True
    await ana.ok("quit")  # ana's only session
    assert await bob.event("typing") == {**on, "on": False}
    await bob.ok("typing", **{"with": "bob"})  # to oneself: nobody to tell
    await bob.no_event("typing", wait=0.05)


async def test_who_may_not_type(start_server: StartServer) -> None:
    running = await start_server()
    root, ana, bob = await room_of_three(running)
    await root.ok("mute", room="general", username="ana")
    await ana.fails("muted", "typing", room="general")
    await ana.ok("leave", room="general")
    await ana.fails("not_member", "typing", room="general")
    await ana.fails("no_such_room", "typing", room="nowhere")
    await ana.fails("no_such_user", "typing", **{"with": "nobody"})
    await ana.fails("bad_args", "typing", room="general", **{"with": "bob"})
    await ana.fails("bad_args", "typing")
    await ana.fails("bad_args", "typing", room="general", on="yes")
    await bob.no_event("typing", wait=0.05)


async def test_typing_is_free_of_flood_control_and_never_stored(start_server: StartServer) -> None:
    running = await start_server(rate_limit=True, message_burst=3, message_rate=0.1)
    ana, bob = await running.user("ana"), await running.user("bob")
    await bob.ok("join", room="general")
    await ana.ok("join", room="general")
    await ana.burst([{"cmd": "typing", "room": "general"} for _ in range(50)])
    await ana.ok("say", room="general", text="still allowed")  # the flood budget is untouched
    data = running.server.config.data
    await running.close()
    again = await start_server(data)
    carol = await again.user("carol")
    page = await carol.ok("history", room="general")
    assert [m["text"] for m in page["messages"]] == ["still allowed"]
    # Nothing of typing reached the disk, in any engine's files.
    for path in data.parent.glob(data.name + "*"):
        if path.is_file():
            assert b"typing" not in path.read_bytes(), path
    relog = await again.peer()
    await relog.ok("login", username="ana", password=PASSWORD)
