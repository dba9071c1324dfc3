"""Starting, watching and stopping the servers under test: Nexus and its peers.

Every server listens on 127.0.0.1 only, is pinned to core 0 with taskset (the
load generator gets core 1), and is killed when its `with` block ends.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nexus.server.store.engines import engine_of

SERVER_CORE = "0"
GENERATOR_CORE = "1"
LISTENING = re.compile(rb"listening on (\S+):(\d+)")
IRC_ON = re.compile(rb"IRC on (\S+):(\d+)")
WEB_LISTENING = re.compile(rb"web client on https?://\S+:(\d+)/")


def raise_nofile() -> int:
    """Raises this process's open-files limit to its hard cap; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pinned(core: str, cmd: list[str]) -> list[str]:
    """`cmd` run on one core, where taskset exists and the machine has two cores."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", core, *cmd]
    return cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def proc_stats(pid: int) -> dict[str, float]:
    """CPU seconds used so far, RSS and peak RSS (MiB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return {"cpu_s": cpu, "rss_mib": rss, "peak_rss_mib": hwm}


class Server:
    """A child server process; subclasses know how to start each kind."""

    name = "?"
    proto = "?"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.started_at = 0.0
        self.ready_after = 0.0  # seconds from spawn to listening

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stats(self) -> dict[str, float]:
        return proc_stats(self.pid)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        finally:
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()


class NexusServer(Server):
    name = "nexus"
    proto = "nexus"

    def __init__(
        self, workdir: Path, data: Path, *, fsync: bool = False, wrapper: list[str] | None = None
    ) -> None:
        super().__init__(workdir)
        self.data = data
        self.engine = engine_of(data)  # the store's engine, by its file's suffix
        if self.engine != "json":
            self.name = f"{self.name} {self.engine}"
        self.fsync = fsync
        self.wrapper = wrapper or []  # a command the server runs under, e.g. valgrind
        self.extra: list[str] = []  # more flags
        self.core: str | None = SERVER_CORE  # where it is pinned; None: anywhere

    @staticmethod
    def command() -> list[str]:
        """The installed console script; NEXUS_BENCH_SERVER overrides it (for profiling,
        e.g. `py-spy record -o prof.svg -- nexus-server`)."""
        override = os.environ.get("NEXUS_BENCH_SERVER")
        if override:
            return override.split()
        exe = shutil.which("nexus-server")
        return [exe] if exe else [sys.executable, "-m", "nexus"]

    def start(self, timeout: float = 60.0) -> None:
        cmd = [*self.wrapper, *self.command(), "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--store", self.engine, "--data", str(self.data)]
        cmd += ["--log", str(self.data.with_suffix(".log")), "--rate-limit", "off", *self.extra]
        if self.fsync:
            cmd.append("--fsync")
        env = {
            **os.environ,
            # Benchmarks connect thousands of clients from one address and set
            # up slowly; these are deployment settings, not code changes.
            "NEXUS_MAX_CONNECTIONS_PER_IP": "1000000",
            "NEXUS_LOGIN_TIMEOUT": "600",
            "NEXUS_REGISTRATIONS_PER_HOUR": "0",
        }
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            pinned(self.core, cmd) if self.core else cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        line = self.proc.stdout.readline()
        irc = IRC_ON.search(line) if self.proto == "irc" else None  # on the same line
        self.ready_after = time.monotonic() - self.started_at
        match = LISTENING.search(line)
        if not match:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=timeout)
            raise RuntimeError(f"nexus-server did not start: {line!r} {err[-2000:]!r}")
        self.port = int((irc or match).group(2))

    def read_web_port(self) -> int:
        """The web port, from the line after the one the server listens with."""
        line = self.proc.stdout.readline()
        match = WEB_LISTENING.search(line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"nexus-server has no web port: {line!r}")
        return int(match.group(1))


class NexusIrcServer(NexusServer):
    """Nexus with its IRC front end on: the generator speaks IRC to it, as to ngircd."""

    name = "nexus (irc)"
    proto = "irc"

    def start(self, timeout: float = 60.0) -> None:
        self.extra = ["--irc-port", "0"]
        super().start(timeout)


class NexusWebServer(NexusServer):
    """Nexus with its web port: the generator connects there, over WebSocket."""

    name = "nexus-ws"
    proto = "nexus-ws"

    def start(self, timeout: float = 60.0) -> None:
        self.extra = ["--web-port", "0"]
        super().start(timeout)
        self.port = self.read_web_port()


class NexusFilesServer(NexusServer):
    """Nexus with its web port for uploads: the generator's members speak the
    native protocol (`port`), its uploads go to `web_port`."""

    def start(self, timeout: float = 60.0) -> None:
        self.extra = ["--web-port", "0", "--upload-quota", str(1 << 50)]
        super().start(timeout)
        self.web_port = self.read_web_port()


