"""What guests (`--irc-guests`) change in what a client is shown; their
login is registration's (registration.py).

A member who goes offline is still a member, but a guest that goes is gone
for good: where it is shown, clients see it QUIT. (Its `presence` comes
before it leaves its rooms, so their PARTs are then not shown.)
"""

from __future__ import annotations

from nexus.server.irc.events import Events
from nexus.server.irc.lines import build
from nexus.server.irc.state import Reply


class Guests(Events):
    """The translator's guest layer: one event, told differently for a guest."""

    def _on_presence(self, event: Reply) -> None:
        if event["online"] or not event.get("guest"):
            super()._on_presence(event)
            return
        nick = event["user"]
        shown = [nicks for nicks in self.channels.values() if nick in nicks]
        for nicks in shown:
            nicks.discard(nick)
        if shown:
            reason = self.directory.quit_reason(nick)  # its QUIT said why
            why = f"Quit: {reason}" if reason else "Quit: guest left"
            self.responses.lines.append(build(self._mask(nick), "QUIT", why))
