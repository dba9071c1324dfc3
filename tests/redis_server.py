"""A throwaway Redis for the tests: Debian's redis-server on a free loopback
port, nothing saved, started on first use and stopped at exit."""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import socket
import subprocess
import time


def _die_with_parent() -> None:
    """In the child: SIGTERM once the test process is gone, however it went
    (a test worker may end without running its exit hooks)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def installed() -> bool:
    return shutil.which("redis-server") is not None


class Redis:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None
        self.start()
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), *options, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Stops it at once, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        self.kill()


_redis: Redis | None = None


def redis_server() -> Redis:
    global _redis
    if _redis is None:
        _redis = Redis()
    return _redis
