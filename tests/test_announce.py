"""What `--announce` publishes, checked without the network (the LAN test is test_discovery.py)."""

from __future__ import annotations

import ssl

from nexus.client.tls import fingerprint
from nexus.server.announce import addresses, certificate_fingerprint, instance_name
from nexus.server.config import ServerConfig
from nexus.server.tls import ensure_self_signed


def test_the_fingerprint_is_of_the_first_certificate_whatever_else_is_in_the_file(tmp_path):
    """A PEM with the key first and a chain after: the server's own certificate is announced."""
    (mine := tmp_path / "mine").mkdir()
    (other := tmp_path / "other").mkdir()
    cert, key = ensure_self_signed(mine)
    chain, _ = ensure_self_signed(other)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(key.read_text() + cert.read_text() + chain.read_text())
    config = ServerConfig(data=tmp_path / "d.json", tls_cert=bundle)
    expected = fingerprint(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    assert certificate_fingerprint(config) == expected
    assert certificate_fingerprint(ServerConfig(data=tmp_path / "d.json")) is None


def test_the_name_and_addresses_announced(tmp_path):
    """--announce-name (cut to one DNS label) or `nexus on HOST`; the listening address,
    or every non-loopback one when listening on all."""
    assert instance_name(ServerConfig(announce_name="team chat")) == "team chat"
    assert len(instance_name(ServerConfig(announce_name="é" * 40)).encode()) <= 63
    assert instance_name(ServerConfig()).startswith("nexus on ")
    assert addresses("10.1.2.3") == ["10.1.2.3"]
    everywhere = addresses("0.0.0.0")
    assert everywhere == ["127.0.0.1"] or not any(a.startswith("127.") for a in everywhere)
