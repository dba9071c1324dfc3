"""Login tokens: reconnect without the password (and without argon2's cost)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import orjson
import psycopg

from nexus.server import model as model_module
from tests.conftest import PASSWORD, data_file
from tests.postgres import cluster
from tests.wire import Peer


async def test_a_password_login_issues_a_token_that_logs_in_again(server):
    """register and login return a token; login with it needs no password and issues none."""
    alice = await server.user("alice")
    peer = await server.peer()
    first = await peer.ok("login", username="alice", password=PASSWORD)
    assert isinstance(first["token"], str) and len(first["token"]) >= 40
    again = await server.peer()
    reply = await again.ok("login", username="ALICE", token=first["token"])
    assert "token" not in reply
    assert reply["user"]["username"] == "alice" and reply["rooms"] == ["general"]
    await alice.ok("say", room="general", text="hi")
    assert (await again.event("message"))["text"] == "hi"


async def test_a_wrong_or_foreign_token_is_auth_failed(server):
    """A made-up token, or another user's, fails like a wrong password."""
    await server.user("alice")
    bob_peer = await server.peer()
    bob = await bob_peer.ok("register", username="bob", password=PASSWORD)
    peer = await server.peer()
    await peer.fails("auth_failed", "login", username="alice", token="x" * 43)
    await peer.fails("auth_failed", "login", username="alice", token=bob["token"])
    await peer.fails("auth_failed", "login", username="nobody", token=bob["token"])


async def test_login_needs_exactly_one_of_password_and_token(server):
    """Neither or both is bad_args; a token of the wrong type is bad_args."""
    peer = await server.peer()
    await peer.fails("bad_args", "login", username="alice")
    await peer.fails("bad_args", "login", username="alice", password=PASSWORD, token="t")
    await peer.fails("bad_args", "login", username="alice", token=5)


def stored_tokens(data: Path, engine: str) -> dict[str, float]:
    """The first user's tokens as the store's files hold them (digest -> stamp)."""
    if engine == "sqlite":
        with contextlib.closing(sqlite3.connect(data)) as db:
            return orjson.loads(db.execute("SELECT tokens FROM users").fetchone()[0])  # type: ignore[no-any-return]
    if engine in ("postgresql", "cluster"):
        with psycopg.connect(cluster().database_for(data)) as db:
            row = db.execute("SELECT tokens FROM users ORDER BY rowid").fetchone()
            assert row is not None
            return orjson.loads(row[0])  # type: ignore[no-any-return]
    return orjson.loads(data.read_bytes())["users"][0]["tokens"]  # type: ignore[no-any-return]


async def test_tokens_survive_a_restart_and_are_stored_hashed(start_server, tmp_path, engine):
    """After a restart the token still works; the store holds only its digest."""
    data = data_file(tmp_path, engine)
    first = await start_server(data=data)
    peer = await first.peer()
    token = (await peer.ok("register", username="alice", password=PASSWORD))["token"]
    await first.close()
    for path in data.parent.glob(data.name + "*"):
        assert token.encode() not in path.read_bytes()
    assert len(stored_tokens(data, engine)) == 1
    second = await start_server(data=data)
    again = await second.peer()
    await again.ok("login", username="alice", token=token)


async def test_only_the_most_recently_used_tokens_are_kept(start_server):
    """Past the per-user cap, the token used least recently stops working: one in use
    outlives newer ones that were not."""
    server = await start_server(login_attempts_per_minute=100)
    await server.user("alice")
    tokens = []
    for n in range(model_module.TOKENS_PER_USER + 2):
        peer = await server.peer()
        tokens.append((await peer.ok("login", username="alice", password=PASSWORD))["token"])
        await peer.close()
        if n == model_module.TOKENS_PER_USER - 1:  # the cap is full: use the oldest once
            peer = await server.peer()
            await peer.ok("login", username="alice", token=tokens[0])
            await peer.close()

    async def works(token: str) -> bool:
        peer = await server.peer()
        reply = await peer.request("login", username="alice", token=token)
        await peer.close()
        return reply["ok"]

    assert [await works(t) for t in tokens[:4]] == [True, False, False, True]
    assert await works(tokens[-1])


async def test_a_token_login_renews_the_token_on_disk(start_server, tmp_path, engine):
    """Tokens last 30 days from their last use: a token login writes a new stamp, so a
    script that runs now and then never has to ask for the password again."""
    data = data_file(tmp_path, engine)
    first = await start_server(data=data)
    peer = await first.peer()
    token = (await peer.ok("register", username="alice", password=PASSWORD))["token"]
    await first.close()
    (issued,) = stored_tokens(data, engine).values()
    second = await start_server(data=data)
    again = await second.peer()
    await again.ok("login", username="alice", token=token)
    await second.close()
    (renewed,) = stored_tokens(data, engine).values()
    assert renewed > issued


async def test_token_attempts_count_against_the_login_rate(start_server):
    """Guessing tokens is throttled like guessing passwords."""
    server = await start_server(login_attempts_per_minute=3)
    peer = await server.peer()
    for _ in range(3):
        await peer.fails("auth_failed", "login", username="alice", token="guess")
    error = await peer.fails("rate_limited", "login", username="alice", token="guess")
    assert error["retry_after"] > 0


async def test_successful_logins_never_use_up_the_login_budget(start_server):
    """A user with more terminals than the per-minute budget logs in on every one."""
    server = await start_server(login_attempts_per_minute=5)
    await server.user("alice")
    for _ in range(12):
        peer = await server.peer()
        await peer.ok("login", username="alice", password=PASSWORD)
        await peer.close()


async def test_failed_logins_are_counted_per_address_across_connections(start_server):
    """Guesses spread over new connections from one address share one budget, which
    then holds even a right password from there; another address may still log in."""
    server = await start_server(login_attempts_per_minute=5)
    await server.user("alice")
    for _ in range(5):
        peer = await server.peer()
        await peer.fails("auth_failed", "login", username="nobody", password="wrong-password")
        await peer.close()
    peer = await server.peer()
    error = await peer.fails("rate_limited", "login", username="alice", password=PASSWORD)
    assert error["retry_after"] > 0
    other = await Peer.connect(server.host, server.port, local_addr=("127.0.0.2", 0))
    await other.frame()
    await other.ok("login", username="alice", password=PASSWORD)
    await other.close()
