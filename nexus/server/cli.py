"""`nexus-server`: settings, logging, signals, and the serve-until-stopped loop.

`nexus-server check|backup|export|migrate` look after the store instead (maintenance.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import ssl
import sys
from pathlib import Path

from nexus import __version__
from nexus.server.config import CONFIG_ENV, ServerConfig, load, parse_bool, settings, value_type
from nexus.server.server import NexusServer
from nexus.server.store import DamagedStore, StoreError

log = logging.getLogger("nexus.server")
DATA_DIR_MODE = 0o700  # the data files hold password hashes and every DM
MAINTENANCE = ("check", "backup", "export", "migrate")  # maintenance.py's commands


def build_parser() -> argparse.ArgumentParser:
    """One flag per setting in ServerConfig, with its default and purpose."""
    parser = argparse.ArgumentParser(
        prog="nexus-server",
        description="Run a Nexus chat server. Settings come from flags, then NEXUS_<NAME> "
        "variables (e.g. NEXUS_PORT=7000), then the TOML file given with --config or "
        f"${CONFIG_ENV} (keys named like the flags: port = 7000, max-outbound = 2097152), "
        "then the defaults shown here.",
        epilog="Store maintenance, safe while the server runs: nexus-server check | "
        "backup DEST | export; from one engine to another: nexus-server migrate SRC DEST "
        "(see nexus-server check --help).",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="read settings from FILE")
    defaults = ServerConfig()
    for f in settings():
        flag = "--" + f.name.replace("_", "-")
        kind = value_type(f)
        default = getattr(defaults, f.name)
        shown = {True: "on", False: "off"}.get(default, default) if kind is bool else default
        help_text = f"{f.metadata['help']} (default: {shown})"
        if kind is bool:
            parser.add_argument(
                flag, type=parse_bool, nargs="?", const=True, metavar="on|off", help=help_text
            )
        elif kind is tuple:  # repeatable; collected into a tuple below
            parser.add_argument(flag, action="append", metavar="NAME", help=help_text)
        else:
            parser.add_argument(
                flag, type=kind, metavar=f.name.split("_")[-1].upper(), help=help_text
            )
    parser.add_argument("--version", action="version", version=f"nexus-server {__version__}")
    return parser


class ReopeningFileHandler(logging.FileHandler):
    """A log file reopened on SIGHUP, so logrotate can move it away (no copytruncate)."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def configure_logging(path: Path) -> logging.Handler:
    """Logs to `path`, or to standard error for `-`; returns the handler."""
    handler: logging.Handler
    if str(path) == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = ReopeningFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("nexus", "asyncio"):  # asyncio reports errors in protocol callbacks
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO if name == "nexus" else logging.WARNING)
        logger.addHandler(handler)
    return handler


def reopen_log(handler: logging.Handler) -> None:
    if isinstance(handler, ReopeningFileHandler):
        handler.reopen()
        log.info("log reopened")


async def serve(config: ServerConfig, handler: logging.Handler | None = None) -> None:
    server = await NexusServer.start(config)
    # The loaded store lives as long as the process: frozen, it is no longer
    # rescanned by every full collection (DM p99 at 20k/s: 13.9 -> 3.0 ms).
    gc.freeze()
    host, port = server.address
    scheme = "tls" if server.tls else "tcp"
    log.info("listening on %s:%d (%s), data in %s", host, port, scheme, config.data)
    announcer = None
    if config.announce:
        from nexus.server.announce import Announcer

        announcer = await Announcer.start(config, host, port)
        if announcer is None:
            print("nexus-server: could not announce on the LAN (see the log)", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if handler is not None:
        loop.add_signal_handler(signal.SIGHUP, reopen_log, handler)
    irc = ""
    for name in server.irc:  # on the same line: whoever waits reads one line
        irc_host, irc_port = server.irc_address(name)
        log.info("%s listening on %s:%d", name.upper(), irc_host, irc_port)
        irc += f", {name.upper()} on {irc_host}:{irc_port}"
    # Only now: whoever waits for this line may signal the server at once.
    print(f"nexus-server {__version__} listening on {host}:{port} ({scheme}){irc}", flush=True)
    if server.web_address is not None:
        web_host, web_port = server.web_address
        url = f"{'https' if server.tls else 'http'}://{web_host}:{web_port}/"
        log.info("web client on %s", url)
        print(f"nexus-server web client on {url}", flush=True)
    await stop.wait()
    log.info("shutting down")
    if announcer is not None:
        await announcer.stop()
    await server.stop()
    log.info("stopped")


def prepare_data_dir(data: Path) -> None:
    """Creates the data file's directory, readable by the server's user only."""
    directory = data.resolve().parent
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=DATA_DIR_MODE)
        directory.chmod(DATA_DIR_MODE)  # whatever the umask


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MAINTENANCE:
        from nexus.server import maintenance  # with psycopg: only for these

        return maintenance.main(argv)
    args = build_parser().parse_args(argv)
    try:
        flags = {f.name: getattr(args, f.name) for f in settings()}
        flags = {k: tuple(v) if isinstance(v, list) else v for k, v in flags.items()}
        config = load(args.config, **flags)
    except ValueError as exc:
        print(f"nexus-server: bad setting: {exc}", file=sys.stderr)
        return 2
    try:
        prepare_data_dir(config.data)
        handler = configure_logging(config.log)
    except OSError as exc:
        print(f"nexus-server: cannot start: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(config, handler))
    except DamagedStore as exc:
        log.error("refusing to start: %s", exc)
        print(f"nexus-server: refusing to start: {exc}", file=sys.stderr)
        return 2
    except (OSError, ssl.SSLError) as exc:
        log.error("cannot start: %s", exc)
        print(f"nexus-server: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except StoreError as exc:  # a database that cannot be reached
        log.error("cannot start: %s", exc)
        print(f"nexus-server: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
