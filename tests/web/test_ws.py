"""The web front end without a browser: the page's files, and the protocol over WebSocket
holding every rule of the TCP protocol."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.frames import CloseCode
from websockets.protocol import State
from websockets.uri import parse_uri

from nexus.server.frames import Frame
from nexus.server.frontends.ws import WS_MESSAGES
from nexus.server.outbox import Broadcast, View
from tests.conftest import PASSWORD
from tests.procs import ServerProcess, server_command
from tests.web.conftest import WebRunning
from tests.web.wspeer import WsPeer
from tests.wire import Peer


async def test_page_is_served_with_a_csp_forbidding_inline_script(web: WebRunning) -> None:
    """GET / is the page, with a CSP that allows only the server's own scripts."""
    status, headers, body = await web.get("/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b'<script type="module" src="/app.js">' in body
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, _ = await web.get("/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/nope.js", "/../pyproject.toml", "/%2e%2e/cli.py", "/web"])
async def test_unknown_paths_are_not_found(web: WebRunning, path: str) -> None:
    """Only the packaged files are served: anything else is a 404 with the same CSP."""
    status, headers, body = await web.get(path)
    assert status == 404 and body == b"not found\n"
    assert "content-security-policy" in headers


async def test_websocket_and_tcp_members_share_a_room(web: WebRunning) -> None:
    """A WebSocket member and a TCP member of one room see each other's messages live."""
    browser = await web.ws_user("webber")
    terminal = await web.running.user("termie")
    await browser.ok("join", room="tech")
    await terminal.ok("join", room="tech")
    await terminal.ok("say", room="tech", text="from the terminal")
    message = await browser.event("message", room="tech")
    assert message["from"] == "termie" and message["text"] == "from the terminal"
    await browser.ok("say", room="tech", text="from the browser <b>")
    message = await terminal.event("message", room="tech", **{"from": "webber"})
    assert message["text"] == "from the browser <b>"


async def test_dms_cross_carriers_and_tokens_work_over_websocket(web: WebRunning) -> None:
    """A DM goes from WebSocket to TCP and back; a token from one carrier logs in on the other."""
    browser = await web.ws_user("webber")
    terminal = await web.running.user("termie")
    await browser.ok("dm", to="termie", text="hello tcp")
    assert (await terminal.event("dm"))["text"] == "hello tcp"
    await terminal.ok("dm", to="webber", text="hello ws")
    assert (await browser.event("dm", to="webber"))["text"] == "hello ws"
    token = (await (await web.running.peer()).ok("login", username="webber", password=PASSWORD))[
        "token"
    ]
    again = await web.ws()
    reply = await again.ok("login", username="webber", token=token)
    assert reply["user"]["username"] == "webber"


async def test_one_frame_per_message_and_bad_frames_get_coded_errors(web: WebRunning) -> None:
    """Every message is one frame: bad JSON is bad_frame and the connection stays open."""
    peer = await web.ws()
    await peer.ws.send("not json")
    error = await peer.reply()
    assert error["ok"] is False and error["error"]["code"] == "bad_frame"
    await peer.ws.send("[1, 2]")
    assert (await peer.reply())["error"]["code"] == "bad_frame"
    await peer.ws.send(b'{"id": 1, "cmd": "ping"}'.decode())
    reply = await peer.reply()
    assert reply["ok"] is True and reply["id"] == 1
    # Two frames in one message are not two frames: one bad_frame, no ping.
    await peer.ws.send('{"id": 2, "cmd": "ping"}\n{"id": 3, "cmd": "ping"}')
    assert (await peer.reply())["error"]["code"] == "bad_frame"
    await peer.ok("ping")


async def test_a_message_past_the_frame_limit_is_refused_then_closed(start_web) -> None:
    """A message longer than a TCP frame could carry gets frame_too_large, after the
    replies to the frames before it, then the connection closes."""
    web = await start_web(max_frame=1024)
    peer = await web.ws()
    await peer.ws.send('{"id": 1, "cmd": "ping"}')
    await peer.ws.send('{"cmd": "ping", "pad": "' + "x" * 1100 + '"}')
    assert (await peer.reply())["id"] == 1
    refusal = await peer.reply()
    assert refusal["error"]["code"] == "frame_too_large" and "id" not in refusal
    assert await peer.closed()
    assert peer.ws.close_code == CloseCode.MESSAGE_TOO_BIG


async def test_a_fragmented_message_counts_whole_against_the_limit(start_web) -> None:
    """Fragments of one message are one frame: small pieces cannot pass the limit."""
    web = await start_web(max_frame=1024)
    peer = await web.ws()
    await peer.ws.send(['{"cmd": "ping", "pad": "', "x" * 600, "x" * 600, '"}'])
    assert (await peer.reply())["error"]["code"] == "frame_too_large"
    assert await peer.closed()
    fine = await web.ws()
    await fine.ws.send(['{"id": 5, ', '"cmd": "ping"}'])
    assert (await fine.reply())["id"] == 5


