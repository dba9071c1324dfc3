"""The outbox on its own: batching, shared room broadcasts, exact order, holding,
refusal and the slow-reader policy."""

from __future__ import annotations

import asyncio

import pytest

from nexus.server import outbox as outbox_module
from nexus.server.clock import Clock
from nexus.server.frames import JSON_LINES, Format, Frame
from nexus.server.model import Room
from nexus.server.outbox import Outbox, Outlet
from tests.clock import ManualClock

MIB = 1 << 20


class Wire:
    """A link that records each write and holds back what the test says."""

    format = JSON_LINES
    reframed = 0  # writes what it is given

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.parts: list[bytes | memoryview] = []  # as handed over, for sharing checks
        self.unsent = 0  # bytes the kernel "would not take"
        self.backlog_growth = 0  # bytes each write leaves unsent
        self.closed = self.aborted = False

    def write(self, data: bytes | memoryview) -> None:
        self.writelines([data])

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        self.parts += parts
        self.writes.append(b"".join(parts))
        self.unsent += self.backlog_growth

    def backlog(self) -> int:
        return self.unsent

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def F(line: bytes) -> Frame:
    """A frame whose line is `line` (the outbox reads nothing else of it)."""
    frame = Frame({})
    frame.line = line
    return frame


def make_outbox(
    soft: int = MIB, hard: int = 64 * MIB, timeout: float = 10.0, clock: Clock | None = None
) -> Outbox:
    return Outbox(soft, hard, timeout, clock)


def outlet(name: str) -> Outlet:
    return Outlet(Wire(), name)


def wire(o: Outlet) -> Wire:
    return o.link  # type: ignore[return-value]


def received(o: Outlet) -> bytes:
    return b"".join(wire(o).writes)


async def settle() -> None:
    """Lets the flush scheduled for this loop pass run."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_every_frame_of_a_pass_leaves_in_one_write():
    """Frames queued for an outlet during one pass go out together."""
    outbox = make_outbox()
    alice = outlet("alice")
    for i in range(5):
        outbox.send(alice, F(b"%d\n" % i))
    await settle()
    assert wire(alice).writes == [b"0\n1\n2\n3\n4\n"]


async def test_a_room_broadcast_is_shared_and_reaches_every_member():
    """A room's frames are joined once and written to each member."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    members = [outlet(f"u{i}") for i in range(3)]
    for i in range(4):
        outbox.broadcast(room, room.roster, F(b"m%d\n" % i), iter(members))
    await settle()
    written = [wire(m).writes for m in members]
    assert written == [[b"m0\nm1\nm2\nm3\n"]] * 3
    assert wire(members[0]).parts[0] is wire(members[1]).parts[0]  # one joined copy for all


async def test_own_frames_interleave_with_room_frames_in_the_order_queued():
    """A reply or DM between two room messages stays between them."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    alice, bob = outlet("alice"), outlet("bob")
    members = [alice, bob]
    outbox.broadcast(room, room.roster, F(b"m1\n"), iter(members))
    outbox.send(bob, F(b"dm1\n"))
    outbox.broadcast(room, room.roster, F(b"m2\n"), iter(members))
    outbox.broadcast(room, room.roster, F(b"m3\n"), iter(members))
    outbox.reply(alice, F(b"reply\n"), 1, False)
    outbox.send(bob, F(b"dm2\n"))
    outbox.broadcast(room, room.roster, F(b"m4\n"), iter(members))
    await settle()
    assert received(alice) == b"m1\nm2\nm3\nreply\nm4\n"
    assert received(bob) == b"m1\ndm1\nm2\nm3\ndm2\nm4\n"
    # Cut up differently, both are slices of one joined copy of the room's frames.
    views = [part for o in (alice, bob) for part in wire(o).parts if type(part) is memoryview]
    shared = {id(view.obj) for view in views}
    assert len(shared) == 1


async def test_a_frame_for_the_others_skips_its_own_user_and_shares_the_broadcast():
    """An event about a member (typing) reaches the others in the room's one
    broadcast; the member's outlets skip it alone, not the frames around it,
    whether it opens the broadcast, ends it or comes between two messages."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    ana, ana_phone, bob, cid = (outlet(name) for name in ("ana", "ana2", "bob", "cid"))
    members = [ana, ana_phone, bob, cid]
    outbox.broadcast_to_others(room, room.roster, F(b"t1\n"), iter(members), [ana, ana_phone])
    outbox.broadcast(room, room.roster, F(b"m1\n"), iter(members))
    outbox.broadcast_to_others(room, room.roster, F(b"t2\n"), iter(members), [ana])
    outbox.broadcast_to_others(room, room.roster, F(b"t3\n"), iter(members), [ana])
    outbox.broadcast(room, room.roster, F(b"m2\n"), iter(members))
    outbox.broadcast_to_others(room, room.roster, F(b"t4\n"), iter(members), [bob])
    await settle()
    assert received(ana) == b"m1\nm2\nt4\n"
    assert received(ana_phone) == b"m1\nt2\nt3\nm2\nt4\n"
    assert received(bob) == b"t1\nm1\nt2\nt3\nm2\n"
    assert received(cid) == b"t1\nm1\nt2\nt3\nm2\nt4\n"
    assert wire(cid).writes == [received(cid)]  # one write
    views = [part for o in members for part in wire(o).parts if type(part) is memoryview]
    assert len({id(view.obj) for view in views}) == 1  # slices of one joined copy
    assert wire(cid).parts[0] is wire(bob).parts[0].obj  # the whole broadcast, shared


