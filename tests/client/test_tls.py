"""TLS in the client against real TLS servers: pinning on first use, changed certificates, CAs."""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexus.client.connection import ChatConnection
from nexus.client.servers import Server
from nexus.client.session import ChatSession, open_connection
from nexus.client.state import ChatState
from nexus.client.tls import (
    KNOWN_HOSTS_ENV,
    CertificateChanged,
    ClientTLS,
    describe,
    fingerprint,
    known_hosts_path,
    pretty,
)
from nexus.server.tls import ensure_self_signed
from tests.client.conftest import PASSWORD, Proxy, fresh_name, until


def digest_of(cert: Path) -> str:
    return fingerprint(ssl.PEM_cert_to_DER_cert(cert.read_text()))


@pytest.fixture
async def tls_server(start_server, tmp_path):
    """A TLS server with a self-signed certificate in tmp_path."""
    return await start_server(tls=True)


@pytest.fixture
def other_cert(tmp_path) -> tuple[Path, Path]:
    """A second self-signed certificate and key, unrelated to the server's."""
    directory = tmp_path / "other"
    directory.mkdir()
    return ensure_self_signed(directory)


@pytest.fixture
async def impostor(start_server, tmp_path, other_cert):
    """Another TLS server, presenting `other_cert`."""
    cert, key = other_cert
    return await start_server(tmp_path / "impostor.json", tls_cert=cert, tls_key=key)


@pytest.fixture
async def relay(tls_server) -> AsyncIterator[Proxy]:
    """A TCP proxy in front of `tls_server`: one host:port whose server can be swapped."""
    link = Proxy((tls_server.host, tls_server.port))
    await link.mend()
    yield link
    await link.close()


async def connect_tls(host: str, port: int, tls: ClientTLS) -> ChatConnection:
    conn = ChatConnection()
    await conn.connect(host, port, tls=tls)
    return conn


