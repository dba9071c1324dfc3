"""A half-open connection (the peer vanished without a FIN) does not hold a session forever.

The real server and its clients run in a network namespace of the test's
own; taking that namespace's loopback down makes every peer unreachable
without closing a socket, exactly what a pulled cable or a crashed laptop
does. TCP keepalive must then drop the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import LISTENING, server_command

PEER = """
import json, socket, sys, time
port, name, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
f = socket.create_connection(("127.0.0.1", port)).makefile("rwb")
f.readline()
def ask(frame):
    f.write(json.dumps(frame).encode() + b"\\n"); f.flush()
    return json.loads(f.readline())
assert ask({"cmd": mode, "username": name, "password": "password1"})["ok"]
if len(sys.argv) > 4:
    print(json.dumps(ask({"cmd": "whois", "username": sys.argv[4]})["user"]), flush=True)
else:
    print("ready", flush=True)
    time.sleep(60)  # holds the connection open, silent
"""

pytestmark = [
    pytest.mark.long,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 to make a network namespace",
    ),
]


@pytest.fixture
def netns():
    name = f"nexus-test-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot make a network namespace: {made.stderr.decode().strip()}")
    inside = ["ip", "netns", "exec", name]
    subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
    procs: list[subprocess.Popen[str]] = []

    def spawn(*cmd: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*inside, *cmd], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    def run(*cmd: str) -> str:
        return subprocess.run([*inside, *cmd], capture_output=True, text=True, timeout=30).stdout

    yield spawn, run
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    subprocess.run(["ip", "netns", "del", name], check=True)


def start(spawn, data: Path, *flags: str) -> int:
    proc = spawn(*server_command(), "--host", "127.0.0.1", "--port", "0", "--data", str(data),
                 "--log", str(data.with_suffix(".log")), *flags)  # fmt: skip
    return int(LISTENING.search(proc.stdout.readline()).group(2))


def test_keepalive_drops_a_session_whose_peer_vanished(netns, tmp_path):
    """With the peer unreachable, short keepalive drops its session; the default keeps it."""
    spawn, run = netns
    peer = tmp_path / "peer.py"
    peer.write_text(PEER)
    quick = start(spawn, tmp_path / "quick.json", "--keepalive-idle", "1",
                  "--keepalive-interval", "1", "--keepalive-count", "2")  # fmt: skip
    patient = start(spawn, tmp_path / "patient.json")
    for port in (quick, patient):
        ghost = spawn(sys.executable, str(peer), str(port), "ghost", "register")
        assert ghost.stdout.readline().strip() == "ready"
        seen = json.loads(run(sys.executable, str(peer), str(port), "watcher", "register", "ghost"))
        assert seen["online"] is True

    run("ip", "link", "set", "lo", "down")  # every peer vanishes, no socket is closed
    time.sleep(1 + 1 * 2 + 2)  # idle + interval * count, and a margin
    run("ip", "link", "set", "lo", "up")

    dropped = json.loads(run(sys.executable, str(peer), str(quick), "watcher", "login", "ghost"))
    kept = json.loads(run(sys.executable, str(peer), str(patient), "watcher", "login", "ghost"))
    assert dropped["online"] is False and dropped["last_seen"] is not None
    assert kept["online"] is True  # the control: without probes, it would linger
