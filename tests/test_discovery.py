"""LAN discovery for real: a server announcing itself in one network namespace, found
from another across a virtual Ethernet link, over real multicast DNS.

Two namespaces joined by a veth pair make a private LAN of two hosts, so
the test neither sees nor disturbs the machine's own network.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexus.client.tls import fingerprint
from tests.procs import LISTENING, server_command

pytestmark = [
    pytest.mark.long,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 to make network namespaces",
    ),
]

SERVER_ADDRESS = "10.231.7.1"
CLIENT_ADDRESS = "10.231.7.2"
PASSWORD = "correct horse"

BROWSE = """
import asyncio, json
from nexus.client.discovery import browse
found = asyncio.run(browse(3.0))
print(json.dumps([[f.name, f.host, f.port, f.version, f.fingerprint] for f in found]))
"""


@pytest.fixture
def lan():
    """Two namespaces, `server` and `client`, on one veth link; yields a runner per side."""
    tag = f"{os.getpid() % 100000}"
    names = {"server": f"nx-srv-{tag}", "client": f"nx-cli-{tag}"}
    for name in names.values():
        made = subprocess.run(["ip", "netns", "add", name], capture_output=True)
        if made.returncode:
            pytest.skip(f"cannot make a network namespace: {made.stderr.decode().strip()}")

    def ip(side: str, *args: str) -> None:
        subprocess.run(["ip", "-n", names[side], *args], check=True, timeout=30)

    procs: list[subprocess.Popen[str]] = []
    try:
        subprocess.run(
            ["ip", "link", "add", f"v{tag}s", "netns", names["server"], "type", "veth",
             "peer", "name", f"v{tag}c", "netns", names["client"]],
            check=True, timeout=30,
        )  # fmt: skip
        for side, address, dev in (
            ("server", SERVER_ADDRESS, f"v{tag}s"),
            ("client", CLIENT_ADDRESS, f"v{tag}c"),
        ):
            ip(side, "link", "set", "lo", "up")
            ip(side, "addr", "add", f"{address}/24", "dev", dev)
            ip(side, "link", "set", dev, "up", "multicast", "on")

        def spawn(side: str, *cmd: str, **kwargs) -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", names[side], *cmd],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
            )  # fmt: skip
            procs.append(proc)
            return proc

        yield names, spawn
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def start_server(spawn, tmp_path: Path, *flags: str) -> int:
    data = tmp_path / "nexus_data.json"
    proc = spawn("server", *server_command(), "--host", "0.0.0.0", "--port", "0",
                 "--data", str(data), "--log", str(tmp_path / "server.log"),
                 "--announce", "--announce-name", "team chat", *flags)  # fmt: skip
    line = proc.stdout.readline()
    match = LISTENING.search(line)
    assert match, line + proc.stderr.read()
    return int(match.group(2))


def browse(spawn) -> list[list]:
    proc = spawn("client", sys.executable, "-c", BROWSE, env={**os.environ})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def test_an_announced_tls_server_is_found_with_its_fingerprint(lan, tmp_path):
    """The client's browse finds the server's address, port, version and certificate."""
    _, spawn = lan
    port = start_server(spawn, tmp_path, "--tls")
    found = browse(spawn)
    cert = (tmp_path / "nexus_tls.crt").read_text()
    digest = fingerprint(ssl.PEM_cert_to_DER_cert(cert))
    assert len(found) == 1
    name, host, found_port, version, announced = found[0]
    assert (name, host, found_port, announced) == ("team chat", SERVER_ADDRESS, port, digest)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version)


TMUX_SOCKET = f"nexus-discovery-{os.getpid()}"  # a tmux server of the test's own


def tmux(*args: str) -> str:
    command = ["tmux", "-L", TMUX_SOCKET, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 or args[0] == "kill-server", done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_nexus_chat_without_host_lists_servers_and_connects_with_the_announced_pin(lan, tmp_path):
    """`nexus-chat` with no HOST lists the LAN's servers; choosing one logs in over TLS,
    pinning the announced certificate in known_hosts."""
    names, spawn = lan
    port = start_server(spawn, tmp_path, "--tls")
    env = {**os.environ, "NEXUS_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    known_hosts = tmp_path / "known_hosts"
    env["NEXUS_KNOWN_HOSTS"] = str(tmp_path / "register_known_hosts")
    chat = shutil.which("nexus-chat") or f"{sys.executable} -m nexus.client"
    register = spawn("server", *chat.split(), "login", "127.0.0.1", str(port), "--tls",
                     "--user", "ana", "--register", env=env)  # fmt: skip
    assert register.wait(timeout=60) == 0, register.stderr.read()
    env["NEXUS_KNOWN_HOSTS"] = str(known_hosts)
    session = "chat"
    command = f"ip netns exec {names['client']} {chat} --user ana"
    env.setdefault("PYTHONPATH", "")
    names_ = ("NEXUS_PASSWORD", "XDG_CONFIG_HOME", "NEXUS_KNOWN_HOSTS", "PATH", "PYTHONPATH")
    exports = [shlex.quote(f"{key}={env[key]}") for key in names_]
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
         f"env {' '.join(exports)} {command}; sleep 30")  # fmt: skip
    socket = tmux("display-message", "-p", "#{socket_path}").strip()
    try:
        screen = wait_for(session, "Connect to which?")
        assert f"team chat  {SERVER_ADDRESS}:{port}  (TLS" in screen
        tmux("send-keys", "-t", session, "1", "Enter")
        wait_for(session, "#general")
        pinned = known_hosts.read_text().split()
        cert = (tmp_path / "nexus_tls.crt").read_text()
        assert pinned == [f"{SERVER_ADDRESS}:{port}", fingerprint(ssl.PEM_cert_to_DER_cert(cert))]
    finally:
        tmux("kill-server")
        Path(socket).unlink(missing_ok=True)  # tmux leaves it behind


def wait_for(session: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = tmux("capture-pane", "-p", "-t", session)
        if text in screen:
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} on screen:\n{screen}")
        time.sleep(0.1)
