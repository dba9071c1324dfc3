"""The load generator: one process, pinned to its own core, holding every client.

Run by the runner as `python -m bench.generator` with a JSON spec on stdin;
prints one JSON result on stdout. It speaks three protocols through small
adapters (Nexus JSON lines, IRC, Redis RESP) so that every server gets the
same load and the same measurement:

- senders write at a set rate (messages/s) that steps up; each message's text
  starts with `@<send time in ns>` (CLOCK_MONOTONIC, shared by all processes);
- every receiver counts deliveries by counting a marker in the raw bytes it
  reads (`bytes.count`, no parsing); a sample of receivers also cut their
  bytes into lines and time each message: receive time - send time;
- the server's CPU and RSS come from /proc/PID, sampled during each step.

All load is bounded: each step runs for a set time, and stepping stops at the
first step the server cannot keep up with.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import multiprocessing
import os
import random
import re
import resource
import socket
import statistics
import sys
import time
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

TS = re.compile(rb"@(\d{19})")
PAD = b"x" * 60  # message text: "@<19 digits> " + 60 bytes, ~170 bytes as a Nexus event
# As long as PAD, in protocol 3's formatting: each kind of span, and a link.
STYLED = b"**bold** *it* ~~no~~ `code` [doc](https://e.io/a) xxxxxxxxxx"
TYPING_TOLD_NS = 1_000_000_000  # the server tells one `on` a second for a place
assert len(STYLED) == len(PAD)


class Stats:
    def __init__(self) -> None:
        self.delivered = 0
        self.latencies: list[int] = []  # ns, from sampled receivers


STATS = Stats()


def quantiles(values: list[int]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    values.sort()
    n = len(values)
    return {
        "p50_ms": round(values[(n - 1) // 2] / 1e6, 3),
        "p99_ms": round(values[int((n - 1) * 0.99)] / 1e6, 3),
        "max_ms": round(values[-1] / 1e6, 3),
        "samples": n,
    }


def proc_stats(pid: int) -> dict[str, float]:
    from bench.servers import proc_stats as read

    return read(pid)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Conn(asyncio.Protocol):
    """One client connection: line-ish set-up first, then cheap counting."""

    frame_end = b"\n"  # a received frame ends with it: sampled latencies are cut there

    def __init__(self, marker: bytes, sampled: bool = False) -> None:
        self.transport: asyncio.Transport | None = None
        self.setup = True
        self.buf = bytearray()
        self.want: tuple[bytes, bytes | None, asyncio.Future[None]] | None = None
        self.marker = marker
        self.keep = len(marker) - 1
        self.tail = b""
        self.count = 0
        self.sampled = sampled
        self.partial = b""
        self.closed = False
        self.name = ""
        self.consumed = b""  # what the last expect() matched, through its pattern
        self.target = b""  # room or peer this connection sends to
        self.typed_at = -TYPING_TOLD_NS  # when it last said `typing` (ns)

    # -- asyncio callbacks --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.want is not None and not self.want[2].done():
            self.want[2].set_exception(ConnectionError(f"{self.name}: connection lost"))

    def data_received(self, data: bytes) -> None:
        if self.setup:
            self._setup_data(data)
            return
        n = data.count(self.marker)
        if self.tail:  # a marker split across two reads
            n += (self.tail + data[: self.keep]).count(self.marker)
        self.tail = (
            data[-self.keep :] if len(data) >= self.keep else (self.tail + data)[-self.keep :]
        )
        self.count += n
        STATS.delivered += n
        if self.sampled:
            now = time.monotonic_ns()
            if self.partial:
                data = self.partial + data
            cut = data.rfind(self.frame_end) + 1
            self.partial = data[cut:]
            append = STATS.latencies.append
            for sent in TS.findall(data, 0, cut):
                append(now - int(sent))

    def _setup_data(self, data: bytes) -> None:
        self.buf += data
        if self.want is None:
            if len(self.buf) > 1 << 20:
                del self.buf[:]
            return
        pattern, fail, future = self.want
        if fail is not None and fail in self.buf:
            self.want = None
            future.set_exception(RuntimeError(f"{self.name}: {bytes(self.buf[-300:])!r}"))
            return
        at = self.buf.find(pattern)
        if at >= 0:
            self.consumed = bytes(self.buf[: at + len(pattern)])
            del self.buf[: at + len(pattern)]
            self.want = None
            future.set_result(None)

    # -- set-up helpers -----------------------------------------------------

    async def expect(self, pattern: bytes, fail: bytes | None = None, timeout: float = 60) -> None:
        if fail is not None and fail in self.buf:
            raise RuntimeError(f"{self.name}: {bytes(self.buf[-300:])!r}")
        at = self.buf.find(pattern)
        if at >= 0:
            self.consumed = bytes(self.buf[: at + len(pattern)])
            del self.buf[: at + len(pattern)]
            return
        if self.closed:
            raise ConnectionError(f"{self.name}: connection lost")
        future = asyncio.get_running_loop().create_future()
        self.want = (pattern, fail, future)
        await asyncio.wait_for(future, timeout)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def start_counting(self) -> None:
        self.setup = False
        self.buf = bytearray()
        self.tail = b""
        self.partial = b""


class WsConn(Conn):
    """A connection to the web port: after the WebSocket handshake, each frame it
    writes goes as one masked text message (framed by the websockets package), and
    what it reads is counted in the raw bytes as on TCP (server frames are unmasked,
    so the markers appear as they are). A frame's JSON ends with `}`."""

    frame_end = b"}"

    def write(self, data: bytes) -> None:
        if self.upgraded:
            data = b"".join(
                Frame(Opcode.TEXT, line).serialize(mask=True) for line in data.split(b"\n")[:-1]
            )
        self.transport.write(data)

    upgraded = False


