"""SIGKILL the real server mid-stream, again and again: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

ROUNDS = int(os.environ.get("NEXUS_CRASH_ROUNDS", "6"))  # `make soak` runs 200
WRITERS = 4
PASSWORD = "crash-test-password"


async def write_until_killed(
    port: int, name: str, acked: list[tuple[str, int, str]], writing: asyncio.Event
) -> None:
    """Says numbered messages in the writer's own room, recording each acknowledgement;
    `writing` is set once logged in."""
    peer = await Peer.connect("127.0.0.1", port)
    try:
        await peer.frame()
        await peer.ok("login", username=name, password=PASSWORD)
        writing.set()
        room = f"room-{name}"
        n = 0
        while True:
            n += 1
            text = f"{name} {n} {random.random()}"
            reply = await peer.request("say", room=room, text=text)
            assert reply["ok"], reply
            acked.append((room, reply["seq"], text))
    except (EOFError, ConnectionError, TimeoutError):
        return  # the server died under us: expected
    finally:
        await peer.close()


async def verify(port: int, acked: list[tuple[str, int, str]], kept: int | None) -> None:
    """Every acknowledged message is still stored (or, past the newest `kept` of
    a room, trimmed by the cap, never reused)."""
    peer = await Peer.connect("127.0.0.1", port)
    await peer.frame()
    await peer.ok("login", username="writer0", password=PASSWORD)
    by_room: dict[str, dict[int, str]] = {}
    for room, seq, text in acked:
        by_room.setdefault(room, {})[seq] = text
    for room, expected in by_room.items():
        stored = {}
        before = None
        while True:
            args = {"room": room, "limit": 500} | ({"before": before} if before else {})
            page = await peer.ok("history", **args)
            stored.update({m["seq"]: m["text"] for m in page["messages"]})
            if not page["more"]:
                break
            before = page["messages"][0]["seq"]
        newest = max(stored, default=0)
        assert newest >= max(expected), f"{room}: acknowledged seq {max(expected)} lost"
        for seq, text in expected.items():
            if kept is None or seq > newest - kept:
                assert stored.get(seq) == text, f"{room} seq {seq} lost or changed"
    await peer.close()


@pytest.mark.slow
async def test_sigkill_mid_stream_loses_no_acknowledged_message(tmp_path, engine):
    """Writers flood their rooms; each SIGKILL is followed by a restart that has it all."""
    data = data_file(tmp_path, engine)
    flags = (*engine_flags(engine, data), "--rate-limit", "off")
    kept = 500 if engine == "json" else None  # the json engine keeps 500 a room
    acked: list[tuple[str, int, str]] = []
    with ServerProcess(data, *flags) as server:
        setup = [await Peer.connect("127.0.0.1", server.port) for _ in range(WRITERS)]
        for i, peer in enumerate(setup):
            await peer.frame()
            await peer.ok("register", username=f"writer{i}", password=PASSWORD)
            await peer.ok("create", room=f"room-writer{i}")
            await peer.close()
        server.kill()
    for round_ in range(ROUNDS):
        with ServerProcess(data, *flags) as server:
            await verify(server.port, acked, kept)
            start = len(acked)
            writing = [asyncio.Event() for _ in range(WRITERS)]
            writers = [
                asyncio.create_task(write_until_killed(server.port, f"writer{i}", acked, ready))
                for i, ready in enumerate(writing)
            ]
            # Logins hash passwords at full cost: on a busy machine they alone can
            # outlast the window, so it opens once every writer is writing.
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in writing)), 30)
            await asyncio.sleep(random.uniform(0.2, 0.6))
            server.kill()
            await asyncio.gather(*writers)
            assert len(acked) > start, f"round {round_}: no write was acknowledged"
    with ServerProcess(data, *flags) as server:
        await verify(server.port, acked, kept)
    assert len(acked) > ROUNDS * WRITERS  # the flood really happened