NGIRCD_CONF = """\
[Global]
    Name = bench.irc
    Info = Nexus benchmark peer
    Listen = 127.0.0.1
    Ports = {port}
    MotdPhrase = "bench"
    PidFile = {workdir}/ngircd.pid
    ServerUID = {uid}
    ServerGID = {gid}
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 30
    MaxPenaltyTime = 0
    PingTimeout = 600
    PongTimeout = 600
    ConnectRetry = 60
[Options]
    DNS = no
    Ident = no
    PAM = no
"""


class NgircdServer(Server):
    """ngircd without flood penalties, DNS or ident lookups, in the foreground."""

    name = "ngircd"
    proto = "irc"

    @staticmethod
    def available() -> str | None:
        return shutil.which("ngircd") or (
            "/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd") else None
        )

    def start(self, timeout: float = 20.0) -> None:
        self.port = free_port()
        conf = self.workdir / "ngircd.conf"
        conf.write_text(
            NGIRCD_CONF.format(
                port=self.port, workdir=self.workdir, uid=os.getuid(), gid=os.getgid()
            )
        )
        conf.chmod(0o644)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            pinned(SERVER_CORE, [self.available(), "--nodaemon", "--config", str(conf)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_port(self.port, self.proc, timeout)
        self.ready_after = time.monotonic() - self.started_at


class RedisServer(Server):
    """redis-server with no persistence: PUBLISH/SUBSCRIBE as the raw fan-out ceiling."""

    name = "redis"
    proto = "redis"

    @staticmethod
    def available() -> str | None:
        return shutil.which("redis-server")

    def start(self, timeout: float = 20.0) -> None:
        self.port = free_port()
        cmd = [
            self.available(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--maxclients",
            "15000",
            "--dir",
            str(self.workdir),
            "--loglevel",
            "warning",
        ]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            pinned(SERVER_CORE, cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_port(self.port, self.proc, timeout)
        self.ready_after = time.monotonic() - self.started_at


class PostgresServer(Server):
    """A throwaway PostgreSQL cluster of Debian's binaries, in a directory of
    its own under /tmp (run as the `postgres` user when the bench runs as
    root, as PostgreSQL asks, who cannot enter the bench's own directory),
    with its defaults for durability: a commit is flushed to disk."""

    name = "postgresql"
    proto = "postgresql"

    @staticmethod
    def binaries() -> Path | None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        return found[-1].parent if found else None

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.binaries() / program), *args]  # type: ignore[operator]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="nexus-bench-pg-"))
        self.data = self.workdir / "pgdata"
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self.started_at = time.monotonic()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "nexus", "-E", "UTF8")
        options = f"-k {self.workdir} -p {self.port} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=300"
        log = str(self.workdir / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        self.ready_after = time.monotonic() - self.started_at
        import psycopg  # here: the generator imports this module, and needs no database

        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE nexus")

    def url(self, name: str = "nexus") -> str:
        return f"postgresql://nexus@127.0.0.1:{self.port}/{name}"

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def pids(self) -> list[int]:
        """The postmaster and its children (a backend for each connection)."""
        found = [self.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == found[0]:
                    found.append(int(entry.name))
        return found

    def stop(self, timeout: float = 10.0) -> None:
        if self.ready_after:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
            shutil.rmtree(self.workdir, ignore_errors=True)


class NexusCluster(Server):
    """`nodes` nexus-server nodes on one PostgreSQL database and a Redis bus
    (docs/cluster.md), the store `data` migrated into the database first.
    Nothing is pinned: the nodes, PostgreSQL and Redis share the machine's
    cores with the generator, as they would share a host."""

    proto = "nexus"

    def __init__(self, workdir: Path, data: Path, nodes: int) -> None:
        super().__init__(workdir)
        self.data = data
        self.count = nodes
        self.name = f"nexus, {nodes} node" + ("s" if nodes > 1 else "")
        self.postgres = PostgresServer(workdir / "postgres")
        self.redis = RedisServer(workdir / "redis")
        self.nodes: list[NexusServer] = []

    def start(self, timeout: float = 60.0) -> None:
        self.started_at = time.monotonic()
        self.redis.workdir.mkdir(parents=True, exist_ok=True)
        for server in (self.postgres, self.redis):
            server.start()
        url = self.postgres.url()
        subprocess.run(
            [*NexusServer.command(), "migrate", str(self.data), url, "--data", str(self.data)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        bus = f"redis://127.0.0.1:{self.redis.port}"
        for n in range(1, self.count + 1):
            node = NexusServer(self.workdir, self.workdir / f"node{n}.pg")
            node.engine, node.core = "postgresql", None
            node.extra = ["--database", url, "--bus", bus, "--node", f"node{n}"]
            node.start(timeout)
            self.nodes.append(node)
        self.port = self.nodes[0].port
        self.ready_after = time.monotonic() - self.started_at

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def parts(self) -> dict[str, list[int]]:
        """The processes of each part, for the CPU each uses."""
        return {
            "nodes": [node.pid for node in self.nodes],
            "postgresql": self.postgres.pids(),
            "redis": [self.redis.pid],
        }

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    def stop(self, timeout: float = 10.0) -> None:
        for server in [*self.nodes, self.redis, self.postgres]:
            server.stop(timeout)
