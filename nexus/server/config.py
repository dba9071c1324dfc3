"""Server settings: each named once, with its default, its flag and what it protects.

Precedence: command-line flags > environment (`NEXUS_<NAME>`) > the TOML
file given with `--config` (or `$NEXUS_CONFIG`) > defaults. The command
line is built from this table, so a new setting gets its flag, its
environment variable and its key in the file (the flag's name, `port`,
`max-outbound`; `max_outbound` is accepted too) by being declared here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from nexus.protocol import DEFAULT_ROOMS, MAX_FRAME, PASSWORD_MAX, PASSWORD_MIN, ROOM_RE
from nexus.server.auth import OWASP


def setting(default: Any, help: str, kind: type | None = None, **kwargs: Any) -> Any:
    """A setting with a command-line flag: `help` says what it is for; `kind`
    is its type when the default (None) does not say."""
    metadata = {"help": help} if kind is None else {"help": help, "kind": kind}
    return field(default=default, metadata=metadata, **kwargs)


@dataclass(slots=True)
class ServerConfig:
    host: str = setting("0.0.0.0", "address to listen on")
    port: int = setting(9999, "port to listen on, 0 for any free port")
    store: str = setting(
        "json",
        "storage engine: json (a snapshot and a journal, recent history in memory), sqlite"
        " (every message kept on disk, searched with FTS5) or postgresql (every message in a"
        " PostgreSQL database, --database)",
    )
    data: Path = setting(
        Path("nexus_data.json"),
        "the store's file: ./nexus_data.json (its journal is FILE.journal), or ./nexus_data.db"
        " with --store sqlite (with postgresql: where uploaded files and the certificate go)",
    )
    database: str = setting(
        "", "the PostgreSQL database of --store postgresql: postgresql://USER@HOST:PORT/NAME"
    )
    bus: str = setting(
        "",
        "with --store postgresql, run as one node of several on that database: redis://HOST:PORT"
        " tells the nodes of each other's changes (docs/cluster.md)",
    )
    node: str = setting("", "this node's name in the database's changes (default: host:port)")
    history_limit: int = setting(
        500, "messages the json engine keeps a room (sqlite: those it keeps in memory)"
    )
    dm_history_limit: int = setting(
        200, "messages the json engine keeps a DM conversation (sqlite: in memory)"
    )
    retention_days: int = setting(
        0, "sqlite: delete messages older than this many days (0: keep every message)"
    )
    log: Path = setting(
        Path("nexus_server.log"),
        "log file; - for standard error (systemd, containers); reopened on SIGHUP",
    )
    motd: str = setting("Welcome to Nexus.", "message of the day sent to every client")
    fsync: bool = setting(False, "fsync each group of writes: survive power loss, not just crashes")
    tls_cert: Path | None = setting(None, "serve TLS with this certificate (PEM)")
    tls_key: Path | None = setting(None, "private key for --tls-cert (PEM)")
    tls: bool = setting(
        False, "serve TLS; without --tls-cert, use a self-signed certificate kept beside the data"
    )
    announce: bool = setting(
        False,
        "announce the server on the LAN over mDNS/DNS-SD (_nexus._tcp), with the TLS"
        " certificate's fingerprint when TLS is on",
    )
    announce_name: str = setting("", "the name to announce (default: nexus on <this host's name>)")
    admin: tuple[str, ...] = setting(
        (),
        "make this existing account a server admin at start; repeatable"
        ' (NEXUS_ADMIN=ana,bob; in the file: admin = ["ana", "bob"])',
    )

    web_port: int | None = setting(
        None,
        "serve the web client and its WebSocket endpoint on this port (0: any free port)",
        kind=int,
    )
    web_host: str = setting("", "address the web client listens on (default: --host)")
    web_origins: str = setting(
        "",
        "other origins whose pages may open /ws, comma-separated (scheme://host:port, or *);"
        " their hosts are also names the web port answers to (a reverse proxy's public"
        " name); the web client's own origin is always allowed",
    )
    max_upload: int = setting(
        25 * 1024 * 1024, "bytes a file uploaded to the web port may have (413 above)"
    )
    upload_quota: int = setting(
        1024 * 1024 * 1024, "bytes of files one account may keep uploaded (413 above)"
    )
    public_url: str = setting(
        "",
        "the web port's address as users reach it (https://chat.example.org behind a reverse"
        " proxy): files' links start with it; default: the address each connection came to",
    )
    irc_port: int | None = setting(
        None, "also speak IRC to IRC clients on this port (0: any free port)", kind=int
    )
    ircs_port: int | None = setting(
        None,
        "also speak IRC over TLS on this port, with the server's certificate (0: any free port)",
        kind=int,
    )

    irc_guests: bool = setting(
        False,
        "let IRC clients that send only NICK/USER in as guests: a user by that nick (if no"
        " account has it) until it disconnects, never stored; channels guests create go when"
        " they empty",
    )
    irc_history_lines: int = setting(
        20,
        "lines of a channel's history an IRC client is shown when it joins, unless it fetches"
        " history itself (draft/chathistory); 0: none",
    )
    irc_server_name: str = setting(
        "nexus", "the server's name in IRC lines (001-004, PONG, WHO, WHOIS), e.g. irc.example.org"
    )
    default_rooms: tuple[str, ...] = setting(
        DEFAULT_ROOMS,
        "the rooms a new store starts with, which nobody owns or deletes; a new account joins"
        " the first; comma-separated or repeated, empty for none",
    )
    password_min_length: int = setting(
        PASSWORD_MIN, "the shortest password an account may have, at registration and on a change"
    )

    max_frame: int = setting(MAX_FRAME, "bytes a frame may have: bounds a peer's input buffer")
    max_outbound: int = setting(
        1024 * 1024,
        "unsent bytes past which a connection counts as behind: it must then keep"
        " reading, and its own requests wait until it does",
    )
    max_outbound_hard: int = setting(
        64 * 1024 * 1024,
        "unsent bytes past which a connection is dropped at once: bounds what one reader"
        " can make the server hold",
    )
    slow_reader_timeout: float = setting(
        10.0,
        "seconds a connection may stay behind while reading less than --max-outbound"
        " bytes before it is dropped, so a stalled reader cannot hold memory",
    )
    rate_limit: bool = setting(
        True, "flood control for messages and room changes (off for benchmarks and bots)"
    )
    message_burst: int = setting(
        30, "messages and room changes a user may make at once before the rate applies"
    )
    message_rate: float = setting(10.0, "messages and room changes a user may make each second")
    login_attempts_per_minute: int = setting(
        5, "failed logins a minute per address and per account"
    )
    registrations_per_hour: int = setting(
        20,
        "accounts one address may register an hour, at once or spread out (0: no limit);"
        " behind a proxy every user shares its address",
    )
    rooms_per_user: int = setting(
        50, "rooms one user may own at once; admins are exempt (0: no limit)"
    )
    login_timeout: float = setting(30.0, "seconds an anonymous connection gets to log in")
    login_frames: int = setting(64, "frames an anonymous connection may send before logging in")
    max_connections_per_ip: int = setting(64, "connections one address may hold (loopback too)")
    proxy_from: tuple[str, ...] = setting(
        (),
        "addresses of load balancers (CIDR, comma-separated or repeated) whose connections begin"
        " with a PROXY protocol header (HAProxy's send-proxy) naming the client, whose address"
        " then counts for caps, login throttling and flood control; not with TLS (terminate it"
        " at the balancer)",
    )
    keepalive_idle: int = setting(
        60, "seconds of silence before TCP keepalive probes a peer (drops half-open connections)"
    )
    keepalive_interval: int = setting(10, "seconds between keepalive probes")
    keepalive_count: int = setting(3, "unanswered probes before the connection is dropped")
    # argon2id cost; tests lower it, a server never should, so it has no flag.
    password_params: dict[str, int] = field(default_factory=lambda: dict(OWASP))

    def __setattr__(self, name: str, value: Any) -> None:
        # Settings checked, and put in one form, wherever they come from.
        if name == "password_min_length" and not 1 <= value <= PASSWORD_MAX:
            raise ValueError(f"--password-min-length: 1-{PASSWORD_MAX}, not {value}")
        if name == "default_rooms":
            value = room_names(value)
        elif name == "proxy_from":
            value = proxy_networks(value)
        elif name == "irc_server_name" and not _SERVER_NAME_RE.fullmatch(value):
            raise ValueError(f"--irc-server-name: {value!r} is not nexus or a host name")
        object.__setattr__(self, name, value)

    @classmethod
    def from_env(
        cls,
        environ: dict[str, str] | None = None,
        file: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> ServerConfig:
        """Defaults, overridden by `file` (from read_file), then by NEXUS_* variables,
        then by `overrides` (not None)."""
        env = os.environ if environ is None else environ
        config = cls(**(file or {}))
        data_given = (
            "data" in (file or {}) or "NEXUS_DATA" in env or overrides.get("data") is not None
        )
        for f in settings():
            name = "NEXUS_" + f.name.upper()
            if (raw := env.get(name)) is not None:
                try:
                    setattr(config, f.name, parse_value(f, raw))
                except ValueError as exc:
                    raise ValueError(f"${name}: {exc}") from None
        for name, value in overrides.items():
            if value is not None:
                setattr(config, name, value)
        if config.store not in ENGINES:
            raise ValueError(f"--store: {config.store!r} is not one of {', '.join(ENGINES)}")
        if not data_given:
            config.data = ENGINES[config.store]
        if config.store == "postgresql" and not config.database:
            raise ValueError("--store postgresql needs --database postgresql://...")
        if config.bus and config.store != "postgresql":
            raise ValueError("--bus: the nodes of a cluster share --store postgresql")
        if config.bus and not config.bus.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"--bus: {config.bus!r} is not a redis:// address")
        if config.proxy_from and (config.tls or config.tls_cert or config.ircs_port is not None):
            raise ValueError(
                "--proxy-from: not with TLS (--tls, --ircs-port): terminate TLS at the balancer"
            )
        return config


# An IRC server's name: a host name (a dot keeps it apart from every nick), or nexus.
_SERVER_NAME_RE = re.compile(r"nexus|(?=.{1,63}$)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def proxy_networks(items: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """--proxy-from's networks, several to an item with commas, each in its
    canonical form (a bare address is a /32 or /128); ValueError for others."""
    found: list[str] = []
    for item in items:
        for part in filter(None, (part.strip() for part in item.split(","))):
            try:
                network = str(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"--proxy-from: {part!r} is not an address or network") from None
            if network not in found:
                found.append(network)
    return tuple(found)


def room_names(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """--default-rooms' rooms: names with or without `#`, in any case, several
    to an item with commas, each once; ValueError for anything else."""
    rooms: list[str] = []
    for item in names:
        for part in item.split(","):
            name = part.strip().removeprefix("#").lower()
            if name and not ROOM_RE.fullmatch(name):
                raise ValueError(f"--default-rooms: {part.strip()!r} is not a room name")
            if name and name not in rooms:
                rooms.append(name)
    return tuple(rooms)


# Each engine and its default data file.
ENGINES = {
    "json": Path("nexus_data.json"),
    "sqlite": Path("nexus_data.db"),
    # The store is the database (--database); the file names where files and
    # the self-signed certificate live.
    "postgresql": Path("nexus_data.pg"),
}


def settings() -> list[Any]:
    """The settings that have a flag and an environment variable."""
    return [f for f in fields(ServerConfig) if "help" in f.metadata]


def value_type(f: Any) -> type:
    """The type a setting's text is converted to."""
    default = f.default
    if default is None:
        return f.metadata.get("kind", Path)  # the optional settings are files unless told
    return type(default) if not isinstance(default, Path) else Path


