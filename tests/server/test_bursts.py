"""Bursts within the flood limits reach every reader; only readers that stop reading are cut.

The real binary runs with its default limits; every member reads in a thread
of its own with a blocking socket, as a simple client would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from argon2 import PasswordHasher

from nexus.server.auth import FAST
from nexus.server.records import from_json
from nexus.server.store.journal import JournalStore
from tests.procs import ServerProcess

pytestmark = pytest.mark.long

PASSWORD = "burst-password"
DEADLINE = 30.0  # seconds the whole exchange may take before the test gives up


async def make_store(path: Path, names: list[str]) -> None:
    """A store holding `names`, all members of #general (cheap hashes: set-up is not measured)."""
    hashed = PasswordHasher(**FAST).hash(PASSWORD)
    store = await JournalStore.open(path)
    for name in names:
        store.apply(
            from_json({"op": "register", "username": name, "password": hashed, "ts": time.time()})
        )
    await store.close()


class Member(threading.Thread):
    """One logged-in member that reads everything, as fast as a blocking socket allows.

    It sends `says` into #general (pipelined, `batch` at a time) once `go` is
    set, and records the seq of every acknowledged say and every #general
    message it receives, until it has seen `expect()` messages.
    """

    def __init__(
        self,
        port: int,
        name: str,
        source: str,
        go: threading.Event,
        says: list[str] = (),
        batch: int = 0,
    ) -> None:
        super().__init__(daemon=True)
        self.name_ = name
        self.says = list(says)
        self.batch = batch or len(self.says) or 1
        self.go = go
        self.acked: list[int] = []
        self.refused: list[dict] = []
        self.seen: set[int] = set()
        self.expect: Callable[[], int | None] = lambda: None
        self.disconnected = False
        self.error: BaseException | None = None
        self.sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        self.sock.settimeout(0.1)  # a quiet tenth of a second: look at expect() again
        self._deadline = time.monotonic() + DEADLINE
        self._buffer = b""
        self._send({"cmd": "login", "username": name, "password": PASSWORD})
        reply = self._next_reply()
        assert reply["ok"], reply

    def _send(self, frame: dict) -> None:
        self.sock.sendall(orjson.dumps(frame) + b"\n")

    def _frames(self):
        """Frames as they come, and None whenever the line has been quiet a while."""
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                frame = orjson.loads(line)
                if frame.get("event") == "message" and frame["room"] == "general":
                    self.seen.add(frame["seq"])
                yield frame
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                if time.monotonic() > self._deadline:
                    raise
                yield None
                continue
            if not data:
                self.disconnected = True
                return
            self._buffer += data

    def _next_reply(self) -> dict:
        for frame in self._frames():
            if frame is not None and "ok" in frame:
                return frame
        raise EOFError("disconnected before the reply")

    def run(self) -> None:
        try:
            self.go.wait()
            for start in range(0, len(self.says), self.batch):
                chunk = self.says[start : start + self.batch]
                self.sock.sendall(
                    b"".join(
                        orjson.dumps({"cmd": "say", "room": "general", "text": text}) + b"\n"
                        for text in chunk
                    )
                )
                for _ in chunk:
                    reply = self._next_reply()
                    if reply["ok"]:
                        self.acked.append(reply["seq"])
                    else:
                        self.refused.append(reply)
            for _ in self._frames():
                wanted = self.expect()
                if wanted is not None and len(self.seen) >= wanted:
                    return
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc


def stalled_member(port: int, name: str, source: str) -> socket.socket:
    """A member that logs in and then never reads again."""
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(orjson.dumps({"cmd": "login", "username": name, "password": PASSWORD}) + b"\n")
    return sock


