"""What the web port refuses, and how: every answer carries the security headers,
a request for a name the server does not serve is refused (DNS rebinding), and a
text message that is not UTF-8 closes the WebSocket as RFC 6455 says."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest
from websockets.frames import CloseCode

from tests.web.conftest import WebRunning

UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
)


async def ask(web: WebRunning, head: str) -> tuple[int, dict[str, str], bytes]:
    """Sends `head` (the request line and header lines, without the blank line
    that ends them) as it is: (status, headers with lower-case names, body)."""
    reader, writer = await asyncio.open_connection(web.web_host, web.web_port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((head.replace("{key}", key) + "\r\n").encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, raw
        raw += chunk
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode().split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    status = int(status_line.split()[1])
    if status != 101:  # the body: as long as it says, or until the server closes
        size = int(fields.get("content-length", -1))
        while len(body) < size or size < 0:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            body += chunk
    writer.close()
    return status, fields, body


def served(web: WebRunning) -> str:
    return f"{web.web_host}:{web.web_port}"


def assert_security_headers(fields: dict[str, str]) -> None:
    csp = fields.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, fields
    assert fields.get("x-content-type-options") == "nosniff", fields
    assert fields.get("x-frame-options") == "DENY", fields
    assert fields.get("referrer-policy") == "no-referrer", fields


# -- every answer carries the security headers --------------------------------

REFUSALS = {
    "no upgrade": ("GET /ws HTTP/1.1\r\nHost: {host}\r\n", 426),
    "foreign origin": (
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\n" + UPGRADE,
        403,
    ),
    "not a GET": ("POST /ws HTTP/1.1\r\nHost: {host}\r\n" + UPGRADE, 405),
    "no key": (
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\n",
        400,
    ),
    "line too long": ("GET /" + "a" * 9000 + " HTTP/1.1\r\nHost: {host}\r\n", 414),
    "too many headers": (
        "GET / HTTP/1.1\r\nHost: {host}\r\n" + "X-Pad: 1\r\n" * 200,
        431,
    ),
    "not found": ("GET /nope.js HTTP/1.1\r\nHost: {host}\r\n", 404),
    "the page": ("GET / HTTP/1.1\r\nHost: {host}\r\n", 200),
    "the websocket": ("GET /ws HTTP/1.1\r\nHost: {host}\r\n" + UPGRADE, 101),
}


@pytest.mark.parametrize("case", REFUSALS)
async def test_every_answer_carries_the_security_headers(web: WebRunning, case: str) -> None:
    """Refusals too: the library's own (426, 405, 400, 414, 431) and the server's
    (403, 404), as well as the page and the WebSocket's handshake."""
    head, expected = REFUSALS[case]
    status, fields, _ = await ask(web, head.replace("{host}", served(web)))
    assert status == expected
    assert_security_headers(fields)


async def test_the_crowded_answer_carries_the_security_headers(start_web) -> None:
    web = await start_web(max_connections_per_ip=1)
    first = await web.ws()
    status, fields, _ = await ask(web, f"GET / HTTP/1.1\r\nHost: {served(web)}\r\n")
    assert status == 503
    assert_security_headers(fields)
    await first.close()


# -- the Host must name this server (DNS rebinding) -----------------------------


async def test_a_rebound_name_is_refused_for_the_websocket_and_the_page(web: WebRunning) -> None:
    """A page from attacker.example whose name now points at this server sends
    Host and Origin both `attacker.example:PORT`: the origin equals the Host, but
    the Host is no name this server serves, so nothing is upgraded or served."""
    rebound = f"attacker.example:{web.web_port}"
    status, fields, _ = await ask(
        web, f"GET /ws HTTP/1.1\r\nHost: {rebound}\r\nOrigin: http://{rebound}\r\n" + UPGRADE
    )
    assert status == 421
    assert_security_headers(fields)
    status, _, body = await ask(web, f"GET / HTTP/1.1\r\nHost: {rebound}\r\n")
    assert status == 421 and b"<script" not in body
    # Without Origin (no browser page) the Host is checked all the same.
    status, _, _ = await ask(web, f"GET /ws HTTP/1.1\r\nHost: {rebound}\r\n" + UPGRADE)
    assert status == 421


