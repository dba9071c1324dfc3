"""Finding Nexus servers on the LAN: mDNS/DNS-SD browsing for `_nexus._tcp`.

`nexus-server --announce` publishes its address, port and, with TLS, the
SHA-256 fingerprint of its certificate in the TXT record (`fp`). The client
lists what answers within a moment and connects to the one chosen. With
TLS it then accepts only the announced certificate (`AnnouncedTLS`), and
still pins it in known_hosts: an announcement is not signed, so a later,
different certificate for the same server is refused as ssh would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nexus.client.tls import CertificateChanged, ClientTLS, fingerprint, host_key, pretty

SERVICE = "_nexus._tcp.local."
BROWSE_SECONDS = 1.5  # answers arrive within ~100 ms on a LAN; slow Wi-Fi gets the rest
RESOLVE_MS = 1500


@dataclass(frozen=True, slots=True)
class Found:
    """One announced server."""

    name: str  # the instance name, e.g. "nexus on build-box"
    host: str  # an address to connect to
    port: int
    version: str
    fingerprint: str | None  # SHA-256 hex of the certificate: TLS is on

    def describe(self) -> str:
        tls = "TLS" if self.fingerprint else "no TLS"
        return f"{self.name}  {self.host}:{self.port}  ({tls}, nexus {self.version})"


def _text(properties: dict[bytes, bytes | None], key: bytes) -> str:
    value = properties.get(key)
    return value.decode("utf-8", "replace") if value else ""


async def browse(seconds: float = BROWSE_SECONDS) -> list[Found]:
    """The servers that answer within `seconds`, sorted by name."""
    from zeroconf import IPVersion, ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    names: set[str] = set()

    def seen(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            names.add(name)

    found = []
    aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    try:
        browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE], handlers=[seen])
        await asyncio.sleep(seconds)
        await browser.async_cancel()
        for name in sorted(names):
            info = AsyncServiceInfo(SERVICE, name)
            if not await info.async_request(aiozc.zeroconf, RESOLVE_MS):
                continue
            addresses = info.parsed_addresses()
            if not addresses or info.port is None:
                continue
            digest = _text(info.properties, b"fp").lower() or None
            instance = name[: -len(SERVICE) - 1] if name.endswith("." + SERVICE) else name
            version = _text(info.properties, b"version")
            found.append(Found(instance, addresses[0], info.port, version, digest))
    finally:
        await aiozc.async_close()
    return found


class AnnouncedTLS(ClientTLS):
    """Trust on first use, but only for the certificate the server announced."""

    def __init__(self, digest: str, known_hosts: Path | None = None) -> None:
        base = ClientTLS.trust_on_first_use(known_hosts)
        super().__init__(base.context, base.pins)
        self.announced = digest

    def check(self, host: str, port: int, der: bytes | None) -> str | None:
        if der and fingerprint(der) != self.announced:
            raise AnnouncementMismatch(host_key(host, port), self.announced, fingerprint(der))
        return super().check(host, port, der)


class AnnouncementMismatch(CertificateChanged):
    """The certificate presented is not the one announced: refused like a
    changed pin (retrying cannot help)."""

    def __init__(self, server: str, announced: str, presented: str) -> None:
        self.server, self.expected, self.presented = server, announced, presented
        Exception.__init__(self, self.report())

    def report(self) -> str:
        return "\n".join(
            [
                f"{self.server} presented a TLS certificate other than the one it announced:"
                " refusing to connect.",
                f"  announced: {pretty(self.expected)}",
                f"  presented: {pretty(self.presented)}",
            ]
        )


async def choose(
    servers: list[Found], ask: Callable[[str], Awaitable[str]], say: Callable[[str], None]
) -> Found | None:
    """Lists `servers` and returns the one picked (Enter picks the first); None if none."""
    if not servers:
        return None
    say("Nexus servers on this network:")
    for number, server in enumerate(servers, 1):
        say(f"  {number}. {server.describe()}")
    while True:
        answer = (await ask(f"Connect to which? [1-{len(servers)}, Enter for 1] ")).strip()
        if not answer:
            return servers[0]
        if answer.isdecimal() and 1 <= int(answer) <= len(servers):
            return servers[int(answer) - 1]
        say(f"Type a number from 1 to {len(servers)}.")
