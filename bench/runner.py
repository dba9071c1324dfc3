"""`python -m bench`: runs the scenarios, prints a table, writes bench/results/<date>.json.

Each scenario starts its servers (Nexus, and ngircd / Redis where they are
peers and installed) on core 0, runs the load generator (bench/generator.py)
as a separate process on core 1, and stops everything it started.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import datagen
from bench.servers import (
    GENERATOR_CORE,
    NexusCluster,
    NexusFilesServer,
    NexusIrcServer,
    NexusServer,
    NexusWebServer,
    NgircdServer,
    PostgresServer,
    RedisServer,
    Server,
    pinned,
    raise_nofile,
)

RESULTS = Path(__file__).parent / "results"


def geometric(start: float, factor: float, count: int) -> list[float]:
    return [round(start * factor**i) for i in range(count)]


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loop": loop,
        "pinning": "server core 0, generator core 1" if os.cpu_count() >= 2 else "none",
    }


def run_generator(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Runs one generator process to completion (killed past `timeout`)."""
    cmd = pinned(GENERATOR_CORE, [sys.executable, "-m", "bench.generator"])
    spec = {**spec, "timeout": timeout}
    proc = subprocess.run(
        cmd,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"generator failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.peers = not args.no_peers
        self.tmp = Path(tempfile.mkdtemp(prefix="nexus-bench-"))
        self.missing: dict[str, str] = {}
        if self.peers:
            if not NgircdServer.available():
                self.missing["ngircd"] = "not installed (apt-get install ngircd)"
            if not RedisServer.available():
                self.missing["redis"] = "not installed (apt-get install redis-server)"
        else:
            self.missing = {"ngircd": "skipped (--no-peers)", "redis": "skipped (--no-peers)"}

    def schedule(self, quick: list[float], full: list[float]) -> list[float]:
        """The rate steps of a stepped scenario: `--rates` if given, to compare
        builds at the same fixed rates, else the quick or the full schedule."""
        if self.args.rates:
            return [float(rate) for rate in self.args.rates.split(",")]
        return quick if self.quick else full

    def step_s(self, full: float) -> float:
        if self.args.duration:
            return self.args.duration
        return 0.5 if self.quick else full

    def workdir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def nexus_store(self, name: str, users: int, engine: str = "json", **kwargs: Any) -> Path:
        """A store of `engine` for the scenario `name`."""
        file = "nexus_data.db" if engine == "sqlite" else "nexus_data.json"
        return datagen.write_store(self.workdir(f"{name}-{engine}") / file, users, **kwargs)

    def with_server(
        self, server: Server, spec: dict[str, Any], timeout: float = 600
    ) -> dict[str, Any]:
        with server:
            spec = {**spec, "port": server.port, "server_pid": server.pid, "proto": server.proto}
            if isinstance(server, NexusCluster):
                spec.update(ports=server.ports, parts=server.parts())
            result = run_generator(spec, timeout)
            result["server_start_s"] = round(server.ready_after, 3)
            return result

    def peer_servers(self, which: tuple[str, ...], name: str) -> list[Server]:
        servers: list[Server] = []
        if "ngircd" in which and "ngircd" not in self.missing:
            servers.append(NgircdServer(self.workdir(f"{name}-ngircd")))
        if "redis" in which and "redis" not in self.missing:
            servers.append(RedisServer(self.workdir(f"{name}-redis")))
        return servers

    # -- stepped-rate scenarios --------------------------------------------------

    def stepped(
        self,
        name: str,
        kind: str,
        users: int,
        spec: dict[str, Any],
        peers: tuple[str, ...],
        rooms_of: Callable[[int], list[str]] | None = None,
        irc: bool = False,
        engine_too: bool = False,
    ) -> dict[str, Any]:
        """Nexus (with `engine_too`, on each engine of --engines), then (with
        `irc`) Nexus spoken to over IRC, then the peers."""
        names = [datagen.user_name(i) for i in range(users)]
        base = {"kind": kind, "names": names, "password": datagen.PASSWORD, **spec}
        rooms = {i: rooms_of(i) for i in range(users)} if rooms_of else None
        results = {}
        for engine in self.args.engines.split(",") if engine_too else ["json"]:
            data = self.nexus_store(name, users, engine, rooms_of=rooms)
            server = NexusServer(data.parent, data)
            results[server.name] = self.with_server(server, base)
        data = self.nexus_store(name, users, rooms_of=rooms)
        if irc:
            server = NexusIrcServer(data.parent, data)
            results[server.name] = self.with_server(server, {**base, "irc_accounts": True})
        for server in self.peer_servers(peers, name):
            spec = {**base, "concurrency": 8} if server.proto == "irc" else base
            results[server.name] = self.with_server(server, spec)
        for peer in peers:
            if peer in self.missing:
                results[peer] = {"missing": self.missing[peer]}
        return results

    def s1(self) -> dict[str, Any]:
        rates = self.schedule(geometric(1000, 2.0, 3), geometric(2000, 1.25, 16))
        spec = {"members": 100, "rates": rates, "step_s": self.step_s(3), "bound_ms": 10}
        return self.stepped(
            "s1", "fanout", 100, spec, ("ngircd", "redis"), lambda i: ["bench"], engine_too=True
        )

    def nodes(self, name: str, kind: str, users: int, spec: dict[str, Any]) -> dict[str, Any]:
        """A stepped load on one nexus-server of its own (json), then on 1, 2
        and 3 nodes of a cluster (PostgreSQL, Redis), clients spread over
        the nodes in turn."""
        if PostgresServer.binaries() is None or not RedisServer.available():
            return {"nexus cluster": {"missing": "needs postgresql and redis-server installed"}}
        names = [datagen.user_name(i) for i in range(users)]
        base = {"kind": kind, "names": names, "password": datagen.PASSWORD, **spec}
        rooms = {i: ["bench"] for i in range(users)} if kind == "fanout" else None
        data = self.nexus_store(name, users, rooms_of=rooms)
        results = {"nexus": self.with_server(NexusServer(data.parent, data), base)}
        for count in (1, 2, 3):
            cluster = NexusCluster(self.workdir(f"{name}-cluster{count}"), data, count)
            results[cluster.name] = self.with_server(cluster, base)
        return results

    def s15(self) -> dict[str, Any]:
        rates = self.schedule(geometric(250, 2.0, 3), geometric(250, 1.5, 10))
        spec = {"members": 100, "rates": rates, "step_s": self.step_s(3), "bound_ms": 50}
        return self.nodes("s15", "fanout", 100, spec)

    def s16(self) -> dict[str, Any]:
        pairs = 50 if self.quick else 200
        rates = self.schedule(geometric(250, 2.0, 3), geometric(250, 1.5, 10))
        spec = {"pairs": pairs, "rates": rates, "step_s": self.step_s(3), "bound_ms": 50}
        return self.nodes("s16", "dm", 2 * pairs, spec)

    def s11(self) -> dict[str, Any]:
        """Scenario 1's room, with every member an IRC client of Nexus's IRC
        front end, beside native clients and ngircd."""
        rates = self.schedule(geometric(1000, 2.0, 3), geometric(2000, 1.25, 16))
        spec = {"members": 100, "rates": rates, "step_s": self.step_s(3), "bound_ms": 10}
        return self.stepped("s11", "fanout", 100, spec, ("ngircd",), lambda i: ["bench"], irc=True)

    def s2(self) -> dict[str, Any]:
        members = 200 if self.quick else 1000
        rates = self.schedule(geometric(200, 2.0, 2), geometric(200, 1.25, 16))
        spec = {
            "members": members,
            "rates": rates,
            "step_s": self.step_s(3),
            "bound_ms": 30,
            "sample": 0.02,
        }
        return self.stepped("s2", "fanout", members, spec, ("ngircd", "redis"), lambda i: ["bench"])

    def s3(self) -> dict[str, Any]:
        pairs = 50 if self.quick else 500
        rates = self.schedule(geometric(2000, 2.0, 2), geometric(5000, 1.25, 16))
        spec = {"pairs": pairs, "rates": rates, "step_s": self.step_s(3), "bound_ms": 2}
        return self.stepped("s3", "dm", 2 * pairs, spec, ("ngircd",))

    def s5(self) -> dict[str, Any]:
        members = 20 if self.quick else 100
        # A rate the server keeps up with well below its knee (its core is
        # busy, batching its writes): the question is whether one stalled
        # member moves the others, not where the knee is.
        rate = 500 if self.quick else 4000
        spec = {
            "members": members,
            "rates": [rate],
            "step_s": self.step_s(8),
            "bound_ms": 10,
            "sample": 0.1,
        }
        return self.stepped("s5", "slow", members, spec, ("ngircd",), lambda i: ["bench"])

    def s10(self) -> dict[str, Any]:
        """Scenario 1's room through the web port: 100 WebSocket members."""
        rates = self.schedule(geometric(1000, 2.0, 3), geometric(2000, 1.25, 16))
        spec = {"members": 100, "rates": rates, "step_s": self.step_s(3), "bound_ms": 10}
        names = [datagen.user_name(i) for i in range(100)]
        base = {"kind": "fanout", "names": names, "password": datagen.PASSWORD, **spec}
        data = self.nexus_store("s10", 100, rooms_of={i: ["bench"] for i in range(100)})
        return {"nexus-ws": self.with_server(NexusWebServer(data.parent, data), base)}

    def s14(self) -> dict[str, Any]:
        """Scenario 1's room with plain text, with formatted text of the same
        length, and with formatted text after its writer's `typing`, said as
        the clients say it (a new message's at most once a second)."""
        rates = self.schedule(geometric(1000, 2.0, 3), geometric(2000, 1.25, 16))
        spec = {"members": 100, "rates": rates, "step_s": self.step_s(3), "bound_ms": 10}
        names = [datagen.user_name(i) for i in range(100)]
        base = {"kind": "fanout", "names": names, "password": datagen.PASSWORD, **spec}
        data = self.nexus_store("s14", 100, rooms_of={i: ["bench"] for i in range(100)})
        results = {}
        # "nexus" (plain text) is what the others' ratios are taken against.
        kinds = {"nexus": "say", "nexus formatted": "say_styled", "nexus +typing": "say_typing"}
        for label, say in kinds.items():
            results[label] = self.with_server(NexusServer(data.parent, data), {**base, "say": say})
        return results

    def s13(self) -> dict[str, Any]:
        """Scenario 1's room at a fixed rate, then the same while one member
        uploads 25 MiB files to the web port one after another; at two rates.

        At 200 messages/s (20k deliveries/s) the server's core is about a
        third busy, so the figure says whether an upload takes the room's
        time or only the idle time; at 4,000 messages/s the core is already
        full (writes are batched to keep up), so every cycle an upload takes
        is one the room waits for."""
        rates = [100, 1000] if self.quick else [200, 4000]
        size = (5 if self.quick else 25) << 20
        names = [datagen.user_name(i) for i in range(100)]
        data = self.nexus_store("s13", 100, rooms_of={i: ["bench"] for i in range(100)})
        results = {}
        for rate in rates:
            server = NexusFilesServer(data.parent, data)
            with server:
                spec = {
                    "kind": "uploading",
                    "names": names,
                    "password": datagen.PASSWORD,
                    "members": 100,
                    "rates": [rate],
                    "step_s": self.step_s(10),
                    "sample": 0.1,
                    "upload": {"port": server.web_port, "size": size},
                    "port": server.port,
                    "server_pid": server.pid,
                    "proto": server.proto,
                }
                results[f"nexus {rate:,} msgs/s"] = run_generator(spec, 600)
        return results

    # -- Nexus-only scenarios ----------------------------------------------------

    def s4(self) -> dict[str, Any]:
        count = 500 if self.quick else 10_000
        names = [datagen.user_name(i) for i in range(count)]
        data = self.nexus_store("s4", count)
        spec = {
            "kind": "idle",
            "connections": count,
            "names": names,
            "password": datagen.PASSWORD,
        }
        return {"nexus": self.with_server(NexusServer(data.parent, data), spec)}

    def s6(self) -> dict[str, Any]:
        count = 20 if self.quick else 100
        names = [datagen.user_name(i) for i in range(count)]
        rooms = [f"a{i}" for i in range(count)]
        spec = {
            "kind": "ack",
            "connections": count,
            "window": 8,
            "names": names,
            "rooms": rooms,
            "password": datagen.PASSWORD,
            "step_s": self.step_s(5),
        }
        results = {}
        for engine in self.args.engines.split(","):
            for fsync in (False, True):
                data = self.nexus_store(
                    f"s6-{fsync}", count, engine, rooms_of={i: [rooms[i]] for i in range(count)}
                )
                server = NexusServer(data.parent, data, fsync=fsync)
                label = f"{server.name} --fsync" if fsync else server.name
                results[label] = self.with_server(server, spec)
        return results

    def s7(self) -> dict[str, Any]:
        rooms = 200 if self.quick else 2000
        results = {}
        for engine in self.args.engines.split(","):
            t0 = time.monotonic()
            data = self.nexus_store(
                "s7", 100, engine, room_messages={f"r{i}": 500 for i in range(rooms)}
            )
            built = time.monotonic() - t0
            server = NexusServer(data.parent, data)
            results[server.name] = {
                "messages": rooms * 500,
                "snapshot_mib": round(data.stat().st_size / 2**20, 1),
                "generated_s": round(built, 1),
                **self.cold_starts(data),
            }
        return results

    def cold_starts(self, data: Path) -> dict[str, Any]:
        """Starts a server on `data` (three times, or once with --quick): the
        slowest time to listening and the highest peak RSS."""
        runs = []
        for _ in range(1 if self.quick else 3):
            server = NexusServer(data.parent, data)
            with server:
                stats = server.stats()
            runs.append(
                {"listening_s": round(server.ready_after, 3), "peak_rss_mib": stats["peak_rss_mib"]}
            )
        return {
            "runs": runs,
            "listening_s": max(r["listening_s"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        }

    def s8(self) -> dict[str, Any]:
        """Users log in with passwords (real OWASP argon2id hashes), the server
        restarts, and they all come back at once with the login tokens they got."""
        users = 50 if self.quick else 500
        names = [datagen.user_name(i) for i in range(users)]
        data = self.nexus_store(
            "s8", users, strong_hash=True, rooms_of={i: ["general"] for i in range(users)}
        )
        spec = {"kind": "storm", "users": users, "names": names, "password": datagen.PASSWORD}
        first = self.with_server(NexusServer(data.parent, data), spec, timeout=120)
        tokens = first.pop("tokens")
        results = {"nexus (passwords)": first}
        if len(tokens) == users:  # a server without login tokens returns none
            again = self.with_server(
                NexusServer(data.parent, data), {**spec, "tokens": tokens}, timeout=120
            )
            again.pop("tokens")
            results["nexus"] = again
        else:
            results["nexus"] = {"error": f"only {len(tokens)} of {users} logins returned a token"}
        return results

    def s9(self) -> dict[str, Any]:
        """Searches over a store of 1,000,000 messages: latency one at a time
        (the first right after start-up), then a room fan-out at a fixed rate
        without and with 20 searches a second."""
        rooms = [f"r{i}" for i in range(200 if self.quick else 2000)]
        members = 20 if self.quick else 100
        words = datagen.vocabulary(30_000)
        # The searcher (u00000) is in every room: its searches cover the whole store.
        rooms_of = {0: rooms} | {i: ["bench"] for i in range(1, members + 1)}
        spec = {
            "kind": "search",
            "names": [datagen.user_name(i) for i in range(members + 1)],
            "password": datagen.PASSWORD,
            "queries": search_queries(words, rooms, members),
            "count": 200 if self.quick else 2000,
            "rate": 500 if self.quick else 4000,
            "search_rate": 20,
            "step_s": self.step_s(8),
            "sample": 0.1,
        }
        results = {}
        for engine in self.args.engines.split(","):
            data = self.nexus_store(
                "s9",
                members + 1,
                engine,
                rooms_of=rooms_of,
                room_messages=dict.fromkeys(rooms, 500),
                texts=datagen.chat_texts(words, 5_000),
            )
            server = NexusServer(data.parent, data)
            results[server.name] = self.with_server(server, spec, timeout=900)
            results[server.name]["messages"] = len(rooms) * 500
        return results

    def s12(self) -> dict[str, Any]:
        """The sqlite engine holding 10,000,000 messages (a room of 1,000,000
        and 1,800 of 5,000): cold start and RSS against the same users and
        rooms with no message, searches one at a time over all of it, and
        pages from the middle of the big room. Building the store takes
        minutes (the full-text index most of them)."""
        big, per_room = (10_000, 500) if self.quick else (1_000_000, 5_000)
        rooms = [f"r{i}" for i in range(20 if self.quick else 1800)]
        words = datagen.vocabulary(30_000)
        rooms_of = {0: [*rooms, "big"], 1: ["big"]}
        names = [datagen.user_name(i) for i in range(2)]
        empty = self.nexus_store("s12-empty", 2, "sqlite", rooms_of=rooms_of)
        t0 = time.monotonic()
        kept = self.args.keep_store
        if kept is not None and kept.exists():  # built by an earlier run: only read here
            data = kept
        else:
            data = self.nexus_store(
                "s12",
                2,
                "sqlite",
                rooms_of=rooms_of,
                room_messages={"big": big, **dict.fromkeys(rooms, per_room)},
                texts=datagen.chat_texts(words, 5_000),
                threads={"big": BIG_THREADS},
            )
            if kept is not None:
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(data, kept)
                data = kept
        built = time.monotonic() - t0
        spec = {
            "kind": "archive",
            "names": names,
            "password": datagen.PASSWORD,
            "queries": search_queries(words, [*rooms, "big"], 1),
            "count": 100 if self.quick else 1000,
            "page_room": "big",
            "page_around": big // 2,
            "thread_every": BIG_THREADS.every,
        }
        result = self.with_server(NexusServer(data.parent, data), spec, timeout=1800)
        return {
            "nexus sqlite": {
                **result,
                "messages": big + len(rooms) * per_room,
                "database_mib": round(data.stat().st_size / 2**20, 1),
                "generated_s": round(built, 1),
                "empty": self.cold_starts(empty),
                "full": self.cold_starts(data),
            }
        }


def search_queries(words: list[str], rooms: list[str], members: int) -> list[dict[str, Any]]:
    """A mix of what people search for: rare, middling and common words, two
    words, two letters, a word found nowhere, one author's messages, one room."""
    rare, middling, common = words[20_000:], words[1_000:], words[:10]
    queries: list[dict[str, Any]] = []
    for i in range(50):
        word = common[i % len(common)]
        queries += [
            {"query": rare[i]},
            {"query": middling[i]},
            {"query": word},
            {"query": f"{word} {middling[i]}"},
            {"query": word[:2]},
            {"query": f"qx{i}zq"},
            {"query": word, "from": datagen.user_name(1 + i % members)},
            {"query": middling[i], "room": rooms[i % len(rooms)]},
        ]
    return queries


# The big room of scenario 12: of each 200 messages, a root with 60 replies
# (30 % of its messages are thread replies, each thread more than a page).
BIG_THREADS = datagen.Threads(every=200, replies=60)

TITLES = {
    1: "room fan-out, 100 members",
    2: "room fan-out, 1,000 members",
    3: "DMs between many pairs",
    4: "10,000 idle connections",
    5: "slow consumer in a flooded room",
    6: "persistence: acknowledged messages",
    7: "cold start, 1,000,000 stored messages",
    8: "reconnect storm, 500 users",
    9: "search, 1,000,000 stored messages",
    10: "room fan-out over WebSocket, 100 members",
    11: "IRC room fan-out, 100 members",
    12: "sqlite, 10,000,000 stored messages",
    13: "room fan-out, 100 members, during 25 MiB uploads",
    14: "room fan-out, 100 members: plain, formatted, formatted with typing",
    15: "room fan-out, 100 members, on 1, 2 and 3 nodes",
    16: "DMs between many pairs, on 1, 2 and 3 nodes",
}


# -- summaries -------------------------------------------------------------------


def best_step(result: dict[str, Any], bound_ms: float) -> dict[str, Any] | None:
    """The highest-rate step that kept up with p99 within the bound."""
    good = [
        s
        for s in result.get("steps", [])
        if s["kept_up"] and s["p99_ms"] is not None and s["p99_ms"] <= bound_ms
    ]
    return max(good, key=lambda s: s["deliveries_s"]) if good else None


def beside(base: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    """A fixed-rate run's row against its baseline run: the p99 ratio (the
    figure) and the loaded run's latencies."""
    ratio = (
        round(loaded["p99_ms"] / base["p99_ms"], 2) if loaded["p99_ms"] and base["p99_ms"] else None
    )
    return {
        "value": ratio,
        "p50_ms": loaded["p50_ms"],
        "p99_ms": loaded["p99_ms"],
        "max_ms": loaded["max_ms"],
        "baseline_p99_ms": base["p99_ms"],
        "kept_up": loaded["kept_up"],
    }


def summarise(number: int, results: dict[str, Any], bound_ms: float | None) -> list[dict]:
    """One row per server: the headline figure and its unit, latencies, CPU, RSS."""
    rows = []
    for server, r in results.items():
        row: dict[str, Any] = {"server": server}
        if "missing" in r or "error" in r:
            row["note"] = r.get("missing") or r.get("error")
        elif number in (1, 2, 3, 10, 11, 14, 15, 16):
            step = best_step(r, bound_ms)
            kept = [s for s in r["steps"] if s["kept_up"]]
            peak = max(kept, key=lambda s: s["deliveries_s"]) if kept else None
            unit = "msgs/s" if number in (3, 16) else "deliveries/s"
            key = "msgs_s" if number in (3, 16) else "deliveries_s"
            row.update(metric=f"{unit} at p99<{bound_ms:g}ms", unit=unit)
            if step:
                row.update(
                    value=step[key],
                    p50_ms=step["p50_ms"],
                    p99_ms=step["p99_ms"],
                    max_ms=step["max_ms"],
                    server_cpu_pct=step.get("server_cpu_pct"),
                    server_rss_mib=step.get("server_rss_mib"),
                    generator_cpu_pct=step["generator_cpu_pct"],
                )
            else:
                row.update(value=0, note="no step met the latency bound")
            if peak:
                row["peak_kept_up"] = peak[key]
        elif number == 4:
            row.update(
                metric="KiB/connection (logged in)",
                value=r["kib_per_session"],
                kib_anonymous=r["kib_per_connection"],
                connects_s=r["connects_s"],
                logins_s=r["logins_s"],
                held=r["held"],
                server_rss_mib=r["server_rss_logged_in_mib"],
            )
        elif number == 5:
            slow = r["with_slow"]
            row.update(
                beside(r["baseline"], slow),
                metric="others' p99 with/without slow",
                slow_disconnected=r["slow_disconnected"],
                server_rss_mib=r["server_peak_rss_mib"],
                server_cpu_pct=slow.get("server_cpu_pct"),
            )
        elif number == 13:
            loaded = r["with_uploads"]
            row.update(
                beside(r["baseline"], loaded),
                metric="members' p99 with/without uploads",
                uploads=r["uploads"],
                upload_mib_s=r["upload_mib_s"],
                server_cpu_pct=loaded.get("server_cpu_pct"),
                server_rss_mib=loaded.get("server_rss_mib"),
            )
        elif number == 6:
            row.update(
                metric="acked msgs/s",
                value=r["acks_s"],
                p50_ms=r["p50_ms"],
                p99_ms=r["p99_ms"],
                max_ms=r["max_ms"],
                server_cpu_pct=r["server_cpu_pct"],
                server_rss_mib=r["server_rss_mib"],
            )
        elif number == 7:
            row.update(
                metric="s to listening",
                value=r["listening_s"],
                server_rss_mib=r["peak_rss_mib"],
                messages=r["messages"],
            )
        elif number == 8:
            row.update(
                metric=f"s until all in ({r['with']}s)",
                value=r["all_in_s"],
                logged_in=r["logged_in"],
                failures=r["failures"],
                server_cpu_pct=r["server_cpu_pct"],
                server_rss_mib=r["server_peak_rss_mib"],
            )
        elif number == 12:
            empty, full = r["empty"], r["full"]
            rows.append(
                {
                    "server": server,
                    "metric": "s to listening (empty store)",
                    "value": empty["listening_s"],
                    "server_rss_mib": empty["peak_rss_mib"],
                }
            )
            rows.append(
                {
                    "server": server,
                    "metric": f"s to listening ({r['messages']:,} messages)",
                    "value": full["listening_s"],
                    "server_rss_mib": full["peak_rss_mib"],
                }
            )
            timed = {"search ms, one at a time": r["searches"]}
            for anchor, page in r["pages"].items():
                kind = "thread page" if anchor == "thread" else f"history page {anchor} a seq"
                timed[f"{kind}, ms"] = page
            for metric, figures in timed.items():
                rows.append({"server": server, "metric": metric, **figures})
                rows[-1]["value"] = figures["p99_ms"]
            continue
        elif number == 9:
            searches, fanout = r["searches"], r["fanout"]
            row.update(
                metric="search ms, one at a time",
                value=searches["p99_ms"],
                p50_ms=searches["p50_ms"],
                p99_ms=searches["p99_ms"],
                max_ms=searches["max_ms"],
                first_search_ms=r["first_search_ms"],
                messages=r["messages"],
            )
            rows.append(row)
            loaded = fanout["with_searches"]
            row = {
                "server": f"{server}, fan-out + 20 searches/s",
                "metric": "others' p99 with/without searches",
                "value": fanout["p99_ratio"],
                "p50_ms": loaded["p50_ms"],
                "p99_ms": loaded["p99_ms"],
                "max_ms": loaded["max_ms"],
                "baseline_p99_ms": fanout["baseline"]["p99_ms"],
                "searches_p99_ms": fanout["searches"]["p99_ms"],
                "server_cpu_pct": loaded.get("server_cpu_pct"),
                "server_rss_mib": loaded.get("server_rss_mib"),
            }
        rows.append(row)
    by_server = {row["server"]: row for row in rows}
    for row in rows:  # each engine's figure against the json engine's
        json_row = by_server.get(row["server"].replace(" sqlite", ""))
        if json_row is not row and json_row and row.get("value") and json_row.get("value"):
            row["engine_ratio"] = round(row["value"] / json_row["value"], 2)
    nexus = by_server.get("nexus")
    for row in rows:
        if nexus and row is not nexus and "engine_ratio" not in row and number in BOUNDS:
            # Ratios compare the highest rate each server kept up with; the
            # latency-bounded figures sit beside them in the table.
            if row.get("peak_kept_up") and nexus.get("peak_kept_up"):
                row["nexus_ratio"] = round(nexus["peak_kept_up"] / row["peak_kept_up"], 2)
            if row.get("value") and nexus.get("value"):
                row["nexus_ratio_at_bound"] = round(nexus["value"] / row["value"], 2)
    return rows


BOUNDS = {1: 10, 2: 30, 3: 2, 10: 10, 11: 10, 14: 10, 15: 50, 16: 50}


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(scenarios: dict[str, Any]) -> None:
    header = (
        "#",
        "scenario",
        "server",
        "figure",
        "value",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv CPU%",
        "RSS MiB",
        "kept-up peak",
        "ratio",
    )
    lines = [header]
    for number, entry in scenarios.items():
        for row in entry["rows"]:
            lines.append(
                (
                    number,
                    entry["title"][:34],
                    row["server"],
                    row.get("metric", row.get("note", "")),
                    fmt(row.get("value")),
                    fmt(row.get("p50_ms")),
                    fmt(row.get("p99_ms")),
                    fmt(row.get("max_ms")),
                    fmt(row.get("server_cpu_pct")),
                    fmt(row.get("server_rss_mib")),
                    fmt(row.get("peak_kept_up")),
                    fmt(row.get("nexus_ratio") or row.get("engine_ratio")),
                )
            )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="scenario number(s) to run, e.g. --scenario 1 --scenario 3 or --scenario 1,3",
    )
    parser.add_argument("--duration", type=float, help="seconds per rate step (default 3)")
    parser.add_argument(
        "--rates", help="messages/s of each step of scenarios 1-3, e.g. 30000,40000"
    )
    parser.add_argument("--no-peers", action="store_true", help="measure Nexus only")
    parser.add_argument(
        "--keep-store",
        type=Path,
        help="scenario 12's database: built there once, then reused (building takes minutes)",
    )
    parser.add_argument(
        "--engines",
        default="json,sqlite",
        help="store engines scenarios 1, 6, 7 and 9 run Nexus on (default json,sqlite)",
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/<date>.json)")
    parser.add_argument(
        "--show", type=Path, help="print the table of an earlier result file, run nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print_table(json.loads(args.show.read_text())["scenarios"])
        return 0
    chosen = sorted({int(n) for arg in args.scenario for n in arg.split(",") if n.strip()})
    chosen = chosen or sorted(TITLES)
    raise_nofile()
    bench = Bench(args)
    for peer, why in bench.missing.items():
        if not args.no_peers:
            print(f"peer {peer}: {why}; its columns stay empty", file=sys.stderr)
    started = dt.datetime.now(dt.UTC)
    scenarios: dict[str, Any] = {}
    try:
        run_all(bench, chosen, scenarios)
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "machine": machine(),
        "peers_missing": bench.missing,
        "scenarios": scenarios,
    }
    stamp = started.strftime("%Y-%m-%dT%H%M%S") + ("-quick" if args.quick else "")
    out = args.out or RESULTS / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(scenarios)
    print(f"\nwritten to {out}")
    return 0


def run_all(bench: Bench, chosen: list[int], scenarios: dict[str, Any]) -> None:
    for number in chosen:
        t0 = time.monotonic()
        print(f"scenario {number}: {TITLES[number]} ...", file=sys.stderr, flush=True)
        try:
            results = getattr(bench, f"s{number}")()
        except Exception as exc:  # one broken scenario must not lose the others
            results = {"nexus": {"error": f"{type(exc).__name__}: {exc}"[:2000]}}
        scenarios[str(number)] = {
            "title": TITLES[number],
            "seconds": round(time.monotonic() - t0, 1),
            "results": results,
            "rows": summarise(number, results, BOUNDS.get(number)),
        }
