"""Typed lines kept across runs, under the XDG state directory.

`$XDG_STATE_HOME/nexus/input_history` (by default
`~/.local/state/nexus/input_history`): one JSON string a line, so a line
with any character in it reads back as typed. Lines typed may quote direct
messages, so the directory is created 0700 and the file 0600. Only the
newest HISTORY_CAP lines are kept.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.history import History

HISTORY_CAP = 1_000
STATE_ENV = "XDG_STATE_HOME"

log = logging.getLogger(__name__)


def history_path() -> Path:
    base = os.environ.get(STATE_ENV) or str(Path.home() / ".local" / "state")
    return Path(base) / "nexus" / "input_history"


class InputHistory(History):
    """prompt_toolkit's history over the file above; a file that cannot be used is skipped
    with one warning (the chat goes on; Up then recalls this run's lines only)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._warned = False

    def load_history_strings(self) -> Iterable[str]:
        try:
            raw = self.path.read_text("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._warn(exc)
            return []
        lines = []
        for item in raw:
            try:
                text = json.loads(item)
            except ValueError:
                continue
            if isinstance(text, str):
                lines.append(text)
        if len(raw) > HISTORY_CAP:
            self._rewrite(lines[-HISTORY_CAP:])
        return list(reversed(lines[-HISTORY_CAP:]))  # newest first, as History expects

    def store_string(self, string: str) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as file:
                file.write(json.dumps(string) + "\n")
        except OSError as exc:
            self._warn(exc)

    def _rewrite(self, lines: list[str]) -> None:
        """Replaces the file with `lines`, atomically (a crash leaves the old or the new)."""
        spare = self.path.with_name(self.path.name + ".new")
        try:
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.writelines(json.dumps(line) + "\n" for line in lines)
            os.replace(spare, self.path)
        except OSError as exc:
            self._warn(exc)

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("input history not kept in %s: %s", self.path, exc.strerror or exc)
