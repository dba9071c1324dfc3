"""`python -m bench.instructions`: instructions the server spends on a fixed room load.

The stepped scenarios time a server that shares its machine, and a busy
neighbour moves their figures by tens of percent. Instructions counted by
valgrind's callgrind do not move: the same build, load and input give the same
count to within a fraction of a percent, so two builds can be compared on a
machine that is not quiet. It counts user-space work only (not the kernel's
half of each send), and runs the server ~50 times slower, so it measures cost,
never speed.

The load: `--members` members of `general` read everything; `--senders` of
them (default one) say `--messages` messages in bursts of `--burst`, shared
among the senders (each sender's share of a burst in one write, the next burst
sent once the last is acknowledged, so every build batches alike). With
`--irc` everyone speaks IRC to the server's IRC port instead (PASS login; IRC
acknowledges nothing, so a burst goes once the last member has the one before).
`--styled` says a text of the same length in protocol 3's formatting,
`--words` its words without the formatting, and `--typing` has each `say`
follow its sender's `typing` (what a client that ignores the clients'
once-a-second rule sends: the costliest typing load). `--engine sqlite` runs
the server on a sqlite store instead of a json one: the writer thread's
instructions count too, up to the last delivery (search indexing that trails
it is left out).
Counting runs only from the first burst to the last delivery. Compare builds by
running it from each checkout with `NEXUS_BENCH_SERVER="python -m nexus"` and
`PYTHONPATH=<checkout>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.datagen import PASSWORD, user_name, write_database, write_store
from bench.generator import PAD, STYLED
from bench.servers import NexusIrcServer, NexusServer

MARK = b'"event":"message"'
IRC_MARK = b" PRIVMSG "
TEXT = "@" + "0" * 19 + " " + PAD.decode()  # as the stepped scenarios say it: "@<digits> ..."
STYLED_TEXT = "@" + "0" * 19 + " " + STYLED.decode()
# The styled text's words without its markup, as long: what formatting
# itself costs, apart from the words a message has (each is indexed).
WORDS_TEXT = STYLED_TEXT.translate(str.maketrans("*~`[]()", "       "))

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _login(port: int, i: int) -> Conn:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    await reader.readline()  # hello
    login = {"cmd": "login", "username": user_name(i), "password": PASSWORD}
    writer.write(json.dumps(login).encode() + b"\n")
    while True:
        frame = json.loads(await reader.readline())
        if "ok" in frame:
            if not frame["ok"]:
                raise RuntimeError(f"login failed: {frame}")
            return reader, writer


class _Tally:
    """Counts a marker in a stream read in pieces: one cut across two reads counts once."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.seen = 0
        self._tail = b""

    def feed(self, data: bytes) -> None:
        data = self._tail + data
        self.seen += data.count(self.marker)
        last = data.rfind(self.marker)
        cut = len(data) - len(self.marker) + 1
        self._tail = data[max(cut, last + len(self.marker) if last >= 0 else 0) :]


async def _count(reader: asyncio.StreamReader, tally: _Tally, need: int) -> None:
    while tally.seen < need:
        data = await reader.read(1 << 20)
        if not data:
            raise RuntimeError("the server closed a connection")
        tally.feed(data)


async def _irc_login(port: int, i: int) -> Conn:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    nick = user_name(i)
    writer.write(f"PASS :{nick}:{PASSWORD}\r\nNICK {nick}\r\nUSER {nick} 0 * :b\r\n".encode())
    seen = b""
    while b" 366 " not in seen:  # the welcome, then #general joined for its member
        data = await reader.read(1 << 16)
        if not data or b"ERROR" in data:
            raise RuntimeError(f"IRC login failed: {seen + data!r}")
        seen += data
    return reader, writer


