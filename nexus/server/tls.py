"""TLS for the server: a given certificate, or a self-signed one made on first run.

A LAN rarely has a certificate authority, so `--tls` alone creates a key and
a self-signed certificate beside the data file and reuses them afterwards;
clients pin its fingerprint on first use (like ssh's known_hosts).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from nexus.server.config import ServerConfig

log = logging.getLogger("nexus.tls")

SELF_SIGNED_DAYS = 3650


def certificate_files(config: ServerConfig) -> tuple[Path, Path] | None:
    """The certificate and key served, made first if self-signed; None for plain TCP."""
    if not (config.tls or config.tls_cert):
        return None
    if config.tls_cert:
        return config.tls_cert, config.tls_key or config.tls_cert
    return ensure_self_signed(config.data.resolve().parent)


def server_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The listening socket's TLS context (TLS 1.2 at least), or None for plain TCP."""
    files = certificate_files(config)
    if files is None:
        return None
    cert, key = files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def ensure_self_signed(directory: Path) -> tuple[Path, Path]:
    """`nexus_tls.crt` and `nexus_tls.key` in `directory`, created if missing."""
    cert, key = directory / "nexus_tls.crt", directory / "nexus_tls.key"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nexus on {host}")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(host), x509.DNSName("localhost")]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(private, hashes.SHA256())
    )
    key_bytes = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    log.info("created a self-signed TLS certificate %s", cert)
    return cert, key
