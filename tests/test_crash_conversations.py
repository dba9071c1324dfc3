"""SIGKILL the real server right after protocol 2 changes are acknowledged:
edits, erasures, reactions, read markers, away and password all come back."""

from __future__ import annotations

from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

PASSWORD = "crash-test-password"
NEW_PASSWORD = "crash-test-password-2"


async def connect(port: int) -> Peer:
    peer = await Peer.connect("127.0.0.1", port)
    await peer.frame()
    return peer


async def test_sigkill_after_acknowledged_conversation_changes_loses_none(tmp_path, engine):
    """Every acknowledged edit, erasure, reaction, marker, away text and password
    survives a SIGKILL that follows the last acknowledgement at once."""
    data = data_file(tmp_path, engine)
    flags = (*engine_flags(engine, data), "--rate-limit", "off")
    with ServerProcess(data, *flags) as server:
        alice, bob = await connect(server.port), await connect(server.port)
        await alice.ok("register", username="alice", password=PASSWORD)
        await bob.ok("register", username="bob", password=PASSWORD)
        await alice.ok("create", room="den")
        await bob.ok("join", room="den")
        for text in ("one", "two @bob", "three", "four"):
            await alice.ok("say", room="den", text=text)
        await alice.ok("dm", to="bob", text="psst")
        edited = await alice.ok("edit", room="den", seq=1, text="one, edited @bob")
        await alice.ok("erase", room="den", seq=2)
        await bob.ok("react", room="den", seq=3, emoji="👍")
        await alice.ok("react", room="den", seq=3, emoji="🎉")
        await alice.ok("react", room="den", seq=3, emoji="🎉", on=False)
        await bob.ok("react", seq=1, emoji="👀", **{"with": "alice"})
        await bob.ok("read", room="den", seq=3)
        await alice.ok("away", text="gardening")
        token = (await alice.ok("password", old=PASSWORD, new=NEW_PASSWORD))["token"]
        server.kill()
    with ServerProcess(data, *flags) as server:
        alice = await connect(server.port)
        await alice.fails("auth_failed", "login", username="alice", password=PASSWORD)
        reply = await alice.ok("login", username="alice", password=NEW_PASSWORD)
        assert reply["user"]["away"] == "gardening"
        again = await connect(server.port)
        await again.ok("login", username="alice", token=token)
        bob = await connect(server.port)
        reply = await bob.ok("login", username="bob", password=PASSWORD)
        assert reply["unread"]["rooms"] == {"den": 1}  # "four", after the marker at 3
        assert reply["unread"]["mentions"] == 0
        den = (await bob.ok("history", room="den"))["messages"]
        assert den[0]["text"] == "one, edited @bob"
        assert den[0]["edited"] == edited["edited"] and den[0]["mentions"] == ["bob"]
        assert den[1]["erased"] is True and den[1]["text"] == ""
        assert den[2]["reactions"] == {"👍": ["bob"]}
        dm = (await bob.ok("dms", **{"with": "alice"}))["messages"][0]
        assert dm["reactions"] == {"👀": ["bob"]}
        for peer in (alice, again, bob):
            await peer.close()
