"""Protocol 3's formatting on the server: it stores the source as typed,
carries `plain`, and finds mentions outside code only (every engine)."""

from __future__ import annotations

from tests.conftest import StartServer


async def test_plain_is_kept_and_mentions_skip_code(start_server: StartServer) -> None:
    running = await start_server()
    ana, bob, carol = [await running.user(n) for n in ("ana", "bob", "carol")]
    for peer in (ana, bob, carol):
        await peer.ok("join", room="general")
    text = "**hi** @bob, see `@carol` and\n```\n@carol\n```"
    await ana.ok("say", room="general", text=text)
    said = await bob.event("message", room="general")
    assert said["text"] == text and said["mentions"] == ["bob"] and "plain" not in said
    await ana.ok("say", room="general", text="log: `@carol` @bob", plain=True)
    logged = await bob.event("message", text="log: `@carol` @bob")
    assert logged["plain"] is True and logged["mentions"] == ["carol", "bob"]
    await ana.ok("edit", room="general", seq=logged["seq"], text="log: `@bob`")
    edited = await bob.event("edited")
    assert edited["message"]["plain"] is True and edited["message"]["mentions"] == ["bob"]
    await ana.ok("edit", room="general", seq=said["seq"], text="now `@bob` only")
    assert "mentions" not in (await bob.event("edited"))["message"]
    await ana.ok("dm", to="bob", text="*as typed*", plain=True)
    assert (await bob.event("dm"))["plain"] is True
    await ana.fails("bad_args", "say", room="general", text="x", plain="yes")

    data = running.server.config.data
    await running.close()
    again = await start_server(data)
    reader = await again.user("dave")
    page = await reader.ok("history", room="general")
    shown = {m["seq"]: m for m in page["messages"]}
    assert shown[logged["seq"]]["plain"] is True and shown[logged["seq"]]["text"] == "log: `@bob`"
    assert "plain" not in shown[said["seq"]]
