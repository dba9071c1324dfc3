"""SIGKILL the real server while a room's pins change: every acknowledged
pin and unpin is there after the restart, on every engine."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field

import pytest

from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

ROUNDS = int(os.environ.get("NEXUS_CRASH_ROUNDS", "3"))  # `make soak` runs 200
MESSAGES = 40  # pinned and unpinned in turn: never past the 50 a room may have
PASSWORD = "crash-test-password"
ROOM = "pinboard"


@dataclass
class Acked:
    """What the server acknowledged: each message's pin as last told."""

    pinned: dict[int, bool] = field(default_factory=dict)
    unsure: int | None = None  # the seq whose pin was in flight when the server died
    answers: int = 0  # pins and unpins acknowledged


async def login(port: int) -> Peer:
    peer = await Peer.connect("127.0.0.1", port)
    await peer.frame()
    await peer.ok("login", username="olga", password=PASSWORD)
    return peer


async def pin_until_killed(port: int, acked: Acked, pinning: asyncio.Event) -> None:
    """Pins and unpins the room's messages in turn, recording each answer."""
    peer = await login(port)
    try:
        pinning.set()
        while True:
            seq = random.randint(1, MESSAGES)
            on = not acked.pinned.get(seq, False)
            acked.unsure = seq
            await peer.ok("pin", room=ROOM, seq=seq, on=on)
            acked.pinned[seq] = on
            acked.unsure = None
            acked.answers += 1
    except (EOFError, ConnectionError, TimeoutError):
        return  # the server died under us: expected
    finally:
        await peer.close()


async def verify(port: int, acked: Acked) -> None:
    peer = await login(port)
    listed = {m["seq"] for m in (await peer.ok("pins", room=ROOM))["messages"]}
    for seq, on in acked.pinned.items():
        if seq != acked.unsure:
            assert (seq in listed) == on, f"the pin of {seq} was lost or came back"
    if acked.unsure is not None:  # it went one way or the other: settle what was told
        acked.pinned[acked.unsure] = acked.unsure in listed
        acked.unsure = None
    await peer.close()


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_pin(tmp_path, engine):
    data = data_file(tmp_path, engine)
    flags = (*engine_flags(engine, data), "--rate-limit", "off")
    acked = Acked()
    with ServerProcess(data, *flags) as server:
        peer = await Peer.connect("127.0.0.1", server.port)
        await peer.frame()
        await peer.ok("register", username="olga", password=PASSWORD)
        await peer.ok("create", room=ROOM)
        for n in range(MESSAGES):
            await peer.ok("say", room=ROOM, text=f"message {n + 1}")
        await peer.close()
        server.kill()
    for round_ in range(ROUNDS):
        with ServerProcess(data, *flags) as server:
            await verify(server.port, acked)
            before = acked.answers
            pinning = asyncio.Event()
            pinner = asyncio.create_task(pin_until_killed(server.port, acked, pinning))
            await asyncio.wait_for(pinning.wait(), 30)
            await asyncio.sleep(random.uniform(0.2, 0.6))
            server.kill()
            await pinner
            assert acked.answers > before, f"round {round_}: no pin was acknowledged"
    with ServerProcess(data, *flags) as server:
        await verify(server.port, acked)
    assert any(acked.pinned.values()) and not all(acked.pinned.values())