class AckConn(Conn):
    """Closed loop for the persistence scenario: keeps `window` requests in flight,
    counts replies, and times each from its send."""

    def __init__(self, marker: bytes, frame: bytes, window: int) -> None:
        super().__init__(marker)
        self.frame = frame
        self.window = window
        self.sent_at: collections.deque[int] = collections.deque()
        self.running = False

    def fill(self) -> None:
        missing = self.window - len(self.sent_at)
        if missing > 0 and self.running:
            now = time.monotonic_ns()
            self.sent_at.extend([now] * missing)
            self.transport.write(self.frame * missing)

    def data_received(self, data: bytes) -> None:
        if self.setup:
            self._setup_data(data)
            return
        n = data.count(self.marker)
        if self.tail:
            n += (self.tail + data[: self.keep]).count(self.marker)
        self.tail = (
            data[-self.keep :] if len(data) >= self.keep else (self.tail + data)[-self.keep :]
        )
        if not n:
            return
        self.count += n
        STATS.delivered += n
        now = time.monotonic_ns()
        append, pop = STATS.latencies.append, self.sent_at.popleft
        for _ in range(min(n, len(self.sent_at))):
            append(now - pop())
        self.fill()


# -- protocol adapters ------------------------------------------------------------


class Nexus:
    room_marker = b'"event":"message"'
    dm_marker = b'"event":"dm"'
    ack_marker = b'"ok":true'
    echoes = True  # the sender receives its own room message and DM

    def __init__(self, spec: dict[str, Any]) -> None:
        self.password = spec["password"].encode()

    async def login(self, conn: Conn, name: str) -> None:
        await conn.expect(b'"event":"hello"')
        conn.write(
            b'{"cmd":"login","username":"%s","password":"%s"}\n' % (name.encode(), self.password)
        )
        await conn.expect(b'"ok":true', fail=b'"ok":false')

    async def join(self, conn: Conn, room: str) -> None:
        pass  # memberships are in the store the runner wrote

    @staticmethod
    def say_in(room: bytes, ts: int, text: bytes = PAD) -> bytes:
        return b'{"cmd":"say","room":"%s","text":"@%019d %s"}\n' % (room, ts, text)

    @staticmethod
    def say(conn: Conn, ts: int) -> bytes:
        return Nexus.say_in(conn.target, ts)

    @staticmethod
    def dm(conn: Conn, ts: int) -> bytes:
        return b'{"cmd":"dm","to":"%s","text":"@%019d %s"}\n' % (conn.target, ts, PAD)

    @staticmethod
    def say_styled(conn: Conn, ts: int) -> bytes:
        """A message as long as say's, formatted."""
        return Nexus.say_in(conn.target, ts, STYLED)

    @staticmethod
    def say_typing(conn: Conn, ts: int) -> bytes:
        """A formatted message, after its writer's `typing` as the clients say
        it: for a new message once a second has passed since their last one
        (sooner, the server would not tell it; docs/protocol.md)."""
        said = Nexus.say_in(conn.target, ts, STYLED)
        if ts - conn.typed_at < TYPING_TOLD_NS:
            return said
        conn.typed_at = ts
        return b'{"cmd":"typing","room":"%s"}\n' % conn.target + said


