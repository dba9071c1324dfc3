"""The client's settings: flags > environment (`NEXUS_CHAT_*`) > client.toml > defaults.

`$XDG_CONFIG_HOME/nexus/client.toml` (`~/.config/nexus/client.toml`):

    server = "chat.example.org"   # HOST when none is given; a cluster's nodes,
                                  # tried in order: ["a.example", "b.example:9998"]
    port = 9999
    user = "ana"
    tls = true                    # or tls_ca = "/etc/ssl/our-ca.pem"
    timestamp_format = "%H:%M"
    highlight = ["ana", "deploy"] # words that count as a mention
    previews = true               # pictures of shared images under their messages
    typing = true                 # tell the others when you are typing to them
    [notifications]
    bell = true                   # ring the terminal bell on a mention or DM
    desktop = true                # a desktop notification through the terminal
    command = ["notify-send", "Nexus"]  # or run this, with the text appended

Every mode (the full-screen client, `send`, `tail`, `login`) reads the
connection settings here; the full-screen client also takes the time
format, the highlight words, the previews of images, whether to say when
you type, and the notifications (nexus/client/notify.py).

Unknown keys and wrong types are refused with the key's name: a typo must
not silently fall back to a default.
"""

from __future__ import annotations

import os
import ssl
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus.client.servers import Server, parse_servers
from nexus.client.tls import ClientTLS

DEFAULT_PORT = 9999
ENV_PREFIX = "NEXUS_CHAT_"
PRECEDENCE = (
    "Settings come from flags, then NEXUS_CHAT_SERVER, NEXUS_CHAT_PORT, NEXUS_CHAT_USER, "
    "NEXUS_CHAT_TLS (on/off), NEXUS_CHAT_TLS_CA, then $XDG_CONFIG_HOME/nexus/client.toml "
    "(~/.config/nexus/client.toml: server, port, user, tls, tls_ca, timestamp_format, "
    "highlight, previews, typing, [notifications]), then the defaults."
)


class ConfigError(Exception):
    """A setting that cannot be used; the message names it."""


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/nexus`, or `~/.config/nexus`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nexus"


def ensure_private_dir(path: Path) -> Path:
    """Creates `path` (and missing parents) with the last level 0700: it holds secrets."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class Notifications:
    bell: bool = True
    desktop: bool = True
    command: tuple[str, ...] = ()  # argv; the notification's text is appended


@dataclass(frozen=True, slots=True)
class ClientConfig:
    server: str | None = None  # None: not chosen (the full-screen client then looks on the LAN)
    port: int = DEFAULT_PORT
    user: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    timestamp_format: str = "%H:%M"
    highlight: tuple[str, ...] = ()
    previews: bool = True
    typing: bool = True  # send `typing` while composing (protocol 3)
    notifications: Notifications = field(default_factory=Notifications)
    path: Path | None = None  # the file read, if any

    def servers(self) -> list[Server]:
        """The servers to try, in order (localhost when none is set)."""
        try:
            return parse_servers(self.server or "localhost", self.port)
        except ValueError as exc:
            raise ConfigError(f"'server': {exc}") from None

    def tls_settings(self) -> ClientTLS | None:
        """The TLS the settings ask for (a CA bundle, or trust on first use), or None."""
        if self.tls_ca is not None:
            try:
                return ClientTLS.with_ca(self.tls_ca)
            except ssl.SSLError as exc:
                reason = (exc.reason or str(exc)).replace("_", " ").lower()
                raise ConfigError(f"cannot use {self.tls_ca} as a CA bundle: {reason}") from None
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise ConfigError(f"cannot use {self.tls_ca} as a CA bundle: {reason}") from None
        return ClientTLS.trust_on_first_use() if self.tls else None


# -- the file ------------------------------------------------------------


def _port(value: Any, key: str) -> int:
    if isinstance(value, str) and value.isdecimal():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{key!r} must be a TCP port (1-65535), not {value!r}")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key!r} must be a non-empty string, not {value!r}")
    return value


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
    if not isinstance(value, bool):
        raise ConfigError(f"{key!r} must be true or false (on/off), not {value!r}")
    return value


def _words(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise ConfigError(f"{key!r} must be a list of non-empty strings, not {value!r}")
    return tuple(value)


def _timestamp(value: Any, key: str) -> str:
    text = _text(value, key)
    try:
        time.strftime(text)
    except ValueError as exc:
        raise ConfigError(f"{key!r} is not a strftime format: {exc}") from None
    return text


def _command(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return _words(value, key)


_NOTIFICATION_KEYS = {"bell": _flag, "desktop": _flag, "command": _command}


def _notifications(value: Any, key: str) -> Notifications:
    if not isinstance(value, dict):
        raise ConfigError(f"{key!r} must be a table ([notifications])")
    checked: dict[str, Any] = {}
    for name, raw in value.items():
        check = _NOTIFICATION_KEYS.get(name)
        if check is None:
            raise ConfigError(f"unknown key {key}.{name!r}")
        checked[name] = check(raw, f"{key}.{name}")
    return Notifications(**checked)


def _servers(value: Any, key: str) -> str:
    """One server, several comma-separated, or a list of them: kept as the one text
    the command line and $NEXUS_CHAT_SERVER give, so every source reads alike."""
    text = ",".join(_words(value, key)) if isinstance(value, list) else _text(value, key)
    try:
        parse_servers(text, DEFAULT_PORT)
    except ValueError as exc:
        raise ConfigError(f"{key!r}: {exc}") from None
    return text


_FILE_KEYS = {
    "server": _servers,
    "port": _port,
    "user": _text,
    "tls": _flag,
    "tls_ca": lambda value, key: Path(_text(value, key)).expanduser(),
    "timestamp_format": _timestamp,
    "highlight": _words,
    "previews": _flag,
    "typing": _flag,
    "notifications": _notifications,
}
_ENV_KEYS = ("server", "port", "user", "tls", "tls_ca")


def read_file(path: Path) -> dict[str, Any]:
    """The checked settings in `path`, or nothing if it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    settings = {}
    for key, value in document.items():
        check = _FILE_KEYS.get(key)
        if check is None:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(_FILE_KEYS)})")
        try:
            settings[key] = check(value, key)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return settings


def resolve(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> ClientConfig:
    """Flags (None where not given) > NEXUS_CHAT_* > client.toml > defaults."""
    env = os.environ if environ is None else environ
    path = path or config_dir(env) / "client.toml"
    settings = read_file(path)
    for key in _ENV_KEYS:
        name = ENV_PREFIX + key.upper()
        if (raw := env.get(name)) is not None:
            try:
                settings[key] = _FILE_KEYS[key](raw, key)
            except ConfigError as exc:
                raise ConfigError(f"${name}: {exc}") from None
    settings.update((key, value) for key, value in flags.items() if value is not None)
    if flags.get("tls") is False:  # --no-tls turns off a CA bundle from the file too
        settings.pop("tls_ca", None)
    if settings.get("tls_ca") is not None:
        settings["tls_ca"] = Path(settings["tls_ca"])
    return ClientConfig(**settings, path=path if path.exists() else None)
