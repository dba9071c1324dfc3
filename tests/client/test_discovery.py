"""Choosing an announced server, and TLS pinned to the certificate it announced.

The mDNS part runs for real between network namespaces in tests/test_discovery.py;
these need no root.
"""

from __future__ import annotations

import pytest

from nexus.client.connection import ChatConnection
from nexus.client.discovery import AnnouncedTLS, AnnouncementMismatch, Found, choose
from tests.client.test_tls import digest_of


async def test_the_announced_certificate_is_accepted_and_pinned(
    start_server, tmp_path, known_hosts
):
    """A server presenting the certificate it announced: connected, and pinned in known_hosts."""
    server = await start_server(tls=True)
    digest = digest_of(tmp_path / "nexus_tls.crt")
    conn = ChatConnection()
    await conn.connect(server.host, server.port, tls=AnnouncedTLS(digest))
    await conn.close()
    assert known_hosts.read_text().split() == [f"{server.host}:{server.port}", digest]


async def test_a_certificate_other_than_the_announced_one_is_refused(
    start_server, tmp_path, known_hosts
):
    """A different certificate than announced: refused with both fingerprints, nothing pinned."""
    server = await start_server(tls=True)
    conn = ChatConnection()
    with pytest.raises(AnnouncementMismatch) as refused:
        await conn.connect(server.host, server.port, tls=AnnouncedTLS("ab" * 32))
    assert "other than the one it announced" in str(refused.value)
    assert "SHA256 ab:ab" in str(refused.value)
    assert not known_hosts.exists()


async def test_choose_lists_servers_and_takes_the_number_typed():
    """Each server is listed with address and TLS; a bad answer asks again; Enter is 1."""
    servers = [
        Found("alpha", "10.0.0.1", 9999, "0.1.0", None),
        Found("beta", "10.0.0.2", 7000, "0.1.0", "cd" * 32),
    ]
    said: list[str] = []
    answers = iter(["7", "x", "2"])

    async def ask(question: str) -> str:
        said.append(question)
        return next(answers)

    assert await choose(servers, ask, said.append) == servers[1]
    assert "  1. alpha  10.0.0.1:9999  (no TLS, nexus 0.1.0)" in said
    assert "  2. beta  10.0.0.2:7000  (TLS, nexus 0.1.0)" in said
    assert said.count("Type a number from 1 to 2.") == 2

    async def enter(question: str) -> str:
        return ""

    assert await choose(servers, enter, said.append) == servers[0]
    assert await choose([], enter, said.append) is None