def offline_within(port: int, name: str, seconds: float) -> bool:
    """Whether the server shows `name` offline (all its connections dropped) within
    `seconds`, asked over a connection of another member."""
    with socket.create_connection(("127.0.0.1", port), source_address=("127.0.1.3", 0)) as sock:
        ask = sock.makefile("rwb")
        ask.readline()  # hello
        login = {"cmd": "login", "username": "reader0", "password": PASSWORD}
        whois = {"cmd": "whois", "username": name}
        deadline = time.monotonic() + seconds
        for frame in (login, *[whois] * int(seconds * 10 + 1)):
            ask.write(orjson.dumps(frame) + b"\n")
            ask.flush()
            while "ok" not in (reply := orjson.loads(ask.readline())):
                pass
            assert reply["ok"], reply
            if frame is whois:
                if not reply["user"]["online"]:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
    return False


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def run_burst(tmp_path: Path, senders: int, says: int, text: str, batch: int, *args: str) -> None:
    """`senders` members each say `says` texts (pipelined `batch` at a time) while 5
    members only read and one member stops reading; checks who got what."""
    import asyncio

    sender_names = [f"sender{i}" for i in range(senders)]
    reader_names = [f"reader{i}" for i in range(5)]
    data = tmp_path / "nexus_data.json"
    asyncio.run(make_store(data, [*sender_names, *reader_names, "stalled"]))
    # Connections come from several loopback addresses, each under the per-address cap.
    sources = [f"127.0.0.{2 + i // 30}" for i in range(senders)]
    with ServerProcess(data, *args) as server:
        baseline = peak_rss_mib(server.proc.pid)
        stalled = stalled_member(server.port, "stalled", "127.0.1.1")
        go = threading.Event()
        texts = [f"{i} {text}" for i in range(says)]
        members = [
            Member(server.port, name, source, go, texts, batch)
            for name, source in zip(sender_names, sources, strict=True)
        ]
        members += [Member(server.port, name, "127.0.1.2", go) for name in reader_names]
        senders_ = members[:senders]

        def acked_total() -> int | None:
            if any(m.is_alive() for m in senders_ if len(m.acked) + len(m.refused) < says):
                return None  # still sending: the total is not known yet
            return sum(len(m.acked) for m in senders_)

        for member in members:
            member.expect = acked_total
            member.start()
        go.set()
        started = time.monotonic()
        for member in members:
            member.join(DEADLINE)
        # The stalled member must be gone by the slow-reader timeout (10 s by
        # default, judged once a second) after it fell behind.
        stalled_dropped = offline_within(server.port, "stalled", 13 - (time.monotonic() - started))
        peak = peak_rss_mib(server.proc.pid)
        stalled.close()

    acked = {seq for m in senders_ for seq in m.acked}
    assert len(acked) == sum(len(m.acked) for m in senders_)  # no seq acknowledged twice
    cut = [m.name_ for m in members if m.disconnected]
    short = {m.name_: len(acked - m.seen) for m in members if acked - m.seen}
    failed = {m.name_: repr(m.error) for m in members if m.error}
    assert (cut, short, failed) == ([], {}, {}), (
        f"{len(cut)} disconnected, e.g. {cut[:3]}; {len(short)} missing messages, e.g. "
        f"{dict(list(short.items())[:3])}; {len(failed)} failed, e.g. {list(failed.values())[:2]}"
    )
    assert [m.refused for m in senders_ if m.refused] == []
    assert len(acked) == senders * says
    assert stalled_dropped, "the member that stopped reading is still connected"
    # Bounded: at most the hard limit held for the stalled reader plus one copy
    # of the burst (7 MB), not a copy of the burst per member (~470 MB).
    assert peak - baseline < 96, (baseline, peak)


def test_a_burst_within_the_flood_limits_reaches_every_reader(tmp_path):
    """60 members send their allowed burst of 30 messages of 4,000 characters at once:
    every member that reads gets every acknowledged message and stays connected."""
    run_burst(tmp_path, 60, 30, "x" * 3_990, 30)


def test_a_burst_of_four_byte_characters_reaches_every_reader(tmp_path):
    """30 members each send 30 messages of 4,000 four-byte characters (16 KB a frame)."""
    run_burst(tmp_path, 30, 30, "\U0001f600" * 3_990, 30)


def test_pipelined_batches_without_flood_control_reach_every_reader(tmp_path):
    """With --rate-limit off, one member pipelining batches of 100 x 3 KB is read by all."""
    run_burst(tmp_path, 1, 2_000, "y" * 3_000, 100, "--rate-limit", "off")
