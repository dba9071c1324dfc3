"""The real `nexus-server` binary as a child process, for end-to-end tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.postgres import cluster

LISTENING = re.compile(r"listening on (\S+):(\d+)")


def server_command() -> list[str]:
    """The installed console script, or `python -m nexus` where it is not on PATH."""
    exe = shutil.which("nexus-server")
    return [exe] if exe else [sys.executable, "-m", "nexus"]


def data_file(directory: Path, engine: str) -> Path:
    """Where a test keeps the store of `engine` (with postgresql, where its files go)."""
    names = {"sqlite": "nexus_data.db", "postgresql": "nexus_data.pg", "cluster": "nexus_data.pg"}
    return directory / names.get(engine, "nexus_data.json")


def engine_flags(engine: str, data: Path) -> tuple[str, ...]:
    """The flags that choose `engine` for the store at `data`."""
    if engine == "postgresql":
        return ("--store", engine, "--database", cluster().database_for(data))
    if engine == "cluster":  # one node of a cluster
        from tests.redis_server import redis_server

        bus = ("--bus", redis_server().url, "--node", "one")
        return (*engine_flags("postgresql", data), *bus)
    return ("--store", engine)


class ServerProcess:
    """Starts `nexus-server` on 127.0.0.1, port 0, and learns its port from stdout."""

    def __init__(self, data: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.listening = ""  # the line it printed once it listened (its other ports too)

    def start(self, timeout: float = 20.0) -> ServerProcess:
        log = self.data.with_suffix(".log")
        cmd = [*server_command(), "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--data", str(self.data), "--log", str(log), *self.args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )
        line = self.proc.stdout.readline()  # the server prints one line once it listens
        match = LISTENING.search(line)
        if not match:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=timeout)
            raise RuntimeError(f"server did not start: {line!r} {err!r}")
        self.port = int(match.group(2))
        self.listening = line
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