async def test_a_membership_change_starts_a_new_broadcast():
    """After the room's roster changes, its frames go to the members as they are now."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    alice, bob = outlet("alice"), outlet("bob")
    outbox.broadcast(room, room.roster, F(b"before\n"), iter([alice]))
    room.roster += 1  # bob joined
    outbox.broadcast(room, room.roster, F(b"after\n"), iter([alice, bob]))
    await settle()
    assert received(alice) == b"before\nafter\n"
    assert received(bob) == b"after\n"


async def test_regroup_reaches_a_session_that_logged_in_since():
    """A new session of a member gets the room's later frames after a regroup."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    first, second = outlet("alice"), outlet("alice")
    outbox.broadcast(room, room.roster, F(b"m1\n"), iter([first]))
    outbox.regroup()
    outbox.broadcast(room, room.roster, F(b"m2\n"), iter([first, second]))
    await settle()
    assert received(first) == b"m1\nm2\n"
    assert received(second) == b"m2\n"


async def test_nothing_leaves_while_held_until_flushed():
    """While the store has unwritten changes, frames wait for its flush."""
    outbox = make_outbox()
    alice = outlet("alice")
    outbox.hold()
    outbox.send(alice, F(b"event\n"))
    await settle()
    assert wire(alice).writes == []
    outbox.flush()  # what the store does after its write
    assert wire(alice).writes == [b"event\n"]


async def test_a_write_under_way_releases_only_what_was_queued_before_the_next_change():
    """An engine that writes while the loop goes on: frames queued before a
    change applied during the write wait for the write after it, and a room's
    frames on either side of that change never share a view."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    alice, bob = outlet("alice"), outlet("bob")
    outbox.hold()
    outbox.broadcast(room, room.roster, F(b"m1\n"), iter([alice, bob]))
    outbox.reply(alice, F(b"seq 1\n"), 1, True)
    outbox.cut()  # the store starts writing m1
    outbox.reply(bob, F(b"pong\n"), 2, False)  # a read, answered during the write
    outbox.hold()  # m2 is applied while m1 is being written
    outbox.broadcast(room, room.roster, F(b"m2\n"), iter([alice, bob]))
    outbox.reply(alice, F(b"seq 2\n"), 3, True)
    await settle()
    assert wire(alice).writes == wire(bob).writes == []  # still held
    outbox.written()  # m1 is written: what was queued before m2 goes
    assert received(alice) == b"m1\nseq 1\n"
    assert received(bob) == b"m1\npong\n"
    await settle()
    assert received(alice) == b"m1\nseq 1\n"  # m2 waits for its own write
    outbox.cut()
    outbox.written()
    assert received(alice) == b"m1\nseq 1\nm2\nseq 2\n"
    assert received(bob) == b"m1\npong\nm2\n"


async def test_a_write_under_way_with_no_change_meanwhile_releases_everything():
    """Frames queued during the write but before any new change go with it."""
    outbox = make_outbox()
    alice = outlet("alice")
    outbox.hold()
    outbox.reply(alice, F(b"seq 1\n"), 1, True)
    outbox.cut()
    outbox.reply(alice, F(b"pong\n"), 2, False)
    outbox.written()
    assert received(alice) == b"seq 1\npong\n"


async def test_a_failed_write_under_way_refuses_the_changes_after_it_too():
    """The store reloads after a failed write: every change not yet written is
    refused, before and after the change applied during the write."""
    outbox = make_outbox()
    alice = outlet("alice")
    outbox.reply(alice, F(b"before\n"), 0, False)
    outbox.hold()
    outbox.reply(alice, F(b"seq 1\n"), 1, True)
    outbox.cut()
    outbox.hold()
    outbox.reply(alice, F(b"seq 2\n"), 2, True)
    outbox.refuse(lambda rid: F(b"refused %d\n" % rid))
    await settle()
    assert received(alice) == b"before\nrefused 1\nrefused 2\n"


async def test_a_refused_write_keeps_what_came_before_the_hold_and_every_reply():
    """After a failed write: frames queued before the hold go out as they were;
    events queued since are dropped; replies queued since are kept, or refused
    when their own change was not written. Every reply keeps its place."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    alice, bob = outlet("alice"), outlet("bob")
    outbox.reply(alice, F(b"ping 1\n"), 1, False)  # answered before any change
    outbox.broadcast(room, room.roster, F(b"earlier\n"), iter([alice, bob]))
    outbox.hold()  # a change is applied...
    outbox.broadcast(room, room.roster, F(b"message\n"), iter([alice, bob]))
    outbox.reply(alice, F(b"seq 9\n"), 2, True)  # ...by this request
    outbox.reply(alice, F(b"ping 3\n"), 3, False)
    outbox.send(bob, F(b"presence\n"))
    outbox.refuse(lambda rid: F(b"refused %d\n" % rid))
    await settle()
    assert received(alice) == b"ping 1\nearlier\nrefused 2\nping 3\n"
    assert received(bob) == b"earlier\n"


