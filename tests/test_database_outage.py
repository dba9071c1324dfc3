"""PostgreSQL stopped under a running server: requests get an error with a
code, nothing acknowledged is lost, and the server takes changes again by
itself once the database is back.

The database server here is a cluster of the test's own (stopping the
shared one would cut every other test's store)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.postgres import Cluster, binaries
from tests.procs import data_file
from tests.wire import Peer

pytestmark = [
    pytest.mark.engines("postgresql"),
    pytest.mark.skipif(binaries() is None, reason="PostgreSQL is not installed"),
]


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    yield cluster
    cluster.stop()


async def said_once_back(ana: Peer, text: str, timeout: float = 20.0) -> dict:
    """`say` retried until the server takes changes again; the reply."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        reply = await ana.request("say", room="general", text=text)
        if reply["ok"] or loop.time() > deadline:
            return reply
        assert reply["error"]["code"] == "internal", reply
        await asyncio.sleep(0.1)


async def test_a_database_outage_refuses_changes_and_heals(
    own_cluster: Cluster,
    start_server: StartServer,
    tmp_path: Path,
    engine: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = data_file(tmp_path, engine)
    url = own_cluster.database_for(data)
    running = await start_server(data, database=url)
    ana, bob = await running.user("ana"), await running.user("bob")
    for peer in (ana, bob):
        await peer.ok("join", room="general")
    before = await ana.ok("say", room="general", text="before")
    await bob.event("message", text="before")

    own_cluster.halt()
    during = await ana.request("say", room="general", text="during")
    assert during["ok"] is False and during["error"]["code"] == "internal", during
    assert "try again" in during["error"]["message"]
    # While the database stays away, changes are refused at once, each with its code.
    refused = await ana.request("say", room="general", text="still away")
    assert refused["ok"] is False and refused["error"]["code"] == "internal", refused
    await bob.no_event("message", wait=0.3)
    # Reads the database answers (search) fail the same way, and work again after.
    unread = await bob.request("search", query="before")
    assert unread["ok"] is False and unread["error"]["code"] == "internal", unread

    own_cluster.start()
    after = await said_once_back(ana, "after")
    assert after["ok"] is True, after
    assert after["seq"] == before["seq"] + 1  # no seq was spent on what was refused
    got = await bob.event("message", text="after")
    assert got["seq"] == after["seq"]
    assert not [e for e in bob.events if e.get("text") in ("during", "still away")]
    found = await bob.ok("search", query="before")
    assert [m["text"] for m in found["results"]] == ["before"]

    # What was acknowledged is what the database holds: a new server on it sees it.
    await running.close()
    again = await start_server(data, database=url)
    carol = await again.user("carol")
    await carol.ok("join", room="general")
    history = await carol.ok("history", room="general")
    texts = [m["text"] for m in history["messages"]]
    assert texts[-2:] == ["before", "after"]
    assert "during" not in texts and "still away" not in texts
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
