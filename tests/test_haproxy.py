"""contrib/haproxy.cfg, run by a real HAProxy in front of a server: chat,
IRC and the web port (page and WebSocket) all work through it, and the
server sees each client's own address and port (the PROXY header), not
HAProxy's. Nodes 2 and 3 of the file point where nothing listens: HAProxy
sends every client to the node that is up."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, Running, StartServer
from tests.irc.conftest import IrcPeer
from tests.wire import Peer

CONFIG = Path(__file__).resolve().parent.parent / "contrib" / "haproxy.cfg"

pytestmark = pytest.mark.engines("json")  # the front ends' matter, not the store's


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Balancer:
    """HAProxy on contrib/haproxy.cfg, its frontends on free loopback ports."""

    def __init__(self, running: Running) -> None:
        server = running.server
        assert server.web_listener is not None
        self.chat, self.web, self.irc = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "NEXUS_BIND": "127.0.0.1",
            "NEXUS_CHAT_PORT": str(self.chat),
            "NEXUS_WEB_PORT": str(self.web),
            "NEXUS_IRC_PORT": str(self.irc),
            "NEXUS_NODE1": "127.0.0.1",
            "NEXUS_NODE2": "127.0.0.2",  # nothing listens there
            "NEXUS_NODE3": "127.0.0.3",
            "NEXUS_NODE_CHAT_PORT": str(running.port),
            "NEXUS_NODE_WEB_PORT": str(server.web_listener.sockets[0].getsockname()[1]),
            "NEXUS_NODE_IRC_PORT": str(server.irc_address("irc")[1]),
        }
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.proc = subprocess.Popen(
            [haproxy, "-db", "-f", str(CONFIG)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def listening(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for port in (self.chat, self.web, self.irc):
            while True:
                assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    assert loop.time() < deadline, "HAProxy never listened"
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def require_haproxy() -> None:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.fail("HAProxy is not installed (apt-get install haproxy; .ci/run does)")


@pytest.fixture
def haproxy_installed() -> None:
    require_haproxy()


@pytest.fixture
async def behind(
    haproxy_installed: None, start_server: StartServer
) -> Iterator[tuple[Running, Balancer]]:
    running = await start_server(proxy_from=("127.0.0.1",), web_port=0, irc_port=0)
    balancer = Balancer(running)
    try:
        await balancer.listening()
        yield running, balancer
    finally:
        balancer.stop()


def test_the_config_is_valid() -> None:
    subprocess.run(["haproxy", "-c", "-f", str(CONFIG)], check=True, capture_output=True)


async def test_chat_irc_and_the_web_work_through_haproxy(behind: tuple[Running, Balancer]) -> None:
    running, balancer = behind
    ana = await Peer.connect("127.0.0.1", balancer.chat)
    assert (await ana.frame())["event"] == "hello"
    await ana.ok("register", username="ana", password=PASSWORD)
    await ana.ok("join", room="general")
    # The server knows ana by her own port, which only the PROXY header tells.
    own = ana.writer.get_extra_info("sockname")[1]
    assert [c.session.peer for c in running.connections("ana")] == [f"127.0.0.1:{own}"]

    native = await Peer.connect("127.0.0.1", balancer.chat)  # an account for IRC's login
    await native.frame()
    await native.ok("register", username="bob", password=PASSWORD)
    await native.close()
    bob = await IrcPeer.connect("127.0.0.1", balancer.irc)
    await bob.register("bob")
    await bob.join("#general")
    await ana.ok("say", room="general", text="through the balancer")
    await bob.expect(r"PRIVMSG #general :through the balancer")
    await bob.send("PRIVMSG #general :and back")
    got = await ana.event("message", room="general", text="and back")
    assert got["from"] == "bob"

    reader, writer = await asyncio.open_connection("127.0.0.1", balancer.web)
    writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{balancer.web}\r\n\r\n".encode())
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", balancer.web)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{balancer.web}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{balancer.web}\r\n\r\n"
        ).encode()
    )
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 101")
    writer.close()
    await ana.close()
    await bob.close()
