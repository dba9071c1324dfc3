"""What guests (`--irc-guests`) change in what a client is shown; their
login is registration's (registration.py).

A member who goes offline is still a member, but a guest that goes is gone
for good: where it is shown, clients see it QUIT. (Its `presence` comes
before it leaves its rooms, so their PARTs are then not shown.)
"""

from __future__ import annotations

from nexus.server.irc.lines import build
from nexus.server.irc.members import member_presence
from nexus.server.irc.state import IrcState, Reply


def on_presence(c: IrcState, event: Reply) -> None:
    if event["online"] or not event.get("guest"):
        member_presence(c, event)
        return
    nick = event["user"]
    shown = [nicks for nicks in c.channels.values() if nick in nicks]
    for nicks in shown:
        nicks.discard(nick)
    if shown:
        reason = c.directory.quit_reason(nick)  # its QUIT said why
        why = f"Quit: {reason}" if reason else "Quit: guest left"
        c.responses.lines.append(build(c.mask(nick), "QUIT", why))
