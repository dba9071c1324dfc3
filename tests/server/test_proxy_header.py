"""Behind a load balancer: connections from `--proxy-from` begin with a PROXY
protocol header, and the client it names is the one the server counts
(per-address caps, logs, HTTP's remote address), on every front end."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
from collections.abc import Callable

import orjson
import pytest

from nexus.server.config import ServerConfig
from nexus.server.frontends.proxied import BadHeader, read_header
from tests.conftest import StartServer

V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(client: str, port: int = 40000) -> bytes:
    family = "TCP6" if ":" in client else "TCP4"
    server = "::1" if ":" in client else "127.0.0.1"
    return f"PROXY {family} {client} {server} {port} 9999\r\n".encode()


def v2(client: str, port: int = 40000, command: int = 1) -> bytes:
    if ":" in client:
        body = socket.inet_pton(socket.AF_INET6, client) + bytes(16) + struct.pack("!HH", port, 1)
        family = 0x21
    else:
        body = socket.inet_pton(socket.AF_INET, client) + bytes(4) + struct.pack("!HH", port, 1)
        family = 0x11
    return V2 + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


# -- the header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (v1("203.0.113.7", 5555), ("203.0.113.7", 5555)),
        (v1("2001:db8::7", 5555), ("2001:db8::7", 5555)),
        (v2("203.0.113.7", 5555), ("203.0.113.7", 5555)),
        (v2("2001:db8::7", 5555), ("2001:db8::7", 5555)),
        (b"PROXY UNKNOWN\r\n", None),
        (v2("203.0.113.7", command=0), None),  # LOCAL: the balancer's own health check
    ],
)
def test_a_header_names_the_client_and_its_length(
    header: bytes, client: tuple[str, int] | None
) -> None:
    assert read_header(header + b"rest") == (client, len(header))
    for cut in range(len(header)):  # byte by byte: more is needed, never an error
        assert read_header(header[:cut]) is None


@pytest.mark.parametrize(
    "bad",
    [
        b'{"cmd": "login"}\n',
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 203.0.113.7 127.0.0.1 40000\r\n",  # a field short
        b"PROXY TCP4 2001:db8::7 127.0.0.1 40000 9999\r\n",  # not the family it says
        b"PROXY TCP4 203.0.113.7 127.0.0.1 99999 9999\r\n",
        b"PROXY TCP4 " + b"1" * 120,  # never ends
        V2 + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
    ],
)
def test_anything_else_is_refused(bad: bytes) -> None:
    with pytest.raises(BadHeader):
        read_header(bad)


def test_the_setting_takes_networks_and_refuses_tls() -> None:
    config = ServerConfig.from_env({}, proxy_from=("10.0.0.1, 192.168.0.0/16", "10.0.0.1"))
    assert config.proxy_from == ("10.0.0.1/32", "192.168.0.0/16")
    with pytest.raises(ValueError, match="not an address"):
        ServerConfig.from_env({}, proxy_from=("10.0.0.300",))
    with pytest.raises(ValueError, match="terminate TLS at the balancer"):
        ServerConfig.from_env({}, proxy_from=("10.0.0.1",), tls=True)


# -- a real server behind it ---------------------------------------------------------


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "never came to be"
        await asyncio.sleep(0.01)


async def opened(
    host: str, port: int, header: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(header)
    await writer.drain()
    return reader, writer


async def first_frame(reader: asyncio.StreamReader) -> dict:
    return orjson.loads(await asyncio.wait_for(reader.readline(), 5))


async def test_the_client_the_header_names_is_the_one_counted(start_server: StartServer) -> None:
    running = await start_server(proxy_from=("127.0.0.1",), max_connections_per_ip=2)
    host, port = running.host, running.port
    kept = []
    for header in (v1("203.0.113.7", 1001), v2("203.0.113.7", 1002)):
        reader, writer = await opened(host, port, header)
        assert (await first_frame(reader))["event"] == "hello"
        kept.append(writer)
    peers = sorted(c.session.peer for c in running.connections())
    assert peers == ["203.0.113.7:1001", "203.0.113.7:1002"]
    # The third from that client is past its cap; another client is not.
    reader, writer = await opened(host, port, v1("203.0.113.7", 1003))
    refused = await first_frame(reader)
    assert refused["error"]["code"] == "rate_limited", refused
    writer.close()
    reader, writer = await opened(host, port, v1("198.51.100.9"))
    assert (await first_frame(reader))["event"] == "hello"
    kept.append(writer)
    # The header and the first request in one segment: the request is answered.
    reader, writer = await opened(host, port, v1("198.51.100.9") + b'{"cmd":"ping","id":1}\n')
    assert (await first_frame(reader))["event"] == "hello"
    assert (await first_frame(reader))["id"] == 1
    kept.append(writer)
    for writer in kept:
        writer.close()


async def test_a_trusted_peer_without_a_header_is_dropped(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_server(proxy_from=("127.0.0.0/8",))
    reader, writer = await opened(running.host, running.port, b'{"cmd":"ping"}\n')
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, not greeted
    writer.close()
    assert "no PROXY header" in caplog.text
    # A balancer's health check (connect, then go) costs no warning.
    caplog.clear()
    _, writer = await asyncio.open_connection(running.host, running.port)
    writer.close()
    await asyncio.sleep(0.1)
    assert "PROXY" not in caplog.text
    assert running.connections() == []


async def test_an_untrusted_peer_is_never_taken_at_its_word(start_server: StartServer) -> None:
    running = await start_server(proxy_from=("192.0.2.1",))
    reader, writer = await opened(running.host, running.port, v1("203.0.113.7"))
    assert (await first_frame(reader))["event"] == "hello"
    refused = await first_frame(reader)  # the header is a bad frame, not an address
    assert refused["ok"] is False, refused
    assert [c.session.ip for c in running.connections()] == ["127.0.0.1"]
    writer.close()


async def test_irc_and_the_web_port_take_the_header_too(start_server: StartServer) -> None:
    running = await start_server(
        proxy_from=("127.0.0.1",), irc_port=0, web_port=0, max_connections_per_ip=1
    )
    server = running.server
    irc_port = server.irc["irc"].sockets[0].getsockname()[1]
    assert server.web_listener is not None
    web_port = server.web_listener.sockets[0].getsockname()[1]
    host = running.host
    _, irc = await opened(host, irc_port, v2("203.0.113.7", 4444) + b"NICK ana\r\n")
    await until(
        lambda: [c.session.peer for c in running.connections()] == ["203.0.113.7:4444 (irc)"]
    )
    reader2, crowded = await opened(host, irc_port, v1("203.0.113.7"))
    assert b"too many connections" in await asyncio.wait_for(reader2.read(), 5)
    # HTTP: the page is served to the client the header names, and its cap is that client's.
    reader3, page = await opened(
        host,
        web_port,
        v1("198.51.100.9")
        + f"GET / HTTP/1.1\r\nHost: {host}:{web_port}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert (await asyncio.wait_for(reader3.readline(), 5)).startswith(b"HTTP/1.1 200")
    await asyncio.wait_for(reader3.read(), 5)
    reader4, ws = await opened(host, web_port, v1("203.0.113.7") + b"GET /ws HTTP/1.1\r\n")
    assert b"503" in await asyncio.wait_for(reader4.readline(), 5)  # 203.0.113.7 holds its one
    for writer in (irc, crowded, page, ws):
        writer.close()


async def test_http_counts_failed_logins_by_the_client_behind_the_balancer(
    start_server: StartServer,
) -> None:
    running = await start_server(proxy_from=("127.0.0.1",), web_port=0, login_attempts_per_minute=2)
    assert running.server.web_listener is not None
    port = running.server.web_listener.sockets[0].getsockname()[1]
    wrong = base64.b64encode(b"nobody:wrong password").decode()

    async def upload_as(client: str) -> int:
        request = (
            f"POST /files HTTP/1.1\r\nHost: {running.host}:{port}\r\n"
            f"Authorization: Basic {wrong}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
        )
        reader, writer = await opened(running.host, port, v1(client) + request.encode())
        status = int((await asyncio.wait_for(reader.readline(), 5)).split()[1])
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return status

    assert [await upload_as("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert await upload_as("198.51.100.9") == 401  # another client: its own budget
