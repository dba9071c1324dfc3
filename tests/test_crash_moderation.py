"""The real server keeps moderation through SIGKILL and a clean restart: roles,
bans, mutes, invitations, private rooms, admins and suspensions; and
`--admin` / NEXUS_ADMIN make existing accounts admins at start."""

from __future__ import annotations

import signal

from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

PASSWORD = "crash-test-password"


async def connect(port: int) -> Peer:
    peer = await Peer.connect("127.0.0.1", port)
    await peer.frame()
    return peer


async def login(port: int, name: str) -> Peer:
    peer = await connect(port)
    await peer.ok("login", username=name, password=PASSWORD)
    return peer


async def check_moderation_state(port: int) -> None:
    """Everything made before the kill, as each user sees it."""
    olga = await login(port, "olga")
    rooms = {r["name"]: r for r in (await olga.ok("rooms"))["rooms"]}
    assert rooms["den"]["moderators"] == ["mia"] and rooms["den"]["muted"] == ["carol"]
    assert rooms["vault"]["private"] is True
    bans = (await olga.ok("bans", room="den"))["bans"]
    assert [(b["user"], b["by"], b["reason"]) for b in bans] == [("bob", "mia", "flooding")]
    bob = await login(port, "bob")
    assert "vault" not in [r["name"] for r in (await bob.ok("rooms"))["rooms"]]
    await bob.fails("banned", "join", room="den")
    await bob.fails("invite_only", "join", room="vault")
    carol = await login(port, "carol")
    await carol.fails("muted", "say", room="den", text="still muted?")
    eddie = await login(port, "eddie")
    assert (await eddie.ok("whois", username="eddie"))["user"]["admin"] is True
    fay = await connect(port)
    await fay.fails("suspended", "login", username="fay", password=PASSWORD)
    for peer in (olga, bob, carol, eddie, fay):
        await peer.close()


async def test_sigkill_and_restart_keep_every_moderation_change(tmp_path, engine):
    """Acknowledged roles, bans, mutes, invitations, private flags, admins and
    suspensions survive a SIGKILL right after the last reply (journal), then a
    clean stop and start (snapshot); the invitation is still good after both."""
    data = data_file(tmp_path, engine)
    flags = (*engine_flags(engine, data), "--rate-limit", "off")
    with ServerProcess(data, *flags) as server:
        peers = {}
        for name in ("root", "olga", "mia", "bob", "carol", "dan", "eddie", "fay"):
            peers[name] = await connect(server.port)
            reply = await peers[name].ok("register", username=name, password=PASSWORD)
        fay_token = reply["token"]
        root, olga, mia = peers["root"], peers["olga"], peers["mia"]
        await olga.ok("create", room="den")
        await olga.ok("create", room="vault", private=True)
        for name in ("mia", "bob", "carol"):
            await peers[name].ok("join", room="den")
        await olga.ok("op", room="den", username="mia")
        await mia.ok("mute", room="den", username="carol")
        await mia.ok("ban", room="den", username="bob", reason="flooding")
        await olga.ok("invite", room="vault", username="dan")
        await root.ok("admin", username="eddie", on=True)
        await root.ok("suspend", username="fay")
        server.kill()
    with ServerProcess(data, *flags) as server:
        await check_moderation_state(server.port)
        fay = await connect(server.port)
        await fay.fails("suspended", "login", username="fay", token=fay_token)
        await fay.close()
        assert server.stop(signal.SIGTERM) == 0
    with ServerProcess(data, *flags) as server:
        await check_moderation_state(server.port)
        dan = await login(server.port, "dan")
        await dan.ok("join", room="vault")
        await dan.close()


async def test_admin_flag_and_environment_make_existing_accounts_admins(tmp_path):
    """`--admin bob` (repeatable) and NEXUS_ADMIN=carol,dan make those accounts
    admins at start, for good; an unknown name is logged and the server starts."""
    data = tmp_path / "nexus_data.json"
    with ServerProcess(data) as server:
        for name in ("root", "bob", "carol", "dan", "eve"):
            await (await connect(server.port)).ok("register", username=name, password=PASSWORD)
        assert server.stop() == 0
    with ServerProcess(data, "--admin", "bob", "--admin", "nobody") as server:
        eve = await login(server.port, "eve")
        assert (await eve.ok("whois", username="bob"))["user"]["admin"] is True
        assert (await eve.ok("whois", username="carol"))["user"]["admin"] is False
        server.kill()  # the grant was written before the server listened
    with ServerProcess(data, env={"NEXUS_ADMIN": "carol, dan"}) as server:
        eve = await login(server.port, "eve")
        for name, admin in (("root", True), ("bob", True), ("carol", True), ("dan", True)):
            assert (await eve.ok("whois", username=name))["user"]["admin"] is admin
        assert (await eve.ok("whois", username="eve"))["user"]["admin"] is False
    log = data.with_suffix(".log").read_text()
    assert "--admin nobody: no such account" in log
    assert "admin by the operator (--admin) on bob" in log
