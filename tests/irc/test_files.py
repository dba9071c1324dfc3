"""Files over IRC: the upload URL advertised as FILEHOST, a shared file seen
as its link in the line, and an IRC client's own upload shared by saying
its link (docs/irc.md, "Files")."""

from __future__ import annotations

import base64
import re
from typing import Any

import aiohttp

from tests.conftest import PASSWORD
from tests.irc.conftest import IrcServer


async def upload(base: str, name: str, body: bytes, filename: str) -> dict[str, Any]:
    """An upload as an IRC client makes it: Basic with the account's password."""
    auth = base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()
    headers = {
        "Authorization": f"Basic {auth}",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/files", data=body, headers=headers) as r,
    ):
        assert r.status == 201, await r.text()
        return dict(await r.json())


async def web_irc(start_irc: Any) -> tuple[IrcServer, str]:
    irc: IrcServer = await start_irc(web_port=0)
    address = irc.running.server.web_address
    assert address is not None
    return irc, f"http://127.0.0.1:{address[1]}"


async def test_filehost_names_the_upload_url(start_irc: Any) -> None:
    irc, base = await web_irc(start_irc)
    await irc.account("ana")
    peer = await irc.peer()
    await peer.send("CAP LS 302", "NICK ana", "USER ana 0 * :real")
    await peer.send(f"PASS :ana:{PASSWORD}", "CAP END")
    found = await peer.expect(r" 005 .*soju\.im/FILEHOST=(\S+)")
    assert found.group(1) == base.replace("=", "\\x3D") + "/files"


async def test_no_web_port_no_filehost(irc: IrcServer) -> None:
    peer = await irc.irc_user("ana")
    assert not any("FILEHOST" in line for line in peer.lines)


async def test_a_shared_file_is_its_link_in_the_line(start_irc: Any) -> None:
    irc, base = await web_irc(start_irc)
    bob = await irc.running.user("bob")
    ana = await irc.irc_user("ana")
    up = await upload(base, "bob", b"quarterly numbers", "q3 numbers.csv")
    await bob.ok("say", room="general", text="the numbers", files=[up["id"]])
    line = await ana.expect(r"PRIVMSG #general :the numbers ")
    assert line.string.endswith(f":the numbers {base}/files/{up['id']}/q3%20numbers.csv")
    # Its files alone: the link is the whole line.
    await bob.ok("say", room="general", files=[up["id"]])
    await ana.expect(rf"PRIVMSG #general :{re.escape(base)}/files/{up['id']}/q3%20numbers\.csv$")


async def test_an_irc_clients_upload_is_shared_by_its_link(start_irc: Any) -> None:
    """FILEHOST as clients use it: upload with the password, say the URL;
    native members get the file with the message and may download it."""
    irc, base = await web_irc(start_irc)
    bob = await irc.running.user("bob")
    ana = await irc.irc_user("ana")
    up = await upload(base, "ana", b"\x89PNG not really", "shot.png")
    link = base + up["url"]
    await ana.send(f"PRIVMSG #general :look {link}")
    event = await bob.event("message", room="general")
    assert event["text"] == f"look {link}"
    assert [f["id"] for f in event["files"]] == [up["id"]]
    # The line reaches IRC members once, its link not repeated.
    carl = await irc.irc_user("carl")
    await ana.send(f"PRIVMSG #general :again {link}")
    line = await carl.expect(r"PRIVMSG #general :again ")
    assert line.string.count("/files/") == 1
