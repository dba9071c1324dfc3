"""`nexus-chat send`, `tail`, `login` and `ping`: the client for scripts, cron and bots.

No screen and no terminal: output is plain lines (or JSON with `--json`),
errors are one line on stderr, and the exit status says what happened:
0 when everything asked for was done (every message acknowledged), 1 when
something was not (the reason on stderr), 2 for a usage or settings error.

Credentials, never from a flag: the password in `$NEXUS_PASSWORD` when it
is set, else the login token saved by `nexus-chat login` (tokens.py). A
password given is the one used, saved token or not, so a wrong one fails
instead of being passed over. Only `login` saves a token: a script that
logs in with a password leaves nothing behind to log in with later.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import orjson

from nexus.client.config import PRECEDENCE, ClientConfig, ConfigError, resolve
from nexus.client.connection import ChatConnection, ConnectionClosed
from nexus.client.follow import Follow
from nexus.client.render import attachment_row, clean
from nexus.client.servers import Server, first_answering
from nexus.client.session import BACKOFF, next_delay
from nexus.client.tls import CertificateChanged, ClientTLS, describe, host_key
from nexus.client.tokens import TokenStore
from nexus.client.transfer import Files, TransferError
from nexus.errors import NexusError
from nexus.protocol import FILES_MAX, DmEvent, Event, Hello, LoginReply, MessageEvent

PASSWORD_ENV = "NEXUS_PASSWORD"
MODES = ("send", "tail", "login", "ping")
RECONNECT_FOR = 60.0  # seconds tail, given several servers, tries them after losing one


class Failure(Exception):
    """Ends the program with exit status 1 and this message on stderr."""


class UsageError(Exception):
    """Ends the program with exit status 2 and this message on stderr."""


# -- command line ------------------------------------------------------------


def port_number(text: str) -> int:
    """A TCP port from the command line (argparse's `type`)."""
    if not text.isdecimal() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _seq(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a message number is a whole number from 1, not {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return int(text)


def add_server_flag(p: argparse.ArgumentParser) -> None:
    """--server, repeatable: the nodes of a cluster as one flag each, for those who
    would rather not join them with commas in HOST."""
    p.add_argument(
        "--server",
        action="append",
        metavar="HOST[:PORT]",
        help="a server to try, in the order given; repeat it, or separate several with "
        "commas (instead of HOST and PORT)",
    )


def server_setting(flags: list[str] | None, host: str | None) -> str | None:
    """The server setting the command line gives: HOST, or the --server flags joined."""
    if flags and host is not None:
        raise UsageError(f"give the servers either as HOST or with --server, not both ({host})")
    return ",".join(flags) if flags else host


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    """--server, --user, --tls/--no-tls, --tls-ca: the settings every mode shares."""
    add_server_flag(p)
    p.add_argument("--user", metavar="NAME", help="the account to use")
    p.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="connect with TLS, pinning the certificate on first use in "
        "$XDG_CONFIG_HOME/nexus/known_hosts",
    )
    p.add_argument("--tls-ca", metavar="FILE", help="verify the server against this CA bundle")


CREDENTIALS = (
    f"Credentials: ${PASSWORD_ENV} if set (used even when a token is saved, and never "
    "saved), else the token saved by `nexus-chat login`; there is no password flag. "
    "HOST (or --server) may name several servers, HOST[:PORT],HOST[:PORT]: the first that "
    "answers is used."
)


def parser(mode: str) -> argparse.ArgumentParser:
    """The command line of one mode (`nexus-chat MODE ...`)."""
    p = argparse.ArgumentParser(prog=f"nexus-chat {mode}", epilog=f"{CREDENTIALS} {PRECEDENCE}")
    p.set_defaults(mode=mode)
    if mode == "send":
        p.description = (
            "Send TEXT, or each non-blank line of standard input as one message. Exits 0 only "
            "once every message is acknowledged (1 otherwise, 2 for usage); waits out flood "
            "control. With a server set in client.toml or $NEXUS_CHAT_SERVER, a lone "
            "positional is the TEXT."
        )
        p.add_argument("args", nargs="*", metavar="[HOST [PORT]] [TEXT]")
        p.add_argument(
            "--file",
            action="append",
            metavar="PATH",
            help=f"upload PATH and send it (repeat for up to {FILES_MAX}), in one message with "
            "TEXT if given; standard input is not read then",
        )
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--room", metavar="ROOM", help="send to this room (joined if need be)")
        target.add_argument("--to", metavar="USER", help="send a direct message to USER")
        p.add_argument(
            "--plain",
            action="store_true",
            help="shown exactly as typed: ** ` > and the like are not formatting (logs, output)",
        )
        p.add_argument(
            "--thread",
            type=_seq,
            metavar="SEQ",
            help="reply in the thread of message SEQ of the room or conversation",
        )
        p.add_argument(
            "--broadcast",
            action="store_true",
            help="with --thread: show the reply in the room's timeline too",
        )
    elif mode == "tail":
        p.description = (
            "Print messages as they arrive: `#room nick: text` (`@peer nick: text` for direct "
            "messages; each file shared on an indented line after it), or one JSON object a "
            "line with --json. Exits 1 if the connection is lost; given several servers, it "
            "moves to the next that answers instead, printing first what it missed, and exits "
            "1 only once none has answered for a minute."
        )
        p.add_argument("args", nargs="*", metavar="[HOST [PORT]]")
        p.add_argument(
            "--room",
            action="append",
            metavar="ROOM",
            help="only this room (joined if need be); repeat for more. Without it: every room "
            "the account is in, and direct messages",
        )
        p.add_argument("--json", action="store_true", help="one JSON object (the event) a line")
        p.add_argument("--count", type=_count, metavar="N", help="exit after N messages")
    elif mode == "login":
        p.description = (
            "Log in (asking for the password if $NEXUS_PASSWORD is unset) and save the login "
            "token in $XDG_CONFIG_HOME/nexus/tokens.json (mode 0600) for send and tail. "
            "A token lapses after 30 days unused."
        )
        p.add_argument("args", nargs="*", metavar="[HOST [PORT]]")
        p.add_argument("--register", action="store_true", help="create the account first")
    else:
        p.description = (
            "Check that a server answers (for health checks; no account needed): connect, "
            "wait for its greeting, ping it, print the round trip. Exit 0 if it answered, 1 if not."
        )
        p.add_argument("args", nargs="*", metavar="[HOST [PORT]]")
    add_connection_flags(p)
    return p


def split_positionals(
    args: list[str], configured: bool, with_text: bool
) -> tuple[str | None, int | None, str | None]:
    """`[HOST [PORT]] [TEXT]` -> (host, port, text); a PORT is all digits.

    With a server configured, a lone positional of `send` is its TEXT.
    """
    host: str | None = None
    port: int | None = None
    text: str | None = None
    rest = list(args)
    lone = len(rest) == 1 and configured
    if with_text and (len(rest) == 3 or lone or (len(rest) == 2 and not rest[1].isdecimal())):
        text = rest.pop()
    if len(rest) > 2:
        raise UsageError(f"too many arguments: {' '.join(args)}")
    if rest:
        host = rest.pop(0)
    if rest:
        try:
            port = port_number(rest[0])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(str(exc)) from None
    return host, port, text


def settings(args: argparse.Namespace) -> tuple[ClientConfig, str | None]:
    """The resolved settings (flags > environment > file > defaults) and send's TEXT."""
    configured = bool(args.server) or resolve({}).server is not None
    host, port, text = split_positionals(args.args, configured, with_text=args.mode == "send")
    server = server_setting(args.server, host)
    flags = {"server": server, "port": port, "user": args.user, "tls": args.tls}
    flags["tls_ca"] = args.tls_ca
    config = resolve(flags)
    if config.user is None and args.mode != "ping":
        raise UsageError("no user: give --user NAME (or set user in client.toml)")
    return config, text


# -- connecting --------------------------------------------------------------


def connect_failure(exc: BaseException, host: str, port: int, tls: ClientTLS | None) -> str:
    """Why a connection attempt failed, in one line for people."""
    if isinstance(exc, ssl.SSLError):
        reason = describe(exc)
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or "timed out"
        if isinstance(exc, TimeoutError) and tls is None:
            reason += " (if the server uses TLS, add --tls)"
    return f"cannot connect to {host}:{port}: {reason}"


async def connect(config: ClientConfig, *, keep_events: bool) -> tuple[ChatConnection, Server]:
    """A connection to the first of the configured servers that answers, and which."""
    try:
        tls = config.tls_settings()
        servers = config.servers()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    conn, _, server = await open_first(servers, tls, keep_events=keep_events)
    return conn, server


class Unanswered(Failure):
    """No server answered (a certificate refused is a plain Failure: retrying cannot help)."""


async def open_first(
    servers: list[Server], tls: ClientTLS | None, *, keep_events: bool
) -> tuple[ChatConnection, Hello, Server]:
    """A connection to the first of `servers` that answers, its `hello`, and which
    server it is; Failure says why none did."""

    async def attempt(server: Server) -> tuple[ChatConnection, Hello]:
        conn = ChatConnection(keep_events=keep_events)
        try:
            return conn, await conn.connect(server.host, server.port, tls=tls)
        except BaseException:
            await conn.close()
            raise

    try:
        (conn, hello), server = await first_answering(servers, attempt)
    except CertificateChanged as exc:
        raise Failure(str(exc)) from None
    except (OSError, TimeoutError) as exc:
        last = servers[-1]
        reason = connect_failure(exc, last.host, last.port, tls)
        if len(servers) > 1:
            reason = f"none of {len(servers)} servers answered; {reason}"
        raise Unanswered(reason) from None
    if conn.tls_notice:
        print(f"nexus-chat: {conn.tls_notice}", file=sys.stderr)
    return conn, hello, server


def given_password() -> str | None:
    """The password in $NEXUS_PASSWORD; an empty one counts as unset, as at the prompts."""
    return os.environ.get(PASSWORD_ENV) or None


async def log_in(
    conn: ChatConnection,
    config: ClientConfig,
    password: str | None,
    tokens: TokenStore,
    *,
    register: bool = False,
) -> LoginReply:
    """Logs in with `password` when one is given, else with the token `nexus-chat login`
    saved. Saves no token (`login` does); forgets a saved one the server refuses."""
    # A cluster's token is good on every node: it is kept under the first.
    (host, port), user = config.servers()[0], config.user or ""
    where = f"{user} on {host_key(host, port)}"
    action = "registration" if register else "login"
    try:
        if password is not None:
            return await conn.request(
                "register" if register else "login", username=user, password=password
            )
        token = tokens.get(host, port, user)
        if token is None:
            raise Failure(
                f"no credentials for {where}: run `nexus-chat login` first, or set ${PASSWORD_ENV}"
            )
        try:
            return await conn.request("login", username=user, token=token)
        except NexusError as exc:
            if exc.code != "auth_failed":
                raise
            tokens.put(host, port, user, None)  # expired or revoked: useless now
            raise Failure(
                f"the saved login token for {where} was refused (a token lapses after"
                f" 30 days unused): run `nexus-chat login` again, or set ${PASSWORD_ENV}"
            ) from None
    except NexusError as exc:
        reason = f"{action} as {where} failed: {exc.message} ({exc.code})"
        if password is not None and exc.code == "auth_failed":
            reason += f", with the password in ${PASSWORD_ENV}"
            if tokens.get(host, port, user) is not None:
                reason += f" (it comes before the saved token: unset ${PASSWORD_ENV} to use that)"
        raise Failure(reason) from None
    except ConnectionClosed as exc:
        raise Failure(f"connection lost while logging in: {exc}") from None


@contextlib.asynccontextmanager
async def session(
    config: ClientConfig, *, keep_events: bool
) -> AsyncIterator[tuple[ChatConnection, LoginReply]]:
    """A logged-in connection, closed politely at the end."""
    conn, _ = await connect(config, keep_events=keep_events)
    try:
        reply = await log_in(conn, config, given_password(), TokenStore())
        yield conn, reply
    finally:
        await conn.quit()


async def ensure_member(conn: ChatConnection, reply: LoginReply, room: str) -> None:
    """Joins `room` unless the login said the account is in it already."""
    if room.lstrip("#").lower() in reply["rooms"]:
        return
    try:
        await conn.request("join", room=room)
    except NexusError as exc:
        raise Failure(f"cannot join #{room.lstrip('#')}: {exc.message} ({exc.code})") from None


# -- send --------------------------------------------------------------------


async def stdin_lines(stream: BinaryIO) -> AsyncIterator[bytes]:
    """Each line of `stream`, read in a thread so replies and events keep being read."""
    while line := await asyncio.to_thread(stream.readline):
        yield line.rstrip(b"\r\n")


async def deliver(
    conn: ChatConnection,
    cmd: str,
    target: dict[str, Any],
    text: str,
    files: list[str] | None = None,
) -> None:
    """Sends one message (with my uploads `files`) to `target` (its address, and how it
    goes: `plain`, `thread`, `broadcast`); waits out `rate_limited` as often as the
    server asks."""
    while True:
        try:
            await conn.request(cmd, text=text, files=files, **target)
            return
        except NexusError as exc:
            if exc.code != "rate_limited":
                raise
            await asyncio.sleep(float(exc.extra.get("retry_after", 1.0)))


async def send(args: argparse.Namespace, config: ClientConfig, text: str | None) -> int:
    target: dict[str, Any] = {"to": args.to} if args.to else {"room": args.room}
    cmd = "dm" if args.to else "say"
    if args.broadcast and args.thread is None:
        raise UsageError("--broadcast goes with --thread")
    # Left out unless set, so a server before protocol 3 sees the request it knows.
    target.update(plain=args.plain or None, thread=args.thread, broadcast=args.broadcast or None)
    if text is not None and not text.strip():
        raise UsageError("TEXT is empty")
    try:
        given = None if text is None else text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes on the command line
        raise UsageError("TEXT is not valid UTF-8") from None
    paths = files_to_send(args.file or [])
    failed = sent = 0
    async with session(config, keep_events=False) as (conn, reply):
        if args.room:
            await ensure_member(conn, reply, args.room)
        if paths:
            ids = await upload(conn, config, reply, paths)
            try:
                await deliver(conn, cmd, target, text or "", ids)
            except NexusError as exc:
                raise Failure(f"not sent: {exc.message} ({exc.code})") from None
            except ConnectionClosed as exc:
                raise Failure(f"connection lost before the files were sent: {exc}") from None
            return 0
        lines = stdin_lines(sys.stdin.buffer) if given is None else _one(given)
        number = 0
        async for raw in lines:
            number += 1
            where = "" if given is not None else f"line {number}: "
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                failed += 1
                print(f"nexus-chat send: {where}not sent: not valid UTF-8", file=sys.stderr)
                continue
            if not line.strip():
                continue  # blank lines separate nothing worth sending
            try:
                await deliver(conn, cmd, target, line)
                sent += 1
            except NexusError as exc:
                failed += 1
                reason = f"{exc.message} ({exc.code})"
                print(f"nexus-chat send: {where}not sent: {reason}", file=sys.stderr)
            except ConnectionClosed as exc:
                raise Failure(f"connection lost after {sent} message(s) were sent: {exc}") from None
    return 1 if failed else 0


async def _one(text: bytes) -> AsyncIterator[bytes]:
    yield text


def files_to_send(given: list[str]) -> list[Path]:
    """The `--file` paths, each a readable file, before anything is sent."""
    if len(given) > FILES_MAX:
        raise UsageError(f"a message carries at most {FILES_MAX} files, not {len(given)}")
    paths = [Path(path).expanduser() for path in given]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"--file {path}: no such file")
    return paths


def files_secret(config: ClientConfig, reply: LoginReply) -> str | None:
    """What the files' HTTP logs in with: the token this login was given (after a
    password) or used (saved), else the password."""
    (host, port), user = config.servers()[0], config.user or ""
    return reply.get("token") or TokenStore().get(host, port, user) or given_password()


async def upload(
    conn: ChatConnection, config: ClientConfig, reply: LoginReply, paths: list[Path]
) -> list[str]:
    """Uploads `paths` in turn, for one message; Failure says which one failed, and why."""
    try:
        files = Files.offered(conn.hello, reply["user"]["username"], files_secret(config, reply))
    except TransferError as exc:
        raise Failure(str(exc)) from None
    ids = []
    try:
        for path in paths:
            try:
                ids.append((await files.upload(path))["id"])
            except TransferError as exc:
                raise Failure(f"{path} not uploaded, nothing sent: {exc}") from None
    finally:
        await files.close()
    return ids


# -- tail --------------------------------------------------------------------


def plain(event: MessageEvent | DmEvent, me: str) -> str:
    """`#room nick: text`, or `@peer nick: text` for a DM (`#room/12 nick: text`: a reply
    in the thread of message 12), each file it carries on a line of its own after it,
    indented; remote text made safe."""
    if event["event"] == "message":
        where = "#" + event["room"]
    else:
        where = "@" + (event["to"] if event["from"].lower() == me.lower() else event["from"])
    if (root := event.get("thread")) is not None:
        where += f"/{root}"  # a reply in the thread of that message
    rows = [clean(event["text"]), *(attachment_row(f).plain for f in event.get("files", ()))]
    text = "\n    ".join(row.replace("\n", "\n    ") for row in rows if row)  # indented
    return f"{clean(where)} {clean(event['from'])}: {text}"


def messages_of(event: Event, rooms: set[str]) -> MessageEvent | DmEvent | None:
    """The event if tail shows it: a message in `rooms` (any, if empty), or a DM
    when no rooms were chosen."""
    if event["event"] == "message" and (not rooms or event["room"] in rooms):
        return event
    if event["event"] == "dm" and not rooms:
        return event
    return None


async def tail(args: argparse.Namespace, config: ClientConfig, out: TextIO) -> int:
    """Prints messages as they come. Given several servers it outlives the one it is on:
    it moves to the next that answers and first prints what it missed (follow.py)."""
    rooms = {r.lstrip("#").lower() for r in args.room or ()}
    me = config.user or ""
    follow = Follow(me, rooms)
    shown = 0

    def show(message: MessageEvent | DmEvent) -> bool:
        """Prints `message`; True once --count are printed."""
        nonlocal shown
        line = orjson.dumps(message).decode() if args.json else plain(message, me)
        out.write(line + "\n")
        out.flush()
        shown += 1
        return args.count is not None and shown >= args.count

    servers = config.servers()
    conn, server = await connect(config, keep_events=True)
    lost: Server | None = None  # the server the last connection was to
    while True:
        try:
            reply = await log_in(conn, config, given_password(), TokenStore())
            for room in sorted(rooms):
                await ensure_member(conn, reply, room)
            if lost is not None:
                where = "back on" if server == lost else "moved to"
                print(f"nexus-chat: {where} {server}", file=sys.stderr)
                if any(show(message) for message in await follow.missed(conn)):
                    return 0
            elif len(servers) > 1:
                await follow.start(conn, reply)
            async for event in conn:
                message = messages_of(event, rooms)
                if message is not None and follow.fresh(message) and show(message):
                    return 0
            reason = "connection closed by the server"
        except ConnectionClosed as exc:
            reason = str(exc)
        finally:
            await conn.quit()
        if len(servers) == 1:
            raise Failure(reason)
        print(f"nexus-chat: {server}: {reason}; trying the others", file=sys.stderr)
        lost = server
        conn, server = await reconnect(servers, lost, config.tls_settings())


async def reconnect(
    servers: list[Server], lost: Server, tls: ClientTLS | None
) -> tuple[ChatConnection, Server]:
    """A connection to the first server after `lost` that answers (`lost` is tried
    last), round after round with the full-screen client's backoff, for up to
    RECONNECT_FOR seconds: long enough for a node to be replaced, short enough that
    a script watching tail hears of an outage."""
    turn = servers.index(lost) + 1
    order = servers[turn:] + servers[:turn]
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RECONNECT_FOR
    delay = BACKOFF[0]
    while True:
        try:
            conn, _, server = await open_first(order, tls, keep_events=True)
            return conn, server
        except Unanswered as exc:
            if loop.time() + delay > give_up:
                raise Failure(f"connection lost, and for {RECONNECT_FOR:.0f} s {exc}") from None
        await asyncio.sleep(delay)
        delay = next_delay(delay)


# -- login -------------------------------------------------------------------


def ask_password(register: bool) -> str:
    """The password from $NEXUS_PASSWORD, or typed (not echoed) on the terminal."""
    if password := given_password():
        return password
    try:
        tty = open("/dev/tty")  # noqa: SIM115 - only to see whether there is one
    except OSError:
        raise Failure(f"no terminal to ask for the password on: set ${PASSWORD_ENV}") from None
    tty.close()
    password = getpass.getpass("Password (not shown): ")
    if register and getpass.getpass("Password again: ") != password:
        raise Failure("the passwords do not match")
    return password


async def login(args: argparse.Namespace, config: ClientConfig) -> int:
    """The one mode that saves a token: the point of running it."""
    password = ask_password(args.register)
    conn, _ = await connect(config, keep_events=False)
    try:
        tokens = TokenStore()
        reply = await log_in(conn, config, password, tokens, register=args.register)
    finally:
        await conn.quit()
    token = reply.get("token")
    if not token:
        raise Failure("the server issued no login token (it is older than this client)")
    host, port = config.servers()[0]  # a cluster's token is kept under its first node
    tokens.put(host, port, config.user or "", token)
    name = reply["user"]["username"]
    print(f"logged in as {name} on {host_key(host, port)}; token saved in {tokens.path}")
    return 0


# -- ping --------------------------------------------------------------------


async def ping(config: ClientConfig) -> int:
    started = asyncio.get_running_loop().time()
    conn, server = await connect(config, keep_events=False)
    try:
        await conn.request("ping")
    except (NexusError, ConnectionClosed) as exc:
        raise Failure(f"the server did not answer the ping: {exc}") from None
    finally:
        await conn.quit()
    elapsed = (asyncio.get_running_loop().time() - started) * 1000
    version = conn.hello["version"] if conn.hello else "?"
    print(f"{host_key(*server)}: nexus {clean(version)}, answered in {elapsed:.1f} ms")
    return 0


# -- entry -------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Runs one mode; `argv` starts with its name."""
    args = parser(argv[0]).parse_intermixed_args(argv[1:])
    try:
        config, text = settings(args)
        runs: dict[str, Callable[[], Any]] = {
            "send": lambda: send(args, config, text),
            "tail": lambda: tail(args, config, sys.stdout),
            "login": lambda: login(args, config),
            "ping": lambda: ping(config),
        }
        status: int = asyncio.run(runs[args.mode]())
        return status
    except (UsageError, ConfigError) as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 2
    except Failure as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`nexus-chat tail | head -3`): that is how tail ends.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
