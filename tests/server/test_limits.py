"""Connection limits, keepalive, TLS and disk faults, against a real server."""

from __future__ import annotations

import asyncio
import socket
import ssl

import orjson
import pytest

from nexus.server.cli import build_parser
from nexus.server.config import ServerConfig, settings
from nexus.server.tls import ensure_self_signed
from tests.conftest import writes_failing
from tests.wire import Peer


async def connect_from(server, source: str) -> Peer:
    return await Peer.connect(server.host, server.port, local_addr=(source, 0))


async def test_connections_are_limited_per_address(start_server):
    """The N+1th connection from one address is refused; other addresses are unaffected."""
    server = await start_server(max_connections_per_ip=8)
    crowd = [await connect_from(server, "127.0.0.2") for _ in range(8)]
    for peer in crowd:
        assert (await peer.frame())["event"] == "hello"
    extra = await connect_from(server, "127.0.0.2")
    refused = await extra.frame()
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    assert refused["error"]["retry_after"] > 0
    assert await extra.closed()
    other = await connect_from(server, "127.0.0.3")
    assert (await other.frame())["event"] == "hello"
    # A slot freed is a slot to use again.
    await crowd[0].close()
    for _ in range(200):
        if server.server.core.per_address["127.0.0.2"] < 8:
            break
        await asyncio.sleep(0.01)
    again = await connect_from(server, "127.0.0.2")
    assert (await again.frame())["event"] == "hello"
    for peer in [*crowd[1:], extra, other, again]:
        await peer.close()


async def test_sockets_have_keepalive_so_half_open_peers_are_dropped(start_server):
    """Accepted sockets probe silent peers with TCP keepalive at the configured pace."""
    server = await start_server(keepalive_idle=7, keepalive_interval=3, keepalive_count=2)
    peer = await server.user("alice")
    (connection,) = server.connections()
    sock = server.transport(connection).get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 2
    await peer.close()


async def test_a_full_disk_refuses_writes_keeps_reads_and_recovers(server, monkeypatch):
    """ENOSPC: say gets `internal`, reads still work, writes resume when space returns."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await alice.ok("say", room="general", text="before")
    with writes_failing(server.server.store, monkeypatch):
        error = await alice.fails("internal", "say", room="general", text="lost")
        assert "No space left" in error["message"]
        await alice.fails("internal", "bio", text="lost too")
        replies = await alice.pipeline(
            [
                {"cmd": "say", "room": "general", "text": "lost"},
                {"cmd": "ping"},
                {"cmd": "join", "room": "tech"},
            ]
        )
        assert [r["ok"] or r["error"]["code"] for r in replies] == ["internal", True, "internal"]
        page = await bob.ok("history", room="general")
        assert [m["text"] for m in page["messages"]] == ["before"]
        assert not [e for e in bob.events if e.get("text") == "lost"]  # nor any event of it
        assert (await bob.ok("whois", username="alice"))["user"]["bio"] == ""
        assert (await bob.ok("rooms"))["rooms"]

    reply = await alice.ok("say", room="general", text="after")
    assert reply["seq"] == 2  # the refused message left no gap
    page = await bob.ok("history", room="general")
    assert [m["text"] for m in page["messages"]] == ["before", "after"]


@pytest.fixture
def client_tls(tmp_path):
    """A client context that trusts the server's self-signed certificate."""
    cert, _ = ensure_self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    return context


async def test_tls_with_a_self_signed_certificate(start_server, tmp_path, client_tls):
    """--tls serves TLS 1.2+ with a certificate made on first run and reused after."""
    server = await start_server(tls=True)
    cert = tmp_path / "nexus_tls.crt"
    assert cert.exists() and (tmp_path / "nexus_tls.key").stat().st_mode & 0o077 == 0
    peer = await Peer.connect(server.host, server.port, ssl=client_tls, server_hostname="localhost")
    assert (await peer.frame())["event"] == "hello"
    await peer.ok("register", username="alice", password="password1")
    version = peer.writer.get_extra_info("ssl_object").version()
    assert version in ("TLSv1.2", "TLSv1.3")
    await peer.close()
    first = cert.read_bytes()
    await server.close()
    await start_server(tls=True)
    assert cert.read_bytes() == first


async def test_a_tls_client_that_quits_or_closes_is_let_go_of_at_once(start_server, client_tls):
    """Over TLS as over plain TCP, a client that says `quit` or closes its
    end leaves the core at once (its user offline, its address's slot free)."""
    server = await start_server(tls=True)
    core = server.server.core
    for name in ("ana", "bob"):
        peer = await Peer.connect(
            server.host, server.port, ssl=client_tls, server_hostname="localhost"
        )
        assert (await peer.frame())["event"] == "hello"
        await peer.ok("register", username=name, password="password1")
        if name == "ana":
            await peer.ok("quit")
            assert await asyncio.wait_for(peer.reader.read(), 5) == b""
        await peer.close()
        for _ in range(50):
            if not core.connections:
                break
            await asyncio.sleep(0.1)
        assert not core.connections and not core.per_address, name


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_tls_refuses_old_protocol_versions(start_server, client_tls):
    """A client limited to TLS 1.1 cannot connect."""
    server = await start_server(tls=True)
    client_tls.minimum_version = ssl.TLSVersion.TLSv1
    client_tls.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await Peer.connect(server.host, server.port, ssl=client_tls, server_hostname="localhost")


