"""The outbox on its own: batching, shared room broadcasts, exact order, holding, refusal."""

from __future__ import annotations

import asyncio

from nexus.server.model import Room
from nexus.server.outbox import Outbox
from nexus.server.ratelimit import TokenBucket
from nexus.server.session import Session


class Wire:
    """A transport that records each write and holds back what the test says."""

    def __init__(self, unsent: int = 0) -> None:
        self.writes: list[bytes] = []
        self.unsent = unsent  # bytes the kernel "would not take" after each write
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def session(outbox: Outbox, name: str, cap: int = 1 << 20, unsent: int = 0) -> Session:
    s = Session(Wire(unsent), name, cap, TokenBucket(5, 1, 0.0), outbox)
    s.user = name
    return s


def received(s: Session) -> bytes:
    return b"".join(s.transport.writes)


async def settle() -> None:
    """Lets the flush scheduled for this loop pass run."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_every_frame_of_a_pass_leaves_in_one_write():
    """Frames queued for a session during one pass go out together."""
    outbox = Outbox()
    alice = session(outbox, "alice")
    for i in range(5):
        alice.send(b"%d\n" % i)
    await settle()
    assert alice.transport.writes == [b"0\n1\n2\n3\n4\n"]


async def test_a_room_broadcast_is_shared_and_reaches_every_member():
    """A room's frames are joined once and written to each member."""
    outbox = Outbox()
    room = Room("tech", "", None, True, 0.0)
    members = [session(outbox, f"u{i}") for i in range(3)]
    for i in range(4):
        outbox.broadcast(room, room.roster, b"m%d\n" % i, iter(members))
    await settle()
    written = [m.transport.writes for m in members]
    assert written == [[b"m0\nm1\nm2\nm3\n"]] * 3
    assert written[0][0] is written[1][0]  # one joined copy for all


async def test_own_frames_interleave_with_room_frames_in_the_order_queued():
    """A reply or DM between two room messages stays between them."""
    outbox = Outbox()
    room = Room("tech", "", None, True, 0.0)
    alice, bob = session(outbox, "alice"), session(outbox, "bob")
    members = [alice, bob]
    outbox.broadcast(room, room.roster, b"m1\n", iter(members))
    bob.send(b"dm1\n")
    outbox.broadcast(room, room.roster, b"m2\n", iter(members))
    outbox.broadcast(room, room.roster, b"m3\n", iter(members))
    alice.send(b"reply\n", reply=True)
    bob.send(b"dm2\n")
    outbox.broadcast(room, room.roster, b"m4\n", iter(members))
    await settle()
    assert received(alice) == b"m1\nm2\nm3\nreply\nm4\n"
    assert received(bob) == b"m1\ndm1\nm2\nm3\ndm2\nm4\n"


async def test_a_membership_change_starts_a_new_broadcast():
    """After the room's roster changes, its frames go to the members as they are now."""
    outbox = Outbox()
    room = Room("tech", "", None, True, 0.0)
    alice, bob = session(outbox, "alice"), session(outbox, "bob")
    outbox.broadcast(room, room.roster, b"before\n", iter([alice]))
    room.roster += 1  # bob joined
    outbox.broadcast(room, room.roster, b"after\n", iter([alice, bob]))
    await settle()
    assert received(alice) == b"before\nafter\n"
    assert received(bob) == b"after\n"


async def test_regroup_reaches_a_session_that_logged_in_since():
    """A new session of a member gets the room's later frames after a regroup."""
    outbox = Outbox()
    room = Room("tech", "", None, True, 0.0)
    first, second = session(outbox, "alice"), session(outbox, "alice")
    outbox.broadcast(room, room.roster, b"m1\n", iter([first]))
    outbox.regroup()
    outbox.broadcast(room, room.roster, b"m2\n", iter([first, second]))
    await settle()
    assert received(first) == b"m1\nm2\n"
    assert received(second) == b"m2\n"


async def test_nothing_leaves_while_held_until_flushed():
    """While the store has unwritten changes, frames wait for its flush."""
    unwritten = True
    outbox = Outbox(held=lambda: unwritten)
    alice = session(outbox, "alice")
    alice.send(b"event\n")
    await settle()
    assert alice.transport.writes == []
    unwritten = False
    outbox.flush()  # what the store does after its write
    assert alice.transport.writes == [b"event\n"]


async def test_a_refused_write_drops_held_events_and_refuses_unwritten_replies():
    """Held replies to unwritten changes become refusals; other replies stay; events go."""
    unwritten = True
    outbox = Outbox(held=lambda: unwritten)
    room = Room("tech", "", None, True, 0.0)
    alice, bob = session(outbox, "alice"), session(outbox, "bob")
    outbox.broadcast(room, room.roster, b"message\n", iter([alice, bob]))
    alice.reply({"id": 1, "ok": True, "seq": 9}, unwritten=True)
    alice.reply({"id": 2, "ok": True, "ts": 1.0})  # a ping: nothing to write
    bob.send(b"presence\n")
    unwritten = False
    outbox.refuse_held(lambda rid: b"refused %d\n" % rid)
    await settle()
    assert received(alice) == b'refused 1\n{"id":2,"ok":true,"ts":1.0}\n'
    assert received(bob) == b""


async def test_a_session_left_holding_more_than_the_cap_is_aborted():
    """Past the cap of unsent bytes the connection is dropped, not buffered."""
    outbox = Outbox()
    slow = session(outbox, "slow", cap=100, unsent=150)
    slow.send(b"x" * 10)
    await settle()
    assert slow.transport.aborted and slow.closed


async def test_a_large_reply_may_pass_the_cap_in_its_own_flush():
    """The bytes of replies in this flush do not count against the cap."""
    outbox = Outbox()
    asker = session(outbox, "asker", cap=100, unsent=150)
    asker.send(b"x" * 150, reply=True)
    await settle()
    assert not asker.transport.aborted
    asker.send(b"event\n")  # next flush: the 150 bytes still unsent now count
    await settle()
    assert asker.transport.aborted


async def test_close_waits_for_the_queue_to_go_out():
    """A closed session writes what it had queued, then closes."""
    unwritten = True
    outbox = Outbox(held=lambda: unwritten)
    alice = session(outbox, "alice")
    alice.reply({"id": 1, "ok": True})
    alice.close()
    alice.send(b"too late\n")
    await settle()
    assert not alice.transport.closed and alice.transport.writes == []
    unwritten = False
    outbox.flush()
    assert received(alice) == b'{"id":1,"ok":true}\n'
    assert alice.transport.closed


async def test_a_session_that_quit_still_closes_after_a_refused_write():
    """A closing session's held reply survives a refusal, and the session closes after it."""
    unwritten = True
    outbox = Outbox(held=lambda: unwritten)
    alice = session(outbox, "alice")
    alice.reply({"id": 1, "ok": True})  # quit's reply: nothing to write
    alice.close()
    unwritten = False
    outbox.refuse_held(lambda rid: b"refused %d\n" % rid)
    await settle()
    assert received(alice) == b'{"id":1,"ok":true}\n'
    assert alice.transport.closed