def parse_value(f: Any, raw: str) -> Any:
    kind = value_type(f)
    if kind is bool:
        return parse_bool(raw)
    if kind is tuple:  # a list of names: "ana,bob"
        return tuple(name.strip() for name in raw.split(",") if name.strip())
    return kind(raw)


CONFIG_ENV = "NEXUS_CONFIG"  # the TOML file, when --config is not given


def load(
    config_file: Path | None, environ: dict[str, str] | None = None, **flags: Any
) -> ServerConfig:
    """Flags (None where not given) > NEXUS_* > the TOML file > defaults.
    Raises ValueError naming the file, variable or key at fault."""
    env = os.environ if environ is None else environ
    if config_file is None and env.get(CONFIG_ENV):
        config_file = Path(env[CONFIG_ENV])
    file = read_file(config_file) if config_file is not None else {}
    return ServerConfig.from_env(dict(env), file=file, **flags)


def read_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML file, checked; ValueError names the file and the key."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    known = {f.name: f for f in settings()}
    values = {}
    for key, value in document.items():
        f = known.get(key.replace("-", "_"))
        if f is None:
            raise ValueError(f"{path}: unknown setting {key!r} (see nexus-server --help)")
        try:
            values[f.name] = _file_value(f, value)
        except ValueError as exc:
            raise ValueError(f"{path}: {key!r}: {exc}") from None
    return values


def _file_value(f: Any, value: Any) -> Any:
    """A TOML value as the setting's type: text is parsed as from the environment."""
    kind = value_type(f)
    if isinstance(value, str):
        return parse_value(f, value)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    expected = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        tuple: "a list of strings",
    }.get(kind, "a string")
    raise ValueError(f"must be {expected}, not {value!r}")


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not on/off: {raw!r}")