async def test_tls_with_a_given_certificate_and_plain_tcp_refused(start_server, tmp_path):
    """--tls-cert/--tls-key serve that certificate; a plaintext client gets nothing usable."""
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = ensure_self_signed(certs)
    server = await start_server(tls_cert=cert, tls_key=key)
    context = ssl.create_default_context(cafile=str(cert))
    peer = await Peer.connect(server.host, server.port, ssl=context, server_hostname="localhost")
    assert (await peer.frame())["event"] == "hello"
    await peer.close()
    plain = await Peer.connect(server.host, server.port)
    with pytest.raises((EOFError, ValueError, ConnectionError, TimeoutError)):
        await plain.frame(timeout=2)
    await plain.close()


def test_every_setting_comes_from_flags_or_environment(tmp_path):
    """NEXUS_* variables override defaults; flags override both."""
    env = {"NEXUS_MAX_OUTBOUND": "2048", "NEXUS_RATE_LIMIT": "off", "NEXUS_PORT": "7000"}
    args = build_parser().parse_args(["--port", "7001", "--fsync", "--message-rate", "2.5"])
    overrides = {f.name: getattr(args, f.name) for f in settings()}
    config = ServerConfig.from_env(env, **overrides)
    assert (config.port, config.max_outbound, config.rate_limit) == (7001, 2048, False)
    assert (config.fsync, config.message_rate) == (True, 2.5)
    assert ServerConfig.from_env({}).port == 9999
    with pytest.raises(ValueError):
        ServerConfig.from_env({"NEXUS_FSYNC": "maybe"})


async def test_a_reply_larger_than_the_outbound_cap_still_reaches_its_asker(start_server):
    """A room list past max_outbound goes to the reader that asked, who stays connected."""
    server = await start_server(max_outbound=20_000)
    alice = await server.user("alice")
    await alice.burst([{"cmd": "create", "room": f"r{i}", "topic": "😀" * 200} for i in range(30)])
    alice.events.clear()
    reply = await alice.ok("rooms")
    assert len(reply["rooms"]) == 33
    assert len(orjson.dumps(reply)) > 20_000
    assert (await alice.ok("ping"))["ts"] > 0


async def test_blank_lines_count_toward_the_frames_allowed_before_login(start_server):
    """An anonymous peer cannot dodge the frame budget with white-space lines."""
    server = await start_server(login_frames=5)
    peer = await server.peer()
    await peer.send_raw(b" \n" * 5)
    refused = await peer.frame()
    assert refused["error"]["code"] == "auth_required"
    assert await peer.closed()


async def test_room_changes_share_the_flood_budget(start_server):
    """create, delete and topic reach every session, so they are flood-controlled too."""
    server = await start_server(rate_limit=True, message_burst=2, message_rate=0.5)
    alice = await server.user("alice")
    await alice.ok("create", room="one")
    await alice.ok("topic", room="one", topic="t")
    error = await alice.fails("rate_limited", "delete", room="one")
    assert error["retry_after"] > 0


async def test_with_tls_the_per_address_cap_applies_before_the_handshake(start_server, client_tls):
    """Silent connections that never start TLS count against their address's cap at once:
    the one past the cap is closed without waiting, and other addresses are served."""
    server = await start_server(tls=True, max_connections_per_ip=8)
    silent = [await connect_from(server, "127.0.0.2") for _ in range(8)]
    extra = await connect_from(server, "127.0.0.2")
    assert await asyncio.wait_for(extra.reader.read(), 2) == b""
    other = await Peer.connect(
        server.host,
        server.port,
        ssl=client_tls,
        server_hostname="localhost",
        local_addr=("127.0.0.3", 0),
    )
    assert (await other.frame())["event"] == "hello"
    for peer in [*silent, extra, other]:
        await peer.close()


async def test_joining_and_leaving_share_the_flood_budget(start_server):
    """Each join or leave that changes membership reaches every member: flood-controlled."""
    server = await start_server(rate_limit=True, message_burst=10, message_rate=0.5)
    alice = await server.user("alice")
    watcher = await server.user("watcher")
    await watcher.ok("join", room="tech")
    replies = await alice.pipeline(
        [{"cmd": cmd, "room": "tech"} for _ in range(20) for cmd in ("join", "leave")]
    )
    outcomes = [r["ok"] or r["error"]["code"] for r in replies]
    assert outcomes[:10] == [True] * 10
    assert set(outcomes[10:]) == {"rate_limited"}
    # Joining a room one is already in changes nothing and costs nothing.
    await alice.ok("join", room="general")
    await alice.fails("rate_limited", "join", room="tech")
    assert [(await alice.ok("join", room="general"))["room"]["name"] for _ in range(5)]
