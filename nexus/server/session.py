"""One connection as the commands see it: who it is and which phase it is in.

A session's life is an explicit state, as in h11: anonymous until it logs
in, authenticated until it closes, closing while its last frames go out,
then closed. Every change of phase goes through `_enter`, which refuses a
transition the table does not allow, so no code path can, say, log in a
session that is already closing.
"""

from __future__ import annotations

import enum

from nexus.server.outbox import Outlet


class Phase(enum.Enum):
    ANONYMOUS = "anonymous"  # connected, greeted, not logged in
    AUTHENTICATED = "authenticated"  # logged in as `user`
    CLOSING = "closing"  # answers nothing more; its queue still goes out
    CLOSED = "closed"  # the connection is gone


_NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.ANONYMOUS: frozenset({Phase.AUTHENTICATED, Phase.CLOSING, Phase.CLOSED}),
    Phase.AUTHENTICATED: frozenset({Phase.CLOSING, Phase.CLOSED}),
    Phase.CLOSING: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


class Session:
    """A connection's identity and phase; its frames go out through `outlet`."""

    __slots__ = ("guest", "guests_allowed", "ip", "outlet", "peer", "phase", "user")

    def __init__(self, outlet: Outlet, ip: str, peer: str, guests_allowed: bool = False) -> None:
        self.outlet = outlet
        self.ip = ip  # the peer's address: per-address limits count by it
        self.peer = peer  # address and port, for the log
        self.phase = Phase.ANONYMOUS
        self.user: str | None = None  # the user's key once authenticated
        # Its front end may log it in as a guest (`guest`, never on the wire).
        self.guests_allowed = guests_allowed
        self.guest = False  # logged in as a guest: its user goes when it does

    @property
    def open(self) -> bool:
        """Whether requests are still answered."""
        return self.phase is Phase.ANONYMOUS or self.phase is Phase.AUTHENTICATED

    def authenticate(self, user: str) -> None:
        self._enter(Phase.AUTHENTICATED)
        self.user = user

    def close(self) -> None:
        """Answers nothing more; the connection closes once its queue has gone out."""
        if self.open:
            self._enter(Phase.CLOSING)
            self.outlet.close()

    def gone(self) -> None:
        """The connection is gone, whatever phase it was in."""
        if self.phase is not Phase.CLOSED:
            self._enter(Phase.CLOSED)

    def _enter(self, phase: Phase) -> None:
        if phase not in _NEXT[self.phase]:
            raise RuntimeError(f"{self!r}: {self.phase.value} -> {phase.value} is not allowed")
        self.phase = phase

    def __repr__(self) -> str:
        return f"<Session {self.peer} {self.user or '-'} {self.phase.value}>"
