"""Buffer numbers kept across runs, under the XDG state directory, as WeeChat users expect.

`$XDG_STATE_HOME/nexus/buffers.json` (by default
`~/.local/state/nexus/buffers.json`): for each account on each server
(`name@host:port`), its buffers in number order, a room as `#name`, a
conversation as the other person's case-folded name. The names of people
one talks to are private, so the directory is created 0700 and the file
0600; it is replaced whole, atomically. A file that cannot be read or
written costs the numbers, never the chat: one warning, then buffers are
numbered as they open.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from nexus.client.history import STATE_ENV

log = logging.getLogger(__name__)

KEPT = 500  # keys kept per account: a bound on a file nobody prunes by hand


def numbers_path() -> Path:
    base = os.environ.get(STATE_ENV) or str(Path.home() / ".local" / "state")
    return Path(base) / "nexus" / "buffers.json"


class BufferNumbers:
    """The order of one account's buffers on one server, read once and written on change."""

    def __init__(self, path: Path, account: str) -> None:
        self.path = path
        self.account = account  # `name@host:port`, the name case-folded
        self._warned = False

    def load(self) -> list[str]:
        entry = self._read().get(self.account)
        if not isinstance(entry, list):
            return []
        return [key for key in entry if isinstance(key, str)][:KEPT]

    def save(self, keys: list[str]) -> None:
        everything = self._read()
        everything[self.account] = keys[:KEPT]
        spare = self.path.with_name(self.path.name + ".new")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(everything, file, indent=1)
            os.replace(spare, self.path)
        except OSError as exc:
            self._warn(exc)

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self._warn(exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            log.warning("buffer numbers not kept in %s: %s", self.path, reason)
