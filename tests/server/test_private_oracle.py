"""What a non-member can learn about a private room's messages: nothing.

Acting on a message (edit, erase, react) by number answers an outsider the
same whether or not that number exists, over every front end."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.web.wspeer import WsPeer

ACTIONS = [
    {"cmd": "edit", "text": "mine now"},
    {"cmd": "erase"},
    {"cmd": "react", "emoji": "👍", "on": True},
]


@pytest.mark.parametrize("front", ["tcp", "ws"])
async def test_an_outsider_cannot_tell_which_messages_a_private_room_has(start_server, front):
    server = await start_server(web_port=0)
    olga = await server.user("olga")
    await olga.ok("create", room="vault", private=True)
    await olga.ok("say", room="vault", text="the password is swordfish")
    if front == "tcp":
        outsider = await server.user("outsider")
    else:
        host, port = server.server.web_address
        outsider = await WsPeer.open(f"ws://{host}:{port}/ws")
        await outsider.frame()  # hello
        await outsider.ok("register", username="outsider", password=PASSWORD)
    for action in ACTIONS:
        cmd, args = action["cmd"], {k: v for k, v in action.items() if k != "cmd"}
        present = await outsider.request(cmd, room="vault", seq=1, **args)
        absent = await outsider.request(cmd, room="vault", seq=999, **args)
        assert present["ok"] is False and present["error"]["code"] == "not_member", present
        assert {k: v for k, v in present.items() if k != "id"} == {
            k: v for k, v in absent.items() if k != "id"
        }
    # An admin or a member still reaches it as before.
    assert len((await olga.ok("history", room="vault"))["messages"]) == 1
    await olga.fails("no_such_message", "react", room="vault", seq=999, emoji="👍", on=True)
    await olga.ok("react", room="vault", seq=1, emoji="👍", on=True)
    await outsider.close()
