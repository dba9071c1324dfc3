"""`nexus-chat [--tls | --tls-ca FILE] [HOST] [PORT]` (or `--server HOST[:PORT]`, repeated,
for a cluster's nodes): banner, login or registration, then chat.

`nexus-chat send|tail|login|ping ...` are the modes for scripts (script.py).
Without HOST (on the command line, in $NEXUS_CHAT_SERVER or client.toml)
the client looks for servers announced on the LAN and asks which to use.

Connecting and logging in happen before the screen opens, so a refused
connection, a failed certificate check or a wrong password ends with a
message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from prompt_toolkit import PromptSession
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from rich.console import Console
from rich.text import Text

from nexus import __version__
from nexus.client import discovery, images, render, script
from nexus.client.app import ChatApp
from nexus.client.config import DEFAULT_PORT, PRECEDENCE, ConfigError, resolve
from nexus.client.connection import ChatConnection
from nexus.client.history import history_path
from nexus.client.numbers import numbers_path
from nexus.client.script import Failure
from nexus.client.servers import Server
from nexus.client.session import ChatSession, log_in
from nexus.client.state import ChatState
from nexus.client.tls import CertificateChanged, ClientTLS
from nexus.client.tokens import TokenStore
from nexus.errors import NexusError
from nexus.protocol import RESERVED_NAMES, USERNAME_RE, LoginReply

PASSWORD_ENV = "NEXUS_PASSWORD"
BANNER = r"""
 _   _
| \ | | _____  ___   _ ___
|  \| |/ _ \ \/ / | | / __|
| |\  |  __/>  <| |_| \__ \
|_| \_|\___/_/\_\\__,_|___/
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nexus-chat",
        description="Full-screen terminal client for a Nexus Chat server.",
        epilog=f"With --user the password is read from ${PASSWORD_ENV}, used even when "
        "`nexus-chat login` saved a token; if it is unset, the saved token, else asked for. "
        "Inside, type /help for the commands. For scripts: nexus-chat send|tail|login|ping --help. "
        + PRECEDENCE,
    )
    p.add_argument(
        "host",
        nargs="?",
        help="server host, or several tried in order: HOST[:PORT],HOST[:PORT] "
        "(default: choose among servers found on the LAN)",
    )
    p.add_argument("port", nargs="?", type=script.port_number, help="server port (9999)")
    script.add_server_flag(p)
    p.add_argument("--user", metavar="NAME", help="log in as NAME without the questions")
    p.add_argument("--register", action="store_true", help="create the account first")
    p.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        help="connect with TLS; the first certificate seen for HOST:PORT is trusted and pinned "
        "in $XDG_CONFIG_HOME/nexus/known_hosts (~/.config/nexus/known_hosts)",
    )
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="connect with TLS, verifying the server against this CA bundle (implies --tls)",
    )
    p.add_argument("--version", action="version", version=f"nexus-chat {__version__}")
    return p