class Irc:
    room_marker = dm_marker = b" PRIVMSG "
    echoes = False  # IRC does not echo a PRIVMSG to its sender

    def __init__(self, spec: dict[str, Any]) -> None:
        # Nexus's IRC front end logs accounts in with PASS; ngircd has no accounts.
        self.password = spec["password"].encode() if spec.get("irc_accounts") else None

    async def login(self, conn: Conn, name: str) -> None:
        nick = name.encode()
        if self.password is not None:
            conn.write(b"PASS :%s:%s\r\n" % (nick, self.password))
        conn.write(b"NICK %s\r\nUSER %s 0 * :bench\r\n" % (nick, nick))
        await conn.expect(b" 001 ", fail=b"ERROR")

    async def join(self, conn: Conn, room: str) -> None:
        conn.write(b"JOIN #%s\r\n" % room.encode())
        await conn.expect(b" 366 ", fail=b"ERROR")

    @staticmethod
    def say(conn: Conn, ts: int) -> bytes:
        return b"PRIVMSG #%s :@%019d %s\r\n" % (conn.target, ts, PAD)

    @staticmethod
    def dm(conn: Conn, ts: int) -> bytes:
        return b"PRIVMSG %s :@%019d %s\r\n" % (conn.target, ts, PAD)


class Redis:
    room_marker = b"\r\nmessage\r\n"
    echoes = True  # every subscriber receives; publishers are separate connections

    def __init__(self, spec: dict[str, Any]) -> None:
        pass

    async def login(self, conn: Conn, name: str) -> None:
        pass

    async def join(self, conn: Conn, room: str) -> None:
        conn.write(b"SUBSCRIBE %s\r\n" % room.encode())
        await conn.expect(b"subscribe\r\n")

    @staticmethod
    def say(conn: Conn, ts: int) -> bytes:
        room, payload = conn.target, b"@%019d %s" % (ts, PAD)
        return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(room),
            room,
            len(payload),
            payload,
        )


class NexusWs(Nexus):
    """The same protocol through the web port's /ws, as the web client speaks it."""

    conn_class = WsConn

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.uri = parse_uri(f"ws://{spec.get('host', '127.0.0.1')}:{spec['port']}/ws")

    async def login(self, conn: Conn, name: str) -> None:
        conn.write(ClientProtocol(self.uri).connect().serialize())
        await conn.expect(b"\r\n\r\n", fail=b"HTTP/1.1 4")
        if b" 101 " not in conn.consumed:
            raise RuntimeError(f"{name}: no WebSocket: {conn.consumed[:200]!r}")
        conn.upgraded = True
        await super().login(conn, name)


ADAPTERS = {"nexus": Nexus, "nexus-ws": NexusWs, "irc": Irc, "redis": Redis}


# -- the generator ----------------------------------------------------------------


class Uploader:
    """One member POSTing files to /files back to back, in a process of its
    own: an upload's copies and sends would otherwise stall the generator's
    event loop and show up as the members' latency. Each file is a new
    content (its first bytes numbered), so each is hashed and stored."""

    def __init__(self, host: str, spec: dict[str, Any]) -> None:
        context = multiprocessing.get_context("fork")
        self._stopping = context.Event()
        self._took, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=self._run, args=(host, spec, sender), daemon=True)
        self._process.start()

    def stop(self) -> list[float]:
        """Ends the uploads after the one under way; the seconds each took."""
        self._stopping.set()
        took: list[float] = self._took.recv()
        self._process.join()
        return took

    def _run(self, host: str, spec: dict[str, Any], took: Any) -> None:
        port, size = spec["upload"]["port"], spec["upload"]["size"]
        auth = base64.b64encode(f"{spec['names'][0]}:{spec['password']}".encode()).decode()
        body = memoryview(os.urandom(1 << 20))
        times: list[float] = []
        n = 0
        while not self._stopping.is_set():
            n += 1
            t0 = time.monotonic()
            with socket.create_connection((host, port)) as sock:
                sock.sendall(
                    (
                        f"POST /files HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"Authorization: Basic {auth}\r\nContent-Length: {size}\r\n"
                        f'Content-Disposition: attachment; filename="load{n}.bin"\r\n'
                        "Connection: close\r\n\r\n"
                    ).encode()
                    + b"%08d" % n
                )
                left = size - 8
                while left > 0:
                    piece = body[8 : 8 + min(left, len(body) - 8)]
                    sock.sendall(piece)
                    left -= len(piece)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            if b" 201 " not in answer.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"upload refused: {answer[:200]!r}")
            times.append(time.monotonic() - t0)
        took.send(times)


class Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.host = spec.get("host", "127.0.0.1")
        # Several nodes: each new connection to the next, round the list.
        self.ports = spec.get("ports") or [spec["port"]]
        self._connected = 0
        self.pid = spec.get("server_pid")
        # CPU counted by part (several nodes: the nodes, PostgreSQL, Redis);
        # the server's own figures are their sums.
        self.parts: dict[str, list[int]] = spec.get("parts") or (
            {"server": [self.pid]} if self.pid else {}
        )
        self.adapter = ADAPTERS[spec["proto"]](spec)
        self.conns: list[Conn] = []
        self.loop = asyncio.get_running_loop()

    async def connect(self, conn: Conn, rcvbuf: int = 0) -> Conn:
        port = self.ports[self._connected % len(self.ports)]
        self._connected += 1
        if rcvbuf:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await self.loop.sock_connect(sock, (self.host, port))
            await self.loop.create_connection(lambda: conn, sock=sock)
        else:
            await self.loop.create_connection(lambda: conn, self.host, port)
        self.conns.append(conn)
        return conn

    async def open_members(
        self,
        names: list[str],
        room: str | None,
        marker: bytes,
        sample_every: int,
        slow: set[int] = frozenset(),
        concurrency: int = 200,
    ) -> list[Conn]:
        """Connects, logs in and joins each of `names`, `concurrency` at a time."""
        members: list[Conn | None] = [None] * len(names)
        # ngircd's listen backlog is short: a burst of connects overflows it
        # and the kernel retries each SYN after 1 s, 3 s, 7 s... (the "slow
        # registration" of FIELD_NOTES), so IRC clients connect a few at a time.
        gate = asyncio.Semaphore(self.spec.get("concurrency", concurrency))

        async def one(i: int, name: str) -> None:
            async with gate:
                make = getattr(self.adapter, "conn_class", Conn)
                conn = make(marker, sampled=i % sample_every == 0 and i not in slow)
                conn.name = name
                await self.connect(conn, rcvbuf=4096 if i in slow else 0)
                await self.adapter.login(conn, name)
                if room is not None:
                    await self.adapter.join(conn, room)
                members[i] = conn

        await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))
        return members  # type: ignore[return-value]

    def sample_server(self) -> dict[str, Any]:
        if not self.parts:
            return {}
        cpu: dict[str, float] = {}
        rss = peak = 0.0
        for part, pids in self.parts.items():
            stats = [proc_stats(pid) for pid in pids]
            cpu[part] = sum(stat["cpu_s"] for stat in stats)
            rss += sum(stat["rss_mib"] for stat in stats)
            peak += sum(stat["peak_rss_mib"] for stat in stats)
        return {"cpu_s": sum(cpu.values()), "rss_mib": rss, "peak_rss_mib": peak, "parts": cpu}

    async def drive(self, senders: list[Conn], make, rate: float, duration: float) -> int:
        """Writes `rate` messages/s round-robin over `senders` for `duration` s."""
        tick = 0.001
        count = len(senders)
        start = time.monotonic()
        sent = k = 0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= duration:
                break
            due = int(rate * elapsed) - sent
            if due > 0:
                ts = time.monotonic_ns()
                batches: dict[Conn, list[bytes]] = {}
                for _ in range(due):
                    conn = senders[k]
                    k = k + 1 if k + 1 < count else 0
                    if not conn.closed:
                        batches.setdefault(conn, []).append(make(conn, ts))
                for conn, frames in batches.items():
                    conn.write(b"".join(frames))
                sent += due
            await asyncio.sleep(tick)
        return sent

    async def drain(self, limit: float = 3.0) -> None:
        """Waits until deliveries stop arriving (or `limit` s)."""
        deadline = time.monotonic() + limit
        last = -1
        while time.monotonic() < deadline and STATS.delivered != last:
            last = STATS.delivered
            await asyncio.sleep(0.2)

    async def step(
        self, senders: list[Conn], make, rate: float, duration: float, per_message: float
    ) -> dict[str, Any]:
        """One step at `rate`: deliveries, latency, server and generator CPU and memory."""
        await self.drain(1.0)
        STATS.latencies = []
        rss_peak = 0.0
        before = self.sample_server()
        delivered0, gen0, t0 = STATS.delivered, own_cpu(), time.monotonic()
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal rss_peak
            while not done.is_set():
                if self.parts:
                    rss_peak = max(rss_peak, self.sample_server()["rss_mib"])
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        sent = await self.drive(senders, make, rate, duration)
        elapsed = time.monotonic() - t0
        delivered, gen_cpu = STATS.delivered - delivered0, own_cpu() - gen0
        after = self.sample_server()
        done.set()
        await watcher
        latencies, STATS.latencies = STATS.latencies, []
        expected = sent * per_message
        result = {
            "offered_msgs_s": round(rate, 1),
            "sent": sent,
            "delivered": delivered,
            "expected": round(expected),
            "deliveries_s": round(delivered / elapsed),
            "msgs_s": round(delivered / elapsed / per_message) if per_message else 0,
            "kept_up": delivered >= 0.95 * expected,
            **quantiles(latencies),
            "generator_cpu_pct": round(100 * gen_cpu / elapsed, 1),
        }
        if before:
            result["server_cpu_pct"] = round(100 * (after["cpu_s"] - before["cpu_s"]) / elapsed, 1)
            result["server_rss_mib"] = round(max(rss_peak, after["rss_mib"]), 1)
            if len(self.parts) > 1:
                result["cpu_pct_by_part"] = {
                    part: round(100 * (after["parts"][part] - before["parts"][part]) / elapsed, 1)
                    for part in self.parts
                }
        return result

    async def stepped(
        self, senders: list[Conn], make, per_message: float, bound_ms: float
    ) -> list[dict[str, Any]]:
        spec = self.spec
        steps = []
        for rate in spec["rates"]:
            result = await self.step(senders, make, rate, spec["step_s"], per_message)
            steps.append(result)
            p99 = result["p99_ms"]
            if not result["kept_up"] or p99 is None or p99 > 5 * bound_ms:
                break
        return steps

    # -- scenarios ----------------------------------------------------------------

    async def fanout(self) -> dict[str, Any]:
        spec = self.spec
        members, room = spec["members"], spec.get("room", "bench")
        adapter = self.adapter
        marker = adapter.room_marker
        names = [spec["names"][i] for i in range(members)]
        sample_every = max(1, round(1 / spec.get("sample", 0.05)))
        conns = await self.open_members(names, room, marker, sample_every)
        if spec["proto"] == "redis":
            publishers = [Conn(marker) for _ in range(spec.get("publishers", 10))]
            for conn in publishers:
                await self.connect(conn)
            senders, per_message = publishers, members
        else:
            senders = conns
            per_message = members if adapter.echoes else members - 1
        for conn in self.conns:
            conn.target = room.encode()
            conn.start_counting()
        say = getattr(adapter, spec.get("say", "say"))
        steps = await self.stepped(senders, say, per_message, spec["bound_ms"])
        return {"steps": steps, "connections": len(self.conns)}

    async def slow(self) -> dict[str, Any]:
        """One run at a fixed rate with every member reading, then the same run with
        one member that has stopped reading."""
        spec = self.spec
        members, room = spec["members"], spec.get("room", "bench")
        adapter = self.adapter
        sample_every = max(1, round(1 / spec.get("sample", 0.1)))
        slow_index = members - 1
        names = [spec["names"][i] for i in range(members)]
        conns = await self.open_members(
            names, room, adapter.room_marker, sample_every, slow={slow_index}
        )
        for conn in conns:
            conn.target = room.encode()
            conn.start_counting()
        quiet = conns[slow_index]
        senders = conns[:slow_index]
        per_message = members if adapter.echoes else members - 1
        rate, duration = spec["rates"][0], spec["step_s"]
        rss0 = self.sample_server().get("rss_mib")
        baseline = await self.step(senders, adapter.say, rate, duration, per_message)
        quiet.transport.pause_reading()
        # The stalled member no longer counts anything.
        stalled = await self.step(senders, adapter.say, rate, duration, per_message - 1)
        after = self.sample_server()
        return {
            "baseline": baseline,
            "with_slow": stalled,
            "slow_disconnected": quiet.closed,
            "server_rss_before_mib": rss0,
            "server_peak_rss_mib": after.get("peak_rss_mib"),
            "connections": len(self.conns),
        }

    async def uploading(self) -> dict[str, Any]:
        """One run at a fixed rate, then the same run while one member uploads
        files of `upload.size` bytes to the web port, one after another."""
        spec = self.spec
        members, room = spec["members"], spec.get("room", "bench")
        adapter = self.adapter
        sample_every = max(1, round(1 / spec.get("sample", 0.1)))
        names = [spec["names"][i] for i in range(members)]
        conns = await self.open_members(names, room, adapter.room_marker, sample_every)
        for conn in conns:
            conn.target = room.encode()
            conn.start_counting()
        per_message = members if adapter.echoes else members - 1
        rate, duration = spec["rates"][0], spec["step_s"]
        baseline = await self.step(conns, adapter.say, rate, duration, per_message)
        uploader = Uploader(self.host, spec)
        loaded = await self.step(conns, adapter.say, rate, duration, per_message)
        took = uploader.stop()
        size = spec["upload"]["size"]
        return {
            "baseline": baseline,
            "with_uploads": loaded,
            "uploads": len(took),
            "upload_s_median": round(statistics.median(took), 2) if took else None,
            "upload_mib_s": round(len(took) * size / (1 << 20) / sum(took), 1) if took else None,
            "connections": len(self.conns),
        }

    async def dm(self) -> dict[str, Any]:
        spec = self.spec
        pairs = spec["pairs"]
        adapter = self.adapter
        names = [spec["names"][i] for i in range(2 * pairs)]
        sample_every = max(1, round(1 / spec.get("sample", 0.25)))
        conns = await self.open_members(names, None, adapter.dm_marker, sample_every)
        for i, conn in enumerate(conns):
            conn.target = names[i ^ 1].encode()
            conn.start_counting()
        per_message = 2 if adapter.echoes else 1
        steps = await self.stepped(conns, adapter.dm, per_message, spec["bound_ms"])
        return {"steps": steps, "connections": len(self.conns)}

    async def idle(self) -> dict[str, Any]:
        """Opens `connections` connections, then logs each in; memory before and after."""
        spec = self.spec
        total = spec["connections"]
        names = spec["names"]
        base = self.sample_server()
        gate = asyncio.Semaphore(spec.get("concurrency", 500))
        conns: list[Conn] = []

        async def one(i: int) -> None:
            async with gate:
                conn = Conn(b"\n")
                conn.name = names[i]
                await self.connect(conn)
                await conn.expect(b'"event":"hello"')
                conns.append(conn)

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(total)))
        connect_s = time.monotonic() - t0
        await asyncio.sleep(1.0)
        connected = self.sample_server()
        t1 = time.monotonic()
        gate = asyncio.Semaphore(spec.get("concurrency", 500))

        login_after_hello = _login_after_hello(self.adapter)

        async def login(conn: Conn) -> None:
            async with gate:
                await login_after_hello(conn, conn.name)

        await asyncio.gather(*(login(conn) for conn in conns))
        login_s = time.monotonic() - t1
        await asyncio.sleep(1.0)
        logged_in = self.sample_server()
        held = sum(1 for conn in conns if not conn.closed)
        return {
            "connections": total,
            "held": held,
            "connect_s": round(connect_s, 3),
            "connects_s": round(total / connect_s),
            "login_s": round(login_s, 3),
            "logins_s": round(total / login_s),
            "server_rss_base_mib": round(base["rss_mib"], 1),
            "server_rss_connected_mib": round(connected["rss_mib"], 1),
            "server_rss_logged_in_mib": round(logged_in["rss_mib"], 1),
            "kib_per_connection": round((connected["rss_mib"] - base["rss_mib"]) * 1024 / total, 2),
            "kib_per_session": round((logged_in["rss_mib"] - base["rss_mib"]) * 1024 / total, 2),
            "server_cpu_s": round(logged_in["cpu_s"] - base["cpu_s"], 2),
        }

    async def ack(self) -> dict[str, Any]:
        """Closed loop: `connections` senders, each with `window` says in flight to a
        room of its own; acknowledged messages per second."""
        spec = self.spec
        total, window = spec["connections"], spec["window"]
        names = spec["names"]
        conns: list[AckConn] = []
        gate = asyncio.Semaphore(200)

        async def one(i: int) -> None:
            async with gate:
                frame = Nexus.say_in(spec["rooms"][i].encode(), 0)
                conn = AckConn(Nexus.ack_marker, frame, window)
                conn.name = names[i]
                await self.connect(conn)
                await self.adapter.login(conn, names[i])
                conns.append(conn)

        await asyncio.gather(*(one(i) for i in range(total)))
        for conn in conns:
            conn.start_counting()
        STATS.latencies = []
        before, d0, g0, t0 = self.sample_server(), STATS.delivered, own_cpu(), time.monotonic()
        for conn in conns:
            conn.running = True
            conn.fill()
        await asyncio.sleep(spec["step_s"])
        elapsed = time.monotonic() - t0
        acked, gen_cpu = STATS.delivered - d0, own_cpu() - g0
        after = self.sample_server()
        for conn in conns:
            conn.running = False
        latencies, STATS.latencies = STATS.latencies, []
        await self.drain(2.0)
        return {
            "connections": total,
            "window": window,
            "acked": acked,
            "acks_s": round(acked / elapsed),
            **quantiles(latencies),
            "server_cpu_pct": round(100 * (after["cpu_s"] - before["cpu_s"]) / elapsed, 1),
            "server_rss_mib": round(after["rss_mib"], 1),
            "generator_cpu_pct": round(100 * gen_cpu / elapsed, 1),
        }

    async def storm(self) -> dict[str, Any]:
        """Every user connects and logs in at once; time until the last is in.

        With `tokens` in the spec, users log in with the login tokens an
        earlier storm collected (reconnecting after a restart); otherwise with
        their passwords, and the tokens the server returns are reported."""
        spec = self.spec
        names = spec["names"][: spec["users"]]
        tokens_in: dict[str, str] = spec.get("tokens") or {}
        tokens_out: dict[str, str] = {}
        failures: list[str] = []
        done_at: list[float] = []
        t0 = time.monotonic()

        async def one(name: str) -> None:
            conn = Conn(b"\n")
            conn.name = name
            try:
                await self.connect(conn)
                await conn.expect(b'"event":"hello"')
                secret = (
                    b'"token":"%s"' % tokens_in[name].encode()
                    if name in tokens_in
                    else b'"password":"%s"' % self.adapter.password
                )
                conn.write(b'{"cmd":"login","username":"%s",%s}\n' % (name.encode(), secret))
                await conn.expect(b'"ok":true', fail=b'"ok":false')
                done_at.append(time.monotonic() - t0)
                await conn.expect(b"\n")
                found = re.search(rb'"token":"([^"]+)"', conn.consumed)
                if found:
                    tokens_out[name] = found.group(1).decode()
            except Exception as exc:  # reported, not raised: a storm may refuse some
                failures.append(f"{name}: {exc}"[:200])

        before = self.sample_server()
        await asyncio.gather(*(one(name) for name in names))
        total_s = time.monotonic() - t0
        after = self.sample_server()
        done_at.sort()
        return {
            "users": len(names),
            "with": "token" if tokens_in else "password",
            "logged_in": len(done_at),
            "failures": len(failures),
            "first_failures": failures[:3],
            "all_in_s": round(max(done_at), 3) if done_at else None,
            "p50_s": round(done_at[len(done_at) // 2], 3) if done_at else None,
            "server_cpu_pct": round(100 * (after["cpu_s"] - before["cpu_s"]) / total_s, 1),
            "server_peak_rss_mib": round(after["peak_rss_mib"], 1),
            "tokens": tokens_out,
        }

    async def ask(self, conn: Conn, frame: bytes) -> int:
        """Sends one request and waits for its whole reply; returns the ns it took."""
        start = time.monotonic_ns()
        conn.write(frame)
        await conn.expect(b'"ok":true', fail=b'"ok":false', timeout=120)
        await conn.expect(b"\n")
        return time.monotonic_ns() - start

    async def search(self) -> dict[str, Any]:
        """Searches one at a time (the first at once after start-up, while the
        index may still be building); then a room fan-out at a fixed rate,
        without and with `search_rate` searches a second beside it."""
        spec = self.spec
        adapter = self.adapter
        searcher = Conn(adapter.room_marker)
        searcher.name = spec["names"][0]
        await self.connect(searcher)
        await adapter.login(searcher, searcher.name)
        frames = [json.dumps({"cmd": "search", **q}).encode() + b"\n" for q in spec["queries"]]
        first = await self.ask(searcher, frames[0])
        timings = [await self.ask(searcher, frames[i % len(frames)]) for i in range(spec["count"])]

        names = spec["names"][1:]
        sample_every = max(1, round(1 / spec.get("sample", 0.05)))
        members = await self.open_members(names, "bench", adapter.room_marker, sample_every)
        for conn in members:
            conn.target = b"bench"
            conn.start_counting()
        rate, step_s = spec["rate"], spec["step_s"]
        baseline = await self.step(members, adapter.say, rate, step_s, len(members))
        during: list[int] = []
        stop = asyncio.Event()

        async def searching() -> None:
            start, i = time.monotonic(), 0
            while not stop.is_set():
                during.append(await self.ask(searcher, frames[i % len(frames)]))
                i += 1
                await asyncio.sleep(max(0.0, start + i / spec["search_rate"] - time.monotonic()))

        task = asyncio.create_task(searching())
        loaded = await self.step(members, adapter.say, rate, step_s, len(members))
        stop.set()
        await task
        ratio = None
        if baseline["p99_ms"] and loaded["p99_ms"]:
            ratio = round(loaded["p99_ms"] / baseline["p99_ms"], 2)
        return {
            "first_search_ms": round(first / 1e6, 3),
            "searches": quantiles(timings),
            "fanout": {
                "baseline": baseline,
                "with_searches": loaded,
                "searches": quantiles(during),
                "p99_ratio": ratio,
            },
        }

    async def archive(self) -> dict[str, Any]:
        """A store of a long history: searches one at a time over all of it,
        then history pages of each kind (before, after, around a seq) and
        thread pages from around the middle of its biggest room."""
        spec = self.spec
        conn = Conn(self.adapter.room_marker)
        await self.connect(conn)
        await self.adapter.login(conn, spec["names"][0])
        frames = [json.dumps({"cmd": "search", **q}).encode() + b"\n" for q in spec["queries"]]
        first = await self.ask(conn, frames[0])
        searches = [await self.ask(conn, frames[i % len(frames)]) for i in range(spec["count"])]
        rng = random.Random(3)
        middle = spec["page_around"]
        room, every = spec["page_room"], spec["thread_every"]
        pages: dict[str, list[int]] = {"before": [], "after": [], "around": [], "thread": []}
        for _ in range(spec["count"]):
            seq = middle + rng.randint(-middle // 2, middle // 2)
            for anchor, taken in pages.items():
                frame: dict[str, Any] = {"cmd": "history", "room": room, "limit": 50, anchor: seq}
                if anchor == "thread":  # the newest replies of the root at or before seq
                    frame = {"cmd": "thread", "room": room, "seq": seq - (seq - 1) % every}
                taken.append(await self.ask(conn, json.dumps(frame).encode() + b"\n"))
        stats = proc_stats(spec["server_pid"])
        return {
            "first_search_ms": round(first / 1e6, 3),
            "searches": quantiles(searches),
            "pages": {anchor: quantiles(taken) for anchor, taken in pages.items()},
            "server_rss_mib": round(stats["rss_mib"], 1),
        }

    def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None and not conn.closed:
                conn.transport.abort()


def _login_after_hello(adapter):
    """Nexus login for a connection that has already read its hello."""

    async def login(conn: Conn, name: str) -> None:
        conn.write(
            b'{"cmd":"login","username":"%s","password":"%s"}\n' % (name.encode(), adapter.password)
        )
        await conn.expect(b'"ok":true', fail=b'"ok":false')

    return login


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    generator = Generator(spec)
    try:
        scenario = getattr(generator, spec["kind"])
        return await asyncio.wait_for(scenario(), spec.get("timeout", 600))
    finally:
        generator.close()
        await asyncio.sleep(0.1)


def main() -> int:
    from bench.servers import raise_nofile

    raise_nofile()
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(run(spec))
    except ImportError:
        result = asyncio.run(run(spec))
    result["generator_pid"] = os.getpid()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
