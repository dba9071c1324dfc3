"""Server settings: each limit named once, with what it protects.

Precedence: command-line flags > environment (`NEXUS_<NAME>`) > defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from nexus.protocol import MAX_FRAME
from nexus.server.auth import OWASP


@dataclass(slots=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 9999
    data: Path = Path("nexus_data.json")
    log: Path = Path("nexus_server.log")
    motd: str = "Welcome to Nexus."
    # fsync each group of journal writes: survives power loss, not just crashes.
    fsync: bool = False

    # Bounds what one peer can make the server buffer for it.
    max_frame: int = MAX_FRAME
    # Unsent bytes a session may fall behind before it is disconnected, so a
    # reader that stalls cannot hold the server's memory or slow its room.
    max_outbound: int = 1024 * 1024
    # Flood control for `say` and `dm`, per user: a burst, then a steady rate.
    rate_limit: bool = True
    message_burst: int = 30
    message_rate: float = 10.0
    # Password guessing: attempts a minute, per connection and per account.
    login_attempts_per_minute: int = 5
    # An anonymous connection gets this long and this many frames to log in.
    login_timeout: float = 30.0
    login_frames: int = 64
    # Connections one address may hold (loopback included).
    max_connections_per_ip: int = 64
    # TCP keepalive: a half-open peer is found and dropped after about
    # idle + interval * count seconds of silence.
    keepalive_idle: int = 60
    keepalive_interval: int = 10
    keepalive_count: int = 3
    # argon2id cost; tests lower it, the server never should.
    password_params: dict[str, int] = field(default_factory=lambda: dict(OWASP))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> ServerConfig:
        """Defaults, overridden by NEXUS_* variables, overridden by `overrides`."""
        environ = os.environ if environ is None else environ
        config = cls()
        for f in fields(cls):
            raw = environ.get("NEXUS_" + f.name.upper())
            if raw is not None and f.name != "password_params":
                setattr(config, f.name, _convert(getattr(config, f.name), raw))
        for name, value in overrides.items():
            if value is not None:
                setattr(config, name, value)
        return config


def _convert(current: object, raw: str) -> object:
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, Path):
        return Path(raw)
    return type(current)(raw)
