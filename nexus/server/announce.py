"""`--announce`: the server published on the LAN over mDNS/DNS-SD as `_nexus._tcp`.

The TXT record carries `version`, `protocol`, `tls` (1 or 0) and, with TLS,
`fp`: the SHA-256 of the certificate (DER), the same hex that clients pin
in known_hosts, so a client that finds the server this way can check the
certificate from its very first connection (nexus/client/discovery.py).

Publishing uses the `zeroconf` package (pure Python, no Avahi daemon
needed); it answers queries on every IPv4 interface. A failure to announce
is logged and the server goes on serving.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import ssl
from typing import Any

from nexus import __version__
from nexus.server.config import ServerConfig
from nexus.server.tls import certificate_files

log = logging.getLogger("nexus.announce")

SERVICE = "_nexus._tcp.local."
MAX_INSTANCE = 63  # bytes in one DNS label


# The first certificate in a PEM file: the server's own, ahead of any chain
# (and wherever a key kept in the same file is).
_FIRST_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def certificate_fingerprint(config: ServerConfig) -> str | None:
    """SHA-256 hex of the served certificate (DER), or None without TLS."""
    files = certificate_files(config)
    if files is None:
        return None
    found = _FIRST_CERTIFICATE.search(files[0].read_text(encoding="ascii", errors="replace"))
    if found is None:
        raise ssl.SSLError(f"{files[0]}: no certificate in it")
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(found.group())).hexdigest()


def addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce: the listening one, or every non-loopback one."""
    if host not in ("", "0.0.0.0"):
        return [host]
    import ifaddr

    found = [
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    return found or ["127.0.0.1"]


def instance_name(config: ServerConfig) -> str:
    name = config.announce_name or f"nexus on {socket.gethostname()}"
    return name.encode("utf-8")[:MAX_INSTANCE].decode("utf-8", "ignore")


class Announcer:
    """A published service; `await Announcer.start(...)`, then `await stop()`."""

    def __init__(self, zeroconf: Any, info: Any) -> None:
        self._zeroconf = zeroconf
        self._info = info

    @property
    def name(self) -> str:
        return str(self._info.name)

    @classmethod
    async def start(cls, config: ServerConfig, host: str, port: int) -> Announcer | None:
        """Publishes the server; None (and a log line) if that failed."""
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        digest = certificate_fingerprint(config)
        properties = {"version": __version__, "protocol": "1", "tls": "1" if digest else "0"}
        if digest:
            properties["fp"] = digest
        hostname = socket.gethostname().split(".")[0] or "nexus"
        info = AsyncServiceInfo(
            SERVICE,
            f"{instance_name(config)}.{SERVICE}",
            port=port,
            parsed_addresses=addresses(host),
            properties=properties,
            server=f"{hostname}.local.",
        )
        zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        try:
            # Returns once probing is scheduled; the awaitable it gives ends once announced.
            await (await zeroconf.async_register_service(info, allow_name_change=True))
        except Exception as exc:  # any failure: serve anyway, and say why
            log.error("could not announce on the LAN: %s", exc)
            await zeroconf.async_close()
            return None
        log.info("announced as %r on %s", info.name, ", ".join(info.parsed_addresses()))
        return cls(zeroconf, info)

    async def stop(self) -> None:
        """Says goodbye (clients drop the entry at once) and closes the sockets."""
        try:
            await (await self._zeroconf.async_unregister_service(self._info))
        finally:
            await self._zeroconf.async_close()