async def test_binary_messages_close_with_unsupported_data(web: WebRunning) -> None:
    """Frames are text: a binary message closes the WebSocket with code 1003."""
    peer = await web.ws()
    await peer.ws.send(b'{"cmd": "ping"}')
    assert await peer.closed()
    assert peer.ws.close_code == CloseCode.UNSUPPORTED_DATA


async def test_frames_before_login_are_budgeted(start_web) -> None:
    """The pre-login budget holds over WebSocket: past it, auth_required and closed."""
    web = await start_web(login_frames=3)
    peer = await web.ws()
    for _ in range(3):
        await peer.ws.send('{"cmd": "ping"}')
    replies = [await peer.reply() for _ in range(4)]
    assert [r["ok"] for r in replies[:3]] == [True, True, True]
    assert replies[3]["error"]["code"] == "auth_required"
    assert await peer.closed()


async def test_login_deadline_covers_the_handshake(start_web) -> None:
    """A socket that never finishes its HTTP request is closed at the login deadline."""
    web = await start_web(login_timeout=0.3)
    reader, writer = await asyncio.open_connection(web.web_host, web.web_port)
    writer.write(b"GET /ws HTTP/1.1\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert not web.running.server.core.per_address


async def test_connections_per_address_are_capped(start_web) -> None:
    """The per-address cap counts web connections with TCP ones; the extra gets a 503."""
    web = await start_web(max_connections_per_ip=2)
    await web.ws()
    await web.running.peer()
    status, headers, _ = await web.get("/")
    assert status == 503 and headers["retry-after"] == "1"
    with pytest.raises(InvalidStatus) as refused:
        await connect(web.url)
    assert refused.value.response.status_code == 503


async def test_foreign_origin_is_refused(web: WebRunning) -> None:
    """A page from another origin cannot open /ws; the page's own origin can."""
    with pytest.raises(InvalidStatus) as refused:
        await connect(web.url, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    own = f"http://{web.web_host}:{web.web_port}"
    peer = await web.ws(origin=own)
    await peer.ok("ping")


async def test_origin_allow_list(start_web) -> None:
    """--web-origins lets the listed origins in, and no others."""
    web = await start_web(web_origins="https://chat.example.org, http://localhost:8080")
    peer = await web.ws(origin="https://chat.example.org")
    await peer.ok("ping")
    with pytest.raises(InvalidStatus):
        await connect(web.url, origin="https://chat.example.org.evil.example")  # type: ignore[arg-type]


async def test_close_frame_gets_the_replies_due_first(web: WebRunning) -> None:
    """Requests sent just before a close frame are answered before the close."""
    peer = await web.ws_user("closer")
    await peer.ws.send('{"id": 1, "cmd": "join", "room": "tech"}')
    await peer.ws.send('{"id": 2, "cmd": "say", "room": "tech", "text": "last words"}')
    await peer.ws.close()
    tcp = await web.running.user("reader")
    history = await tcp.ok("history", room="tech")
    assert [m["text"] for m in history["messages"]] == ["last words"]


async def test_a_websocket_that_stops_reading_is_dropped(start_web) -> None:
    """The slow-reader policy holds: a WebSocket member that never reads is dropped,
    the TCP members who read get everything."""
    web = await start_web(
        max_outbound=32 * 1024, max_outbound_hard=256 * 1024, slow_reader_timeout=0.5
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    sock.connect((web.web_host, web.web_port))
    stalled = await web.ws(sock=sock)
    await stalled.ok("register", username="stalled", password=PASSWORD)
    await stalled.ok("join", room="tech")
    stalled.ws.transport.pause_reading()  # its socket fills; the server's buffer grows
    talker = await web.running.user("talker")
    await talker.ok("join", room="tech")
    text = "y" * 3900
    for _ in range(60):  # the kernel's buffers take a few MB first
        await talker.burst([{"cmd": "say", "room": "tech", "text": text}] * 100)
        if not web.running.connections("stalled"):
            break
        await asyncio.sleep(0.05)
    assert not web.running.connections("stalled")
    assert web.running.connections("talker")
    stalled.ws.transport.abort()  # it would wait for a close frame it cannot read


def _wss(web: WebRunning) -> Any:
    """A WSS connection to the web port, its self-signed certificate taken."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"wss://{web.web_host}:{web.web_port}/ws"
    origin = f"https://{web.web_host}:{web.web_port}"
    return connect(url, ssl=context, origin=origin)  # type: ignore[arg-type]


async def test_websocket_over_tls(start_web, tmp_path) -> None:
    """With --tls the web port serves HTTPS and WSS with the server's certificate."""
    web = await start_web(tls=True)
    async with _wss(web) as ws:
        assert '"hello"' in await ws.recv()
    with pytest.raises(InvalidMessage):
        async with connect(
            f"ws://{web.web_host}:{web.web_port}/ws", open_timeout=2
        ) as plain:  # no TLS: the handshake fails
            await plain.recv()


async def test_a_websocket_over_tls_closed_cleanly_is_let_go_of_at_once(start_web) -> None:
    """A logged-in WSS client that closes with a close frame leaves the core
    at once (its user offline, its address's slot free), as over plain TCP:
    the server closing the TLS transport twice once dropped its state, and
    the connection lingered until its keepalive gave up a minute later."""
    web = await start_web(tls=True)
    async with _wss(web) as ws:
        assert '"hello"' in await ws.recv()
        await ws.send(json.dumps({"cmd": "register", "username": "ana", "password": PASSWORD}))
        assert '"ok":true' in await ws.recv()
        assert web.running.connections("ana")
    core = web.running.server.core
    for _ in range(50):
        if not core.connections:
            break
        await asyncio.sleep(0.1)
    assert not core.connections
    assert not core.per_address


def test_broadcasts_and_their_slices_become_one_message_per_frame() -> None:
    """A room's broadcast, and every view of it the outbox hands a member, become
    exactly its frames as text messages (the broadcast is framed once and
    shared), whatever a frame's size; a frame of a member's own likewise."""
    sizes = [0, 40, 125, 126, 65_535, 65_536, 70_000]
    bodies = [{"event": "message", "seq": i, "text": "x" * n} for i, n in enumerate(sizes)]
    broadcast = Broadcast(0)
    broadcast.frames = [Frame(body) for body in bodies]
    lines = [frame.line[:-1] for frame in broadcast.frames]

    def messages(data: bytes | memoryview) -> list[bytes]:
        reader = ClientProtocol(parse_uri("ws://x/ws"), state=State.OPEN, max_size=None)
        reader.receive_data(bytes(data))
        return [bytes(event.data) for event in reader.events_received()]

    whole = View(broadcast, 0).bytes(WS_MESSAGES)
    assert messages(whole) == lines
    assert View(broadcast, 0).bytes(WS_MESSAGES) is whole  # framed once for every member
    for first in range(len(lines)):
        for last in range(first + 1, len(lines) + 1):
            view = View(broadcast, first)
            view.end = last
            piece = view.bytes(WS_MESSAGES)
            assert messages(piece) == lines[first:last]
            if (first, last) != (0, len(lines)):  # a slice of the framed broadcast, no copy
                assert isinstance(piece, memoryview) and piece.obj is whole
    assert messages(WS_MESSAGES.encode(Frame({"id": 1, "ok": True}))) == [b'{"id":1,"ok":true}']


def test_the_server_binary_serves_the_web_client(tmp_path) -> None:
    """`nexus-server --web-port 0` prints the page's address after the TCP one, and
    serves the page and the WebSocket there; --help documents the web flags."""
    import urllib.request

    with ServerProcess(tmp_path / "data.json", "--web-port", "0") as server:
        line = server.proc.stdout.readline()
        assert line.startswith("nexus-server web client on http://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=5) as page:
            assert page.status == 200 and b"/app.js" in page.read()
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]

        async def hello() -> str:
            async with connect(url.replace("http", "ws") + "ws") as ws:
                return str(await ws.recv())

        assert '"event":"hello"' in asyncio.run(hello())
    help_text = subprocess.run(
        [*server_command(), "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    assert "--web-port" in help_text and "--web-origins" in help_text


async def test_flood_control_holds_over_websocket(start_web) -> None:
    """Messages past the burst are rate_limited, with retry_after, as over TCP."""
    web = await start_web(rate_limit=True, message_burst=3, message_rate=0.5)
    peer = await web.ws_user("chatty")
    replies = await peer.pipeline([{"cmd": "say", "room": "general", "text": "hi"}] * 4)
    assert [r["ok"] for r in replies] == [True, True, True, False]
    assert replies[3]["error"]["code"] == "rate_limited" and replies[3]["error"]["retry_after"] > 0


def test_a_message_acknowledged_over_websocket_survives_sigkill(tmp_path) -> None:
    """An `ok` over WebSocket is a promise too: the server killed right after it
    still has the message when it starts again."""

    async def say(url: str) -> int:
        peer = await WsPeer.open(url)
        await peer.frame()
        await peer.ok("register", username="keeper", password=PASSWORD)
        reply = await peer.ok("say", room="general", text="kept through a crash")
        await peer.close()
        return int(reply["seq"])

    async def history(port: int) -> list[str]:
        peer = await Peer.connect("127.0.0.1", port)
        await peer.frame()
        await peer.ok("login", username="keeper", password=PASSWORD)
        messages = (await peer.ok("history", room="general"))["messages"]
        await peer.close()
        return [m["text"] for m in messages]

    data = tmp_path / "data.json"
    with ServerProcess(data, "--web-port", "0") as server:
        url = server.proc.stdout.readline().split(" on ", 1)[1].strip().replace("http", "ws") + "ws"
        asyncio.run(say(url))
        server.kill()
    with ServerProcess(data) as server:
        assert asyncio.run(history(server.port)) == ["kept through a crash"]