async def test_the_served_address_and_localhost_are_upgraded(web: WebRunning) -> None:
    """The address the connection came to (any port: a tunnel or a mapped port
    changes it), and `localhost` on a loopback listener, with their own origin."""
    port = web.web_port
    for host in (served(web), web.web_host, f"localhost:{port}", "LocalHost", "localhost:1"):
        status, _, _ = await ask(
            web, f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n" + UPGRADE
        )
        assert status == 101, host
    status, _, _ = await ask(web, f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\n")
    assert status == 200


@pytest.mark.parametrize(
    "host",
    ["", "Host: \r\n", "Host: 127.0.0.1\r\nHost: 127.0.0.1\r\n", "Host: 127.0.0.1:x\r\n"],
    ids=["missing", "empty", "twice", "bad port"],
)
async def test_a_request_without_one_clear_host_is_bad(web: WebRunning, host: str) -> None:
    status, fields, _ = await ask(web, "GET / HTTP/1.1\r\n" + host)
    assert status == 400
    assert_security_headers(fields)


async def test_names_in_web_origins_are_served(start_web) -> None:
    """Behind a reverse proxy the Host is the public name: listed in --web-origins,
    it is served, and its pages may open /ws; other names are still refused."""
    web = await start_web(web_origins="https://chat.example.org, http://[fd00::1]:8080")
    for host, origin in (
        ("chat.example.org", "https://chat.example.org"),
        ("chat.example.org:443", "https://chat.example.org"),
        ("[fd00::1]:8080", "http://[fd00::1]:8080"),
    ):
        status, _, _ = await ask(
            web, f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n" + UPGRADE
        )
        assert status == 101, host
    status, _, _ = await ask(web, "GET / HTTP/1.1\r\nHost: chat.example.org\r\n")
    assert status == 200
    status, _, _ = await ask(web, "GET / HTTP/1.1\r\nHost: chat.example.org.evil.example\r\n")
    assert status == 421


async def test_an_allow_all_origin_list_serves_any_name(start_web) -> None:
    """`--web-origins '*'` lets any page in, so there is no name left to protect."""
    web = await start_web(web_origins="*")
    rebound = f"attacker.example:{web.web_port}"
    status, _, _ = await ask(
        web, f"GET /ws HTTP/1.1\r\nHost: {rebound}\r\nOrigin: http://{rebound}\r\n" + UPGRADE
    )
    assert status == 101


# -- invalid UTF-8 closes with 1007 --------------------------------------------


async def test_invalid_utf8_in_a_text_message_closes_with_1007(web: WebRunning) -> None:
    """The frames before it are answered; then the close, code 1007, and nothing
    after it runs."""
    peer = await web.ws()
    await peer.ws.send('{"id": 1, "cmd": "ping"}')
    await peer.ws.send(b'{"id": 2, "cmd": "ping", "x": "\xff"}', text=True)
    await peer.ws.send('{"id": 3, "cmd": "ping"}')
    assert (await peer.reply())["id"] == 1
    assert await peer.closed()
    assert peer.ws.close_code == CloseCode.INVALID_DATA
    assert peer.ws.close_reason == "invalid UTF-8"
    assert not [e for e in peer.events if "id" in e]  # neither 2 nor 3 was answered


async def test_a_fragmented_message_is_checked_whole(web: WebRunning) -> None:
    """A character cut between fragments is fine; invalid UTF-8 in a fragment
    closes with 1007 like in a whole message."""
    peer = await web.ws()
    await peer.ws.send([b'{"id": 4, "cmd": "ping", "x": "\xc3', b'\xa9"}'], text=True)
    assert (await peer.reply())["id"] == 4
    await peer.ws.send([b'{"id": 5, "cmd": "ping", ', b'"x": "\xed\xa0\x80"}'], text=True)
    assert await peer.closed()
    assert peer.ws.close_code == CloseCode.INVALID_DATA
