"""TLS for the client: trust on first use (pinned in known_hosts) or a CA bundle.

A LAN server usually has a self-signed certificate (`nexus-server --tls`),
so by default the client trusts the certificate it sees first for a
`host:port`, records its SHA-256 fingerprint, and refuses a different one
later, as ssh does with host keys. `ClientTLS.with_ca(FILE)` instead
verifies the chain and the host name the usual way, and pins nothing.

No I/O beyond the known_hosts file and no UI: ChatConnection calls
`check()` with the peer's certificate right after the handshake, before
anything is read from the stream.

    known_hosts: one line per server, `host:port sha256-hex`; `#` comments.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path

KNOWN_HOSTS_ENV = "NEXUS_KNOWN_HOSTS"  # overrides the path, for tests and unusual setups


def known_hosts_path() -> Path:
    """`$NEXUS_KNOWN_HOSTS`, else `$XDG_CONFIG_HOME/nexus/known_hosts` (~/.config by default)."""
    if override := os.environ.get(KNOWN_HOSTS_ENV):
        return Path(override)
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "nexus" / "known_hosts"


def fingerprint(der: bytes) -> str:
    """The SHA-256 of a DER certificate, as lower-case hex (the known_hosts form)."""
    return hashlib.sha256(der).hexdigest()


def pretty(digest: str) -> str:
    """`abcd...` -> `SHA256 ab:cd:...`, the form shown to people."""
    return "SHA256 " + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def host_key(host: str, port: int) -> str:
    """The known_hosts name of a server: `host:port`, `[v6]:port` for IPv6 literals."""
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe(exc: ssl.SSLError) -> str:
    """An ssl error as one line for people, without OpenSSL's source locations."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message or exc.reason}"
    reason = (exc.reason or "").replace("_", " ").lower()
    return f"TLS failed: {reason or exc}"


class CertificateChanged(Exception):
    """The server presented a certificate other than the one pinned for it.

    Not an OSError on purpose: retrying cannot help, and callers that retry
    on network errors must stop and show this message instead.
    """

    def __init__(
        self, server: str, expected: str, presented: str, path: Path, line: int, entry: str
    ) -> None:
        self.server, self.expected, self.presented = server, expected, presented
        self.path, self.line, self.entry = path, line, entry
        super().__init__(self.report())

    def report(self) -> str:
        return "\n".join(
            [
                f"the TLS certificate of {self.server} has CHANGED: refusing to connect.",
                "Someone may be intercepting the connection, or the server has a new certificate.",
                f"  expected:  {pretty(self.expected)}",
                f"  presented: {pretty(self.presented)}",
                f"If the change is legitimate, delete line {self.line} of {self.path}",
                f"  {self.entry}",
                "and connect again.",
            ]
        )


class KnownHosts:
    """The pinned fingerprints, read afresh on each look-up (another client may add some)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lookup(self, server: str) -> tuple[str, int, str] | None:
        """(fingerprint, line number, the line) of the first entry for `server`, if any."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if len(fields) >= 2 and not fields[0].startswith("#") and fields[0] == server:
                return fields[1].lower(), number, line.strip()
        return None

    def add(self, server: str, digest: str) -> None:
        """Appends `server digest`, creating the directory (0700) and the file (0600)."""
        if not self.path.parent.exists():
            self.path.parent.parent.mkdir(parents=True, exist_ok=True)
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(f"{server} {digest}\n")


class ClientTLS:
    """An SSLContext (TLS 1.2 or later) and the check made on the certificate presented."""

    def __init__(self, context: ssl.SSLContext, pins: KnownHosts | None) -> None:
        self.context = context
        self.pins = pins  # None: the context verifies (CA mode)

    @classmethod
    def trust_on_first_use(cls, known_hosts: Path | None = None) -> ClientTLS:
        """No CA verification; the fingerprint is pinned in known_hosts instead."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return cls(context, KnownHosts(known_hosts or known_hosts_path()))

    @classmethod
    def with_ca(cls, cafile: str | Path) -> ClientTLS:
        """Chain and host name verified against `cafile`. Raises OSError or ssl.SSLError."""
        context = ssl.create_default_context(cafile=str(cafile))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return cls(context, None)

    def check(self, host: str, port: int, der: bytes | None) -> str | None:
        """Accepts or refuses the presented certificate once the handshake is done.

        Returns a notice to show when a new certificate was pinned; raises
        CertificateChanged when it differs from the pinned one.
        """
        if self.pins is None:
            return None  # the handshake already verified it
        if not der:
            raise ssl.SSLError("the server presented no certificate")
        server, presented = host_key(host, port), fingerprint(der)
        known = self.pins.lookup(server)
        if known is None:
            self.pins.add(server, presented)
            return f"trusting new certificate for {server}, {pretty(presented)}"
        expected, line, entry = known
        if expected != presented:
            raise CertificateChanged(server, expected, presented, self.pins.path, line, entry)
        return None
