"""`python -m bench.instructions`: instructions the server spends on a fixed room load.

The stepped scenarios time a server that shares its machine, and a busy
neighbour moves their figures by tens of percent. Instructions counted by
valgrind's callgrind do not move: the same build, load and input give the same
count to within a fraction of a percent, so two builds can be compared on a
machine that is not quiet. It counts user-space work only (not the kernel's
half of each send), and runs the server ~50 times slower, so it measures cost,
never speed.

The load: `--members` members of `general` read everything; one of them says
`--messages` messages in bursts of `--burst` (each burst in one write, the next
sent once the last is acknowledged, so every build batches alike). Counting
runs only from the first burst to the last delivery. Compare builds by running
it from each checkout with `NEXUS_BENCH_SERVER="python -m nexus"` and
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

from bench.datagen import PASSWORD, user_name, write_store
from bench.servers import NexusServer

MARK = b'"event":"message"'


async def _login(port: int, i: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
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


async def _count(reader: asyncio.StreamReader, marker: bytes, need: int) -> None:
    seen = 0
    while seen < need:
        data = await reader.read(1 << 20)
        if not data:
            raise RuntimeError("the server closed a connection")
        seen += data.count(marker)


async def _load(server: NexusServer, members: int, messages: int, burst: int) -> None:
    conns = [await _login(server.port, i) for i in range(members)]
    await asyncio.sleep(1)  # presence and joins settle before counting starts
    _control(server, "on")
    readers = [asyncio.create_task(_count(r, MARK, messages)) for r, _ in conns[1:]]
    sender_reader, sender = conns[0]
    text = "@" + "0" * 19 + " " + "x" * 60  # as the stepped scenarios say it: "@<digits> ..."
    line = json.dumps({"cmd": "say", "room": "general", "text": text}).encode() + b"\n"
    acks = 0
    for sent in range(burst, messages + 1, burst):
        sender.write(line * burst)
        while acks < sent:  # the sender's own copies come too; only replies count
            acks += (await sender_reader.read(1 << 20)).count(b'"ok":true')
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
    parser.add_argument("--burst", type=int, default=20, help="messages a write (default 20)")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.messages % args.burst:
        parser.error("--messages must be a multiple of --burst")
    with tempfile.TemporaryDirectory(prefix="nexus-instr-") as tmp:
        work = Path(tmp)
        data = write_store(
            work / "store.json", args.members, {i: ["general"] for i in range(args.members)}
        )
        out = work / "callgrind.out"
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
        ]
        with NexusServer(work, data, wrapper=wrapper) as server:
            asyncio.run(_load(server, args.members, args.messages, args.burst))
        total = _total(out)  # written when the server exits
    deliveries = args.messages * args.members
    print(
        json.dumps(
            {
                "members": args.members,
                "messages": args.messages,
                "burst": args.burst,
                "instructions": total,
                "per_message": round(total / args.messages),
                "per_delivery": round(total / deliveries),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
