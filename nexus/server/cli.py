"""`nexus-server`: flags, logging, signals, and the serve-until-stopped loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from nexus import __version__
from nexus.server.config import ServerConfig
from nexus.server.server import NexusServer
from nexus.server.store import DamagedStore

log = logging.getLogger("nexus.server")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nexus-server",
        description="Run a Nexus chat server. Flags override NEXUS_* environment variables.",
    )
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on, 0 for any (default 9999)")
    parser.add_argument("--data", type=Path, help="store file (default ./nexus_data.json)")
    parser.add_argument("--log", type=Path, help="log file (default ./nexus_server.log)")
    parser.add_argument("--motd", help="message of the day sent to every client")
    parser.add_argument(
        "--fsync",
        action="store_true",
        default=None,
        help="fsync every group of writes: survive power loss, not just crashes",
    )
    parser.add_argument(
        "--rate-limit",
        choices=("on", "off"),
        help="flood control for say and dm (default on; off for benchmarks and trusted bots)",
    )
    parser.add_argument("--version", action="version", version=f"nexus-server {__version__}")
    return parser.parse_args(argv)


def configure_logging(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("nexus")
    root.setLevel(logging.INFO)
    root.addHandler(handler)


async def serve(config: ServerConfig) -> None:
    server = await NexusServer.start(config)
    host, port = server.address
    log.info("listening on %s:%d, data in %s", host, port, config.data)
    print(f"nexus-server {__version__} listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rate_limit = None if args.rate_limit is None else args.rate_limit == "on"
    config = ServerConfig.from_env(
        host=args.host,
        port=args.port,
        data=args.data,
        log=args.log,
        motd=args.motd,
        fsync=args.fsync,
        rate_limit=rate_limit,
    )
    try:
        configure_logging(config.log)
    except OSError as exc:
        print(f"nexus-server: cannot open log {config.log}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(config))
    except DamagedStore as exc:
        log.error("refusing to start: %s", exc)
        print(f"nexus-server: refusing to start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        print(f"nexus-server: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
