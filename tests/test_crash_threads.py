"""SIGKILL the real server while threads change: no acknowledged reply,
follow or thread read marker is lost."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field

import pytest

from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

ROUNDS = int(os.environ.get("NEXUS_CRASH_ROUNDS", "3"))  # `make soak` runs 200
WRITERS = 2
PASSWORD = "crash-test-password"


@dataclass
class Acked:
    """What the server acknowledged, per writer."""

    replies: dict[str, dict[int, str]] = field(default_factory=dict)  # room -> seq -> text
    markers: dict[str, int] = field(default_factory=dict)  # writer -> marker in the other's
    following: dict[str, bool] = field(default_factory=dict)  # writer -> the other's thread
    unsure: set[str] = field(default_factory=set)  # a follow in flight when the server died


def room_of(i: int) -> str:
    return f"room-writer{i}"


async def write_until_killed(port: int, i: int, acked: Acked, writing: asyncio.Event) -> None:
    """Replies in the writer's own room's thread, moves its marker in the
    other writer's thread and follows it on and off, recording each
    acknowledgement."""
    name, other = f"writer{i}", room_of(1 - i)
    peer = await Peer.connect("127.0.0.1", port)
    try:
        await peer.frame()
        await peer.ok("login", username=name, password=PASSWORD)
        writing.set()
        n = 0
        while True:
            n += 1
            text = f"{name} {n} {random.random()}"
            reply = await peer.ok("say", room=room_of(i), text=text, thread=1)
            acked.replies.setdefault(room_of(i), {})[reply["seq"]] = text
            marker = await peer.ok("read", room=other, seq=1 << 40, thread=1)
            acked.markers[name] = max(acked.markers.get(name, 0), marker["seq"])
            acked.unsure.add(name)
            await peer.ok("follow", room=other, seq=1, on=n % 2 == 0)
            acked.following[name] = n % 2 == 0
            acked.unsure.discard(name)
    except (EOFError, ConnectionError, TimeoutError):
        return  # the server died under us: expected
    finally:
        await peer.close()


async def verify(port: int, acked: Acked) -> None:
    for i in range(WRITERS):
        name, other = f"writer{i}", room_of(1 - i)
        peer = await Peer.connect("127.0.0.1", port)
        await peer.frame()
        await peer.ok("login", username=name, password=PASSWORD)
        stored: dict[int, str] = {}
        before = None
        while True:
            args = {"room": room_of(i), "seq": 1, "limit": 500}
            page = await peer.ok("thread", **args | ({"before": before} if before else {}))
            stored.update({m["seq"]: m["text"] for m in page["messages"]})
            if not page["more"]:
                break
            before = page["messages"][0]["seq"]
        for seq, text in acked.replies.get(room_of(i), {}).items():
            assert stored.get(seq) == text, f"{room_of(i)} reply {seq} lost or changed"
        marker = (await peer.ok("read", room=other, seq=0, thread=1))["seq"]
        assert marker >= acked.markers.get(name, 0), f"{name}'s marker went back"
        if name in acked.following and name not in acked.unsure:
            listed = [t["root"]["room"] for t in (await peer.ok("threads"))["threads"]]
            assert (other in listed) == acked.following[name], f"{name}'s follow lost"
        await peer.close()


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_thread_change(tmp_path, engine):
    data = data_file(tmp_path, engine)
    # The json engine keeps a room's newest messages only: enough for every reply.
    flags = (*engine_flags(engine, data), "--rate-limit", "off", "--history-limit", "100000")
    acked = Acked()
    with ServerProcess(data, *flags) as server:
        for i in range(WRITERS):
            peer = await Peer.connect("127.0.0.1", server.port)
            await peer.frame()
            await peer.ok("register", username=f"writer{i}", password=PASSWORD)
            await peer.ok("create", room=room_of(i))
            await peer.ok("say", room=room_of(i), text="the root")
            await peer.close()
        server.kill()
    for round_ in range(ROUNDS):
        with ServerProcess(data, *flags) as server:
            await verify(server.port, acked)
            start = sum(map(len, acked.replies.values()))
            writing = [asyncio.Event() for _ in range(WRITERS)]
            writers = [
                asyncio.create_task(write_until_killed(server.port, i, acked, ready))
                for i, ready in enumerate(writing)
            ]
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in writing)), 30)
            await asyncio.sleep(random.uniform(0.2, 0.6))
            server.kill()
            await asyncio.gather(*writers)
            done = sum(map(len, acked.replies.values()))
            assert done > start, f"round {round_}: no reply was acknowledged"
    with ServerProcess(data, *flags) as server:
        await verify(server.port, acked)
    assert acked.following and acked.markers