class Hidden(Processor):
    """Shows nothing of a password being typed, not even its length."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        return Transformation([], source_to_display=lambda i: 0, display_to_source=lambda i: 0)


PASSWORD_MIN = 8  # the server's rule (docs/protocol.md), said before anyone types one

# What each refusal means for someone at the prompts, in their words.
REFUSALS = {
    "auth_failed": "wrong username or password",
    "weak_password": f"the password needs at least {PASSWORD_MIN} characters",
    "username_taken": "that name is taken: choose another",
    "invalid_username": "a username is 3-24 letters, digits, _ or -",
    "no_such_user": "wrong username or password",
}


def refusal(exc: NexusError) -> str:
    text = REFUSALS.get(exc.code, exc.message)
    retry = exc.extra.get("retry_after")
    if exc.code == "rate_limited" and isinstance(retry, int | float):
        text = f"too many attempts: try again in {retry:.0f} s"
    return text


async def sign_in(
    conn: ChatConnection, args: argparse.Namespace, tls: ClientTLS | None
) -> tuple[ChatConnection, LoginReply, str | None, str | None]:
    """Logs in or registers; returns the connection, the reply, and what reconnecting
    logs in with: the password (None after a saved token's login) and the token.

    With --user and $NEXUS_PASSWORD the password is the one used, saved token or not,
    so a wrong one ends the program instead of being passed over. With --user alone
    a token saved by `nexus-chat login` is tried first; a refused one is set aside
    and the password asked for. Only a token `login` saved is ever written: a
    password login replaces it with the new one, and saves nothing where none was.
    """
    tokens = TokenStore()
    user = args.user
    given = given_password(args)
    home = args.servers[0]  # a cluster's token is good on every node: kept under the first
    saved = tokens.get(home.host, home.port, user) if user and not args.register else None
    if saved and given is None:
        try:
            return conn, await conn.request("login", username=user, token=saved), None, saved
        except NexusError as exc:
            if exc.code != "auth_failed":
                raise Failure(f"login failed: {refusal(exc)}") from None
            print("The saved login token was refused (a token lapses after 30 days unused).")
        except OSError as exc:
            raise Failure(f"connection lost: {exc}") from None
    conn, password, reply = await _with_password(conn, args, tls, saved is not None)
    name, token = reply["user"]["username"], reply.get("token")
    if token and (saved or tokens.get(home.host, home.port, name) is not None):
        tokens.put(home.host, home.port, name, token)
    return conn, reply, password, token


def given_password(args: argparse.Namespace) -> str | None:
    """The password in $NEXUS_PASSWORD when --user is given; empty counts as unset."""
    return (os.environ.get(PASSWORD_ENV) or None) if args.user else None


async def _with_password(
    conn: ChatConnection, args: argparse.Namespace, tls: ClientTLS | None, token_saved: bool
) -> tuple[ChatConnection, str, LoginReply]:
    """With --user and $NEXUS_PASSWORD one attempt is made and a refusal ends the
    program. At the prompts a mistake is explained and asked again: a new password
    that is too short or typed differently twice, the password; a refusal, everything.
    """
    register = args.register
    username = args.user
    password = given_password(args)
    if username and password:
        try:
            return await _attempt(conn, args, tls, username, password, register)
        except NexusError as exc:
            reason = f"{'registration' if register else 'login'} failed: {refusal(exc)}"
            if exc.code == "auth_failed" and not register:
                reason += f", with the password in ${PASSWORD_ENV}"
                if token_saved:
                    reason += f" (tried before the saved token: unset ${PASSWORD_ENV} to use it)"
            raise Failure(reason) from None
    if not sys.stdin.isatty():
        raise Failure(f"no terminal to ask on: use --user NAME with ${PASSWORD_ENV}")
    ask: PromptSession[str] = PromptSession()
    secret: PromptSession[str] = PromptSession(history=DummyHistory(), input_processors=[Hidden()])
    kept: str | None = None  # a new password typed twice, kept when only the name was wrong
    choose = not args.register  # ask "log in or register?"; not again for a wrong name
    while True:
        name = username
        if not name:
            if choose:
                choice = await ask.prompt_async("Log in or register? [L/r] ")
                register = choice.strip().lower().startswith("r")
            name = (await ask.prompt_async("Username: ")).strip()
            choose = False
            if register and (problem := name_problem(name) or await _taken(conn, name)):
                print(f"{problem}.")
                continue
        if register:
            password = kept or await _new_password(secret)
        else:
            password = await secret.prompt_async("Password (not shown): ")
        try:
            return await _attempt(conn, args, tls, name, password, register)
        except NexusError as exc:
            print(f"{'Registration' if register else 'Login'} refused: {refusal(exc)}.")
            # A name taken since it was looked up (or a server that cannot look
            # one up) is learnt here: ask for another, keep the password.
            taken = register and not username and exc.code == "username_taken"
            kept = password if taken else None
            choose = not args.register and not taken


def name_problem(name: str) -> str | None:
    """Why `name` cannot be registered, as far as the client can tell before asking for a
    password (the server's own rules); None when it may be free."""
    if not USERNAME_RE.fullmatch(name):
        return REFUSALS["invalid_username"]
    if name.lower() in RESERVED_NAMES:
        return f"{name} is reserved for the server"
    return None


async def _taken(conn: ChatConnection, name: str) -> str | None:
    """ "that name is taken..." if the server says so before any password is
    typed; None when it is free, or the server cannot tell (an older one, or
    the connection gone: `register` tells then)."""
    try:
        reply = await conn.request("available", username=name)
    except (NexusError, OSError, TimeoutError):
        return None
    return None if reply["available"] else REFUSALS["username_taken"]


async def _new_password(secret: PromptSession[str]) -> str:
    """A new password, asked twice; a mistake asks for the password again, not for
    the name: the person got that right."""
    while True:
        password = await secret.prompt_async(
            f"Password (at least {PASSWORD_MIN} characters, not shown): "
        )
        if len(password) < PASSWORD_MIN:
            print(f"Too short: a password needs at least {PASSWORD_MIN} characters.")
        elif await secret.prompt_async("Password again: ") != password:
            print("The passwords differ. Once more.")
        else:
            return password


async def _attempt(
    conn: ChatConnection,
    args: argparse.Namespace,
    tls: ClientTLS | None,
    name: str,
    password: str,
    register: bool,
) -> tuple[ChatConnection, str, LoginReply]:
    """One login or registration. The server closes an anonymous connection after a while
    (30 s by default), which a person at the questions can take: then it connects again."""
    try:
        return conn, password, await log_in(conn, name, password, register=register)
    except OSError:
        await conn.close()
    conn = ChatConnection()
    try:
        await conn.connect(args.host, args.port, tls=tls)
        return conn, password, await log_in(conn, name, password, register=register)
    except CertificateChanged as exc:
        raise Failure(str(exc)) from None
    except (OSError, TimeoutError) as exc:
        await conn.close()
        raise Failure(f"connection lost: {exc or 'timed out'}") from None


def client_tls(args: argparse.Namespace) -> ClientTLS | None:
    """The TLS the settings ask for, or None for plain TCP."""
    try:
        return args.config.tls_settings()
    except ConfigError as exc:
        raise Failure(str(exc)) from None


async def run(args: argparse.Namespace) -> None:
    tls = client_tls(args)
    if args.servers is None:
        host, port, tls = await discover(tls)
        args.servers = [Server(host, port)]
    console = Console(highlight=False)
    console.print(Text(BANNER, style="bold cyan"))
    conn, hello, server = await script.open_first(args.servers, tls, keep_events=True)
    args.host, args.port = server
    try:
        version = render.clean(hello["version"])
        console.print(
            Text(f"nexus-chat {__version__}, server {version} at {args.host}:{args.port}")
        )
        if motd := render.clean(hello["motd"]):
            console.print(Text(motd, style="italic"))
        conn, reply, password, token = await sign_in(conn, args, tls)
    except BaseException:
        await conn.close()
        raise
    address = f"{args.host}:{args.port}" + (" TLS" if tls else "")
    config = args.config
    state = ChatState(
        reply["user"]["username"],
        address,
        highlight=config.highlight,
        clock_format=config.timestamp_format,
        previews=config.previews and images.drawable(),
        kitty=images.kitty_terminal(),
    )
    session = ChatSession(
        state,
        args.servers,
        password,
        token=token,
        tls=tls,
        first=args.servers.index(server),
        typing=config.typing,
    )
    app = ChatApp(
        session,
        history=history_path(),
        numbers=numbers_path(),
        notifications=config.notifications,
    )
    await app.run(conn, reply)


async def discover(tls: ClientTLS | None) -> tuple[str, int, ClientTLS | None]:
    """The server chosen among those announced on the LAN; localhost if none answers."""
    print("nexus-chat: looking for servers on this network...", file=sys.stderr)
    try:
        found = await discovery.browse()
    except OSError as exc:  # no multicast here, say; localhost may still answer
        print(f"nexus-chat: cannot look on the LAN: {exc.strerror or exc}", file=sys.stderr)
        found = []
    if found and not sys.stdin.isatty():
        raise Failure("found servers on the LAN, but no terminal to ask on: give HOST")
    chosen = await discovery.choose(
        found, lambda question: asyncio.to_thread(input, question), print
    )
    if chosen is None:
        print("nexus-chat: none found; trying localhost", file=sys.stderr)
        return "localhost", DEFAULT_PORT, tls
    if chosen.fingerprint:
        return chosen.host, chosen.port, discovery.AnnouncedTLS(chosen.fingerprint)
    return chosen.host, chosen.port, tls


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in script.MODES:
        return script.main(argv)
    args = parser().parse_args(argv)
    try:
        server = script.server_setting(args.server, args.host)
        config = resolve(
            {"server": server, "port": args.port, "user": args.user}
            | {"tls": args.tls, "tls_ca": args.tls_ca}
        )
    except (ConfigError, script.UsageError) as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 2
    args.config, args.host, args.port, args.user = config, config.server, config.port, config.user
    try:
        args.servers = config.servers() if config.server is not None else None
    except ConfigError as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args))
    except Failure as exc:
        print(f"nexus-chat: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("nexus-chat: cancelled", file=sys.stderr)
        return 130
    return 0