async def test_a_reader_past_the_soft_limit_stays_while_it_reads():
    """Behind after a burst is not a reason to drop: each second it takes at
    least the soft limit's worth, it gets another `timeout`."""
    clock = ManualClock()
    outbox = make_outbox(soft=100, timeout=3.0, clock=clock)
    reader = outlet("reader")
    outbox.send(reader, F(b"x" * 1000))
    wire(reader).unsent = 900  # the kernel took 100 bytes
    await settle()
    for _ in range(6):  # twice the timeout, taking 100 bytes a look
        clock.advance(outbox_module.CHECK_EVERY)
        wire(reader).unsent -= 100
    assert not wire(reader).aborted


async def test_a_reader_that_stops_taking_is_dropped_after_the_timeout():
    clock = ManualClock()
    outbox = make_outbox(soft=100, timeout=5.0, clock=clock)
    stalled = outlet("stalled")
    outbox.send(stalled, F(b"x" * 1000))
    wire(stalled).unsent = 900
    await settle()
    clock.advance(4.0)
    assert not wire(stalled).aborted  # not before the timeout
    clock.advance(1.0)
    assert wire(stalled).aborted and stalled.dead
    outbox.send(stalled, F(b"more\n"))  # nothing more is queued for it
    assert stalled.parts == []


async def test_a_reader_that_catches_up_is_no_longer_timed():
    clock = ManualClock()
    outbox = make_outbox(soft=100, timeout=0.5, clock=clock)
    reader = outlet("reader")
    outbox.send(reader, F(b"x" * 1000))
    wire(reader).unsent = 900
    await settle()
    assert reader.lagging_since is not None
    wire(reader).unsent = 0
    outbox.caught_up(reader)  # what the front end says once its buffer drains
    clock.advance(2.0)
    assert reader.lagging_since is None and not wire(reader).aborted
    assert not clock.timers  # nothing left to look at


async def test_an_outlet_past_the_hard_limit_is_dropped_at_once():
    outbox = make_outbox(soft=100, hard=500)
    slow = outlet("slow")
    wire(slow).backlog_growth = 600
    outbox.send(slow, F(b"x" * 10))
    await settle()
    assert wire(slow).aborted and slow.dead


@pytest.mark.parametrize("held", [False, True])
async def test_close_waits_for_the_queue_to_go_out(held):
    """A closing outlet writes what it had queued, then closes; nothing queued after."""
    outbox = make_outbox()
    alice = outlet("alice")
    if held:
        outbox.hold()
    outbox.reply(alice, F(b'{"id":1,"ok":true}\n'), 1, False)
    alice.close()
    outbox.send(alice, F(b"too late\n"))
    await settle()
    if held:
        assert not wire(alice).closed and wire(alice).writes == []
        outbox.flush()
    assert received(alice) == b'{"id":1,"ok":true}\n'
    assert wire(alice).closed


async def test_an_outlet_that_quit_still_closes_after_a_refused_write():
    """A closing outlet's held reply survives a refusal, and it closes after it."""
    outbox = make_outbox()
    alice = outlet("alice")
    outbox.hold()
    outbox.reply(alice, F(b'{"id":1,"ok":true}\n'), 1, False)  # quit's reply: nothing to write
    alice.close()
    outbox.refuse(lambda rid: F(b"refused %d\n" % rid))
    await settle()
    assert received(alice) == b'{"id":1,"ok":true}\n'
    assert wire(alice).closed


class Counted(Format):
    """A format that counts the frames it encodes."""

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, frame: Frame) -> bytes:
        self.encoded += 1
        return b"<" + frame.line[:-1] + b">"


async def test_a_broadcast_is_encoded_once_per_format_whatever_its_members():
    """Members of two formats share one encoding each: a room's frames are
    encoded once for all members of a format, and a member's own frame
    between them in its own format, in the order queued."""
    outbox = make_outbox()
    room = Room("tech", "", None, True, 0.0)
    counted = Counted()
    natives = [outlet(f"n{i}") for i in range(3)]
    others = [outlet(f"o{i}") for i in range(3)]
    for o in others:
        wire(o).format = counted
    members = [*natives, *others]
    outbox.broadcast(room, room.roster, F(b"m1\n"), iter(members))
    outbox.send(others[0], F(b"own\n"))
    outbox.broadcast(room, room.roster, F(b"m2\n"), iter(members))
    await settle()
    assert all(received(n) == b"m1\nm2\n" for n in natives)
    assert received(others[0]) == b"<m1><own><m2>"
    assert received(others[1]) == received(others[2]) == b"<m1><m2>"
    assert counted.encoded == 3  # m1 and m2 once for all three, and its own frame