async def test_first_connect_pins_the_certificate_and_the_second_is_silent(
    tls_server, tmp_path, known_hosts
):
    """First use records `host:port sha256` (dir 0700, file 0600) and says so; then nothing."""
    tls = ClientTLS.trust_on_first_use()
    digest = digest_of(tmp_path / "nexus_tls.crt")
    server = f"127.0.0.1:{tls_server.port}"
    conn = await connect_tls(tls_server.host, tls_server.port, tls)
    assert conn.tls_notice == f"trusting new certificate for {server}, {pretty(digest)}"
    assert known_hosts.read_text() == f"{server} {digest}\n"
    assert stat.S_IMODE(known_hosts.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    name = fresh_name()
    await conn.request("register", username=name, password=PASSWORD)  # the protocol works
    await conn.close()

    again = await connect_tls(tls_server.host, tls_server.port, ClientTLS.trust_on_first_use())
    assert again.tls_notice is None
    assert known_hosts.read_text() == f"{server} {digest}\n"
    await again.close()


async def test_a_changed_certificate_is_refused_with_both_fingerprints(
    relay, impostor, tmp_path, other_cert, known_hosts
):
    """Same host:port, another certificate: CertificateChanged names both and the line."""
    tls = ClientTLS.trust_on_first_use()
    await (await connect_tls("127.0.0.1", relay.port, tls)).close()
    relay.target = (impostor.host, impostor.port)
    with pytest.raises(CertificateChanged) as caught:
        await connect_tls("127.0.0.1", relay.port, tls)
    report = str(caught.value)
    expected, presented = digest_of(tmp_path / "nexus_tls.crt"), digest_of(other_cert[0])
    assert f"expected:  {pretty(expected)}" in report
    assert f"presented: {pretty(presented)}" in report
    assert f"delete line 1 of {known_hosts}" in report
    assert f"127.0.0.1:{relay.port} {expected}" in report
    assert known_hosts.read_text().count("\n") == 1  # nothing re-pinned


async def test_a_ca_bundle_verifies_the_server_and_pins_nothing(
    tls_server, tmp_path, other_cert, known_hosts
):
    """--tls-ca mode: the right CA connects, a wrong one fails verification; no known_hosts."""
    good = ClientTLS.with_ca(tmp_path / "nexus_tls.crt")
    conn = await connect_tls(tls_server.host, tls_server.port, good)
    assert conn.tls_notice is None
    await conn.close()
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await connect_tls(tls_server.host, tls_server.port, ClientTLS.with_ca(other_cert[0]))
    assert describe(caught.value).startswith("certificate verification failed: ")
    assert not known_hosts.exists()


def test_contexts_refuse_anything_older_than_tls_1_2():
    """Both modes set TLS 1.2 as the minimum version."""
    assert ClientTLS.trust_on_first_use().context.minimum_version == ssl.TLSVersion.TLSv1_2
    bundle = ssl.get_default_verify_paths().cafile
    if bundle:
        assert ClientTLS.with_ca(bundle).context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_known_hosts_path_env_then_xdg_then_home(monkeypatch, tmp_path):
    """$NEXUS_KNOWN_HOSTS wins, then $XDG_CONFIG_HOME/nexus, then ~/.config/nexus."""
    monkeypatch.setenv(KNOWN_HOSTS_ENV, str(tmp_path / "kh"))
    assert known_hosts_path() == tmp_path / "kh"
    monkeypatch.delenv(KNOWN_HOSTS_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert known_hosts_path() == tmp_path / "xdg" / "nexus" / "known_hosts"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert known_hosts_path() == tmp_path / "home" / ".config" / "nexus" / "known_hosts"


async def test_reconnects_make_the_same_certificate_check(relay, impostor, tmp_path, other_cert):
    """A drop then the same server: back online; then another certificate: refused, stopped."""
    tls = ClientTLS.trust_on_first_use()
    conn, login = await open_connection(
        "127.0.0.1", relay.port, fresh_name(), PASSWORD, register=True, tls=tls
    )
    state = ChatState(login["user"]["username"], "x")
    session = ChatSession(
        state, [Server("127.0.0.1", relay.port)], PASSWORD, tls=tls, backoff=(0.05, 0.1)
    )
    task = asyncio.create_task(session.run(conn, login))
    try:
        await until(lambda: state.connected, what="connected")
        await relay.cut()
        await until(lambda: not state.connected, what="the drop noticed")
        await relay.mend()
        await until(lambda: state.connected, what="reconnected over TLS")

        await relay.cut()
        relay.target = (impostor.host, impostor.port)
        await relay.mend()
        await asyncio.wait_for(task, 5)  # the session gives up instead of retrying
        assert state.connection == "refused: the server's certificate"
        shown = "\n".join(entry.plain for entry in state.pane.entries)
        assert pretty(digest_of(tmp_path / "nexus_tls.crt")) in shown
        assert pretty(digest_of(other_cert[0])) in shown
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def nexus_chat() -> list[str]:
    """The installed console script, or the module when it is not installed."""
    script = Path(sys.executable).parent / "nexus-chat"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nexus.client"]


async def run_chat(*args: str, **env_vars: str) -> tuple[int, str]:
    env = dict(os.environ, NEXUS_PASSWORD=PASSWORD, **env_vars)
    proc = await asyncio.create_subprocess_exec(
        *nexus_chat(),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode, err.decode()


async def test_the_binary_refuses_a_changed_certificate_or_a_wrong_ca(
    tls_server, tmp_path, other_cert, known_hosts
):
    """A stale pin or a wrong CA: a clear error and exit 1; a first use: one line saying so."""
    port = str(tls_server.port)
    pinned = digest_of(other_cert[0])
    known_hosts.parent.mkdir()
    known_hosts.write_text(f"# pinned earlier\n127.0.0.1:{port} {pinned}\n")
    fresh = str(tmp_path / "fresh_known_hosts")
    (code, err), (ca_code, ca_err), (_, first_err) = await asyncio.gather(
        run_chat("--tls", "127.0.0.1", port, "--user", "ana"),
        run_chat("--tls-ca", str(other_cert[0]), "127.0.0.1", port, "--user", "ana"),
        run_chat("--tls", "127.0.0.1", port, "--user", "nobody", **{KNOWN_HOSTS_ENV: fresh}),
    )
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"nexus-chat: the TLS certificate of 127.0.0.1:{port} has CHANGED")
    assert pretty(pinned) in err
    assert pretty(digest_of(tmp_path / "nexus_tls.crt")) in err
    assert f"delete line 2 of {known_hosts}" in err and err.count("\n") <= 8
    assert ca_code == 1 and ca_err.count("\n") == 1
    assert ca_err.startswith(
        f"nexus-chat: cannot connect to 127.0.0.1:{port}: certificate verification failed:"
    )
    served = pretty(digest_of(tmp_path / "nexus_tls.crt"))
    first, failed = first_err.splitlines()  # the notice, then the (expected) login failure
    assert first == f"nexus-chat: trusting new certificate for 127.0.0.1:{port}, {served}"
    assert failed.startswith("nexus-chat: login failed:")


async def test_each_of_several_servers_is_pinned_for_itself(
    tls_server, impostor, tmp_path, known_hosts
):
    """Two nodes (relays to one TLS server): each host:port is pinned on its first
    use, the move saying so; one later presenting another certificate is refused."""
    nodes = [Proxy((tls_server.host, tls_server.port)) for _ in range(2)]
    for node in nodes:
        await node.mend()
    servers = [Server("127.0.0.1", node.port) for node in nodes]
    tls = ClientTLS.trust_on_first_use()
    conn, login = await open_connection(
        "127.0.0.1", nodes[0].port, fresh_name(), PASSWORD, register=True, tls=tls
    )
    state = ChatState(login["user"]["username"], "x")
    session = ChatSession(state, servers, PASSWORD, tls=tls, backoff=(0.05, 0.1))
    task = asyncio.create_task(session.run(conn, login))
    try:
        await until(lambda: state.connected, what="connected")
        await nodes[0].cut()
        await until(lambda: state.connected and session.server == servers[1], what="moved")
        shown = "\n".join(entry.plain for entry in state.pane.entries)
        assert f"trusting new certificate for {servers[1]}" in shown
        digest = digest_of(tmp_path / "nexus_tls.crt")
        assert known_hosts.read_text().splitlines() == [f"{s} {digest}" for s in servers]

        await nodes[1].cut()
        nodes[1].target = (impostor.host, impostor.port)
        await nodes[1].mend()
        await asyncio.wait_for(task, 5)  # the session stops at the refusal
        assert state.connection == "refused: the server's certificate"
        shown = "\n".join(entry.plain for entry in state.pane.entries)
        assert f"the TLS certificate of {servers[1]} has CHANGED" in shown
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for node in nodes:
            await node.close()