async def _load(
    server: NexusServer,
    members: int,
    messages: int,
    burst: int,
    senders: int,
    irc: bool,
    text: str = TEXT,
    typing: bool = False,
) -> None:
    login = _irc_login if irc else _login
    conns = [await login(server.port, i) for i in range(members)]
    await asyncio.sleep(1)  # presence and joins settle before counting starts
    _control(server, "on")
    tallies = [_Tally(IRC_MARK if irc else MARK) for _ in conns]
    share = burst // senders
    if irc:
        # IRC acknowledges nothing: every member reads (a sender gets all but its
        # own messages), and a burst goes once the last member has the one before.
        readers = [
            asyncio.create_task(
                _count(reader, tallies[i], messages - (messages // senders if i < senders else 0))
            )
            for i, (reader, _) in enumerate(conns)
        ]
        line = f"PRIVMSG #general :{text}\r\n".encode()
        for n in range(1, messages // burst + 1):
            for _, writer in conns[:senders]:
                writer.write(line * share)
            while tallies[-1].seen < n * burst:
                if readers[-1].done():
                    readers[-1].result()  # raises what stopped it
                await asyncio.sleep(0.001)
    else:
        readers = [
            asyncio.create_task(_count(reader, tallies[i], messages))
            for i, (reader, _) in enumerate(conns)
            if i >= senders
        ]
        line = json.dumps({"cmd": "say", "room": "general", "text": text}).encode() + b"\n"
        if typing:
            line = b'{"cmd":"typing","room":"general"}\n' + line
        asked = share * (2 if typing else 1)
        for _ in range(messages // burst):
            for _, writer in conns[:senders]:
                writer.write(line * share)
            for reader, _ in conns[:senders]:
                acks = _Tally(b'"ok":true')  # everyone's messages come too: count the replies
                while acks.seen < asked:
                    acks.feed(await reader.read(1 << 20))
    await asyncio.wait_for(asyncio.gather(*readers), timeout=600)
    _control(server, "off")
    for _, writer in conns:
        writer.close()


def _control(server: NexusServer, state: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", state, str(server.pid)], check=True, capture_output=True
    )


def _total(out: Path) -> int:
    """The `totals:` line callgrind writes: instructions counted in all."""
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument(
        "--members", type=int, default=100, help="members of the room (default 100)"
    )
    parser.add_argument("--messages", type=int, default=1000, help="messages said (default 1000)")
    parser.add_argument("--burst", type=int, default=20, help="messages a burst (default 20)")
    parser.add_argument("--senders", type=int, default=1, help="members who say them (default 1)")
    parser.add_argument("--irc", action="store_true", help="every member speaks IRC")
    parser.add_argument("--styled", action="store_true", help="formatted text, as long")
    parser.add_argument("--words", action="store_true", help="--styled's words, unformatted")
    parser.add_argument("--typing", action="store_true", help="each say after a typing")
    parser.add_argument("--engine", choices=("json", "sqlite"), default="json", help="the store's")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.messages % args.burst or args.burst % args.senders:
        parser.error("--messages must be a multiple of --burst, --burst of --senders")
    if args.typing and args.irc:
        parser.error("--typing is the native protocol's: not with --irc")
    if not 0 < args.senders < args.members:
        parser.error("--senders must be at least one and fewer than --members")
    with tempfile.TemporaryDirectory(prefix="nexus-instr-") as tmp:
        work = Path(tmp)
        write = write_database if args.engine == "sqlite" else write_store
        data = write(
            work / f"store.{'db' if args.engine == 'sqlite' else 'json'}",
            args.members,
            {i: ["general"] for i in range(args.members)},
        )
        out = work / "callgrind.out"
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
        ]
        kind = NexusIrcServer if args.irc else NexusServer
        with kind(work, data, wrapper=wrapper) as server:
            asyncio.run(
                _load(
                    server,
                    args.members,
                    args.messages,
                    args.burst,
                    args.senders,
                    args.irc,
                    STYLED_TEXT if args.styled else WORDS_TEXT if args.words else TEXT,
                    args.typing,
                )
            )
        total = _total(out)  # written when the server exits
    # Nexus sends a message back to its sender; IRC does not.
    deliveries = args.messages * (args.members - 1 if args.irc else args.members)
    print(
        json.dumps(
            {
                "members": args.members,
                "messages": args.messages,
                "burst": args.burst,
                "senders": args.senders,
                "irc": args.irc,
                "styled": args.styled,
                "words": args.words,
                "typing": args.typing,
                "engine": args.engine,
                "instructions": total,
                "per_message": round(total / args.messages),
                "per_delivery": round(total / deliveries),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
